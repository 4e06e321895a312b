package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultBackoffs are the waits before subscribing again after a failure,
// the last one repeated.
var defaultBackoffs = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, time.Second, 5 * time.Second}

// subscribe receives the messages of channel until ctx ends: it calls
// onSubscribed each time the subscription is established (a failure there
// drops the subscription and starts again), then onMessage with each
// payload. It returns nil when ctx ends and an error when the Store is
// closed; any other failure is retried with a growing wait.
func (s *Store) subscribe(ctx context.Context, channel string, onSubscribed func(context.Context) error, onMessage func(string)) error {
	failures := 0
	for {
		established, err := s.subscribeOnce(ctx, channel, onSubscribed, onMessage)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, redis.ErrClosed) {
			return fmt.Errorf("redisstore: subscribe to %s: %w", channel, err)
		}
		if established {
			failures = 0
		}
		wait := s.subscribeBackoffs[min(failures, len(s.subscribeBackoffs)-1)]
		failures++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// subscribeOnce holds one subscription until it fails, and reports whether
// it was established.
func (s *Store) subscribeOnce(ctx context.Context, channel string, onSubscribed func(context.Context) error, onMessage func(string)) (bool, error) {
	ps := s.client.Subscribe(ctx, channel)
	defer ps.Close()
	// Receive does not return when ctx ends: closing ps makes it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	established := false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return established, err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if err := onSubscribed(ctx); err != nil {
					return established, err
				}
				established = true
			}
		case *redis.Message:
			onMessage(m.Payload)
		}
	}
}
