package verify

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/jws"
	"github.com/gatehouse-auth/gatehouse/revocation"
)

// Bounds of the feed follower.
const (
	// maxFeedBytes bounds one answer of the feed; a snapshot of every live
	// revocation comes in one answer (about 100 bytes an entry).
	maxFeedBytes = 64 << 20
	// maxWait is the longest long poll the follower asks for.
	maxWait = 25 * time.Second
	// pollGrace is how much longer than its wait a poll may take.
	pollGrace = 10 * time.Second
	// firstBackoff and maxBackoff bound the pause between failed polls
	// (maxBackoff is further capped at half of MaxStaleness).
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
	// purgeEvery is how often the local index drops entries past their time.
	purgeEvery = time.Minute
	// maxCursorLen bounds the cursor the follower accepts from the server.
	maxCursorLen = 128
)

// follower follows the server's revocation feed into a local
// revocation.Index and is the token verifier's RevocationChecker: it
// answers from the local index while the last successful poll is at most
// maxStale old, and ErrStale after that (unless failOpen).
type follower struct {
	client   *http.Client
	url      string // the feed's URL, without query
	key      string // the service key
	clock    clock.Clock
	log      *slog.Logger
	maxStale time.Duration
	failOpen bool
	wait     time.Duration // of each long poll

	idx    atomic.Pointer[revocation.Index]
	lastOK atomic.Int64 // clock time of the last successful poll, Unix ns

	// Owned by the goroutine that polls (New, then run).
	cursor    string
	lastPurge time.Time
}

// Revoked implements token.RevocationChecker.
func (f *follower) Revoked(ctx context.Context, jti, sid, userID string, issuedAt time.Time) (bool, error) {
	if !f.failOpen {
		if age := f.clock.Now().Sub(time.Unix(0, f.lastOK.Load())); age > f.maxStale {
			return false, fmt.Errorf("%w: last successful poll %v ago", ErrStale, age.Round(time.Millisecond))
		}
	}
	return f.idx.Load().Revoked(ctx, jti, sid, userID, issuedAt)
}

// followerStore is the revocation.Store of the follower's local index: the
// follower only ever Applies entries, which never reach a store, so it
// holds nothing. It keeps this package free of every storage backend.
type followerStore struct{}

var errFollowerWrite = errors.New("verify: the local revocation index is read-only")

func (followerStore) DenyToken(context.Context, string, time.Time) error { return errFollowerWrite }
func (followerStore) RevokeSID(context.Context, string, time.Time) error { return errFollowerWrite }
func (followerStore) RevokeUser(context.Context, string, time.Time, time.Time) error {
	return errFollowerWrite
}
func (followerStore) Load(context.Context) ([]revocation.Entry, error) { return nil, nil }
func (followerStore) Purge(context.Context) (int, error)               { return 0, nil }

var _ revocation.Store = followerStore{}

// poll asks the feed once, waiting up to wait for news, and applies the
// answer.
func (f *follower) poll(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait+pollGrace)
	defer cancel()
	q := url.Values{"wait": {formatWait(wait)}}
	if f.cursor != "" {
		q.Set("cursor", f.cursor)
	}
	body, _, err := get(ctx, f.client, f.url+"?"+q.Encode(), f.key, maxFeedBytes, "application/json")
	if err != nil {
		return fmt.Errorf("revocation feed: %w", err)
	}
	a, err := parseFeed(body)
	if err != nil {
		return fmt.Errorf("revocation feed: %w", err)
	}
	if a.reset {
		idx, err := revocation.New(ctx, followerStore{}, f.clock)
		if err != nil {
			return fmt.Errorf("revocation feed: %w", err)
		}
		if err := applyAll(idx, a.entries); err != nil {
			return fmt.Errorf("revocation feed: reset: %w", err)
		}
		f.idx.Store(idx)
	} else if err := applyAll(f.idx.Load(), a.entries); err != nil {
		return fmt.Errorf("revocation feed: %w", err)
	}
	f.cursor = a.cursor
	now := f.clock.Now()
	f.lastOK.Store(now.UnixNano())
	if now.Sub(f.lastPurge) >= purgeEvery {
		f.lastPurge = now
		if _, err := f.idx.Load().Purge(ctx); err != nil {
			f.log.Warn("gatehouse verify: purge the local revocation index", "error", err)
		}
	}
	return nil
}

func applyAll(idx *revocation.Index, es []revocation.Entry) error {
	for _, e := range es {
		if err := idx.Apply(e); err != nil {
			return err
		}
	}
	return nil
}

// run long-polls the feed until ctx ends, pausing after failures with a
// jittered exponential backoff.
func (f *follower) run(ctx context.Context) {
	ceiling := min(maxBackoff, f.maxStale/2)
	failures := 0
	for {
		err := f.poll(ctx, f.wait)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if failures > 0 {
				f.log.Info("gatehouse verify: revocation feed resumed", "failed_polls", failures)
			}
			failures = 0
			continue
		}
		failures++
		if failures == 1 {
			f.log.Warn("gatehouse verify: revocation feed poll failed; retrying", "error", err)
		} else {
			f.log.Debug("gatehouse verify: revocation feed poll failed", "error", err, "failed_polls", failures)
		}
		t := time.NewTimer(backoff(failures, ceiling))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the pause after the n-th failure in a row (n >= 1): doubling
// from firstBackoff up to ceiling, the upper half of it random (crypto/rand,
// so that many verifiers do not reconnect in step).
func backoff(n int, ceiling time.Duration) time.Duration {
	d := ceiling
	if n < 30 {
		d = min(firstBackoff<<(n-1), ceiling)
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return half + time.Duration(binary.LittleEndian.Uint64(b[:])%uint64(half))
}

// formatWait writes a wait as the feed's parameter: seconds with three
// decimals.
func formatWait(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// feedAnswer is a parsed answer of the feed.
type feedAnswer struct {
	cursor  string
	reset   bool
	entries []revocation.Entry
}

// parseFeed reads an answer of GET /v1/revocations strictly: a strict JSON
// object (internal/jws.ScanObject) with a non-empty "cursor" of printable
// ASCII, a boolean "reset" and an "entries" array; each entry a strict
// object with "kind" ("jti", "sid" or "user"), a non-empty "id", "until"
// (RFC 3339) and, exactly for "user", "before" (RFC 3339). An unknown kind
// refuses the answer: skipping it would accept what the server revoked.
// Other members are ignored.
func parseFeed(body []byte) (feedAnswer, error) {
	var a feedAnswer
	var seen struct{ cursor, reset, entries bool }
	var entriesRaw []byte
	err := jws.ScanObject(body, func(name []byte, v jws.Value) error {
		var err error
		switch string(name) {
		case "cursor":
			seen.cursor = true
			a.cursor, err = v.Str()
		case "reset":
			seen.reset = true
			if v.Kind != jws.KindBool {
				return errors.New(`"reset" is not a boolean`)
			}
			a.reset = string(v.Raw) == "true"
		case "entries":
			seen.entries = true
			if v.Kind != jws.KindArray {
				return errors.New(`"entries" is not an array`)
			}
			entriesRaw = v.Raw
		}
		if err != nil {
			return fmt.Errorf("member %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return feedAnswer{}, fmt.Errorf("answer: %w", err)
	}
	if !seen.cursor || !seen.reset || !seen.entries {
		return feedAnswer{}, errors.New(`answer: "cursor", "reset" and "entries" are required`)
	}
	if a.cursor == "" || len(a.cursor) > maxCursorLen {
		return feedAnswer{}, errors.New("answer: empty or overlong cursor")
	}
	for i := 0; i < len(a.cursor); i++ {
		if c := a.cursor[i]; c <= ' ' || c > '~' {
			return feedAnswer{}, errors.New("answer: cursor is not printable ASCII")
		}
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(entriesRaw, &elems); err != nil {
		return feedAnswer{}, fmt.Errorf("answer: entries: %w", err)
	}
	a.entries = make([]revocation.Entry, 0, len(elems))
	for i, raw := range elems {
		e, err := parseFeedEntry(raw)
		if err != nil {
			return feedAnswer{}, fmt.Errorf("answer: entry %d: %w", i, err)
		}
		a.entries = append(a.entries, e)
	}
	return a, nil
}

func parseFeedEntry(raw []byte) (revocation.Entry, error) {
	var e revocation.Entry
	var kind, before, until string
	var hasBefore bool
	err := jws.ScanObject(raw, func(name []byte, v jws.Value) error {
		var err error
		switch string(name) {
		case "kind":
			kind, err = v.Str()
		case "id":
			e.ID, err = v.Str()
		case "before":
			hasBefore = true
			before, err = v.Str()
		case "until":
			until, err = v.Str()
		}
		if err != nil {
			return fmt.Errorf("member %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	switch kind {
	case "jti":
		e.Kind = revocation.KindToken
	case "sid":
		e.Kind = revocation.KindSID
	case "user":
		e.Kind = revocation.KindUser
	default:
		return e, fmt.Errorf("unknown kind %q", kind)
	}
	if e.ID == "" {
		return e, errors.New("no id")
	}
	if e.Until, err = time.Parse(time.RFC3339Nano, until); err != nil || e.Until.IsZero() {
		return e, fmt.Errorf("until %q: not a time", until)
	}
	switch {
	case e.Kind == revocation.KindUser && !hasBefore:
		return e, errors.New("user entry without before")
	case e.Kind != revocation.KindUser && hasBefore:
		return e, fmt.Errorf("%s entry with before", kind)
	case hasBefore:
		if e.Before, err = time.Parse(time.RFC3339Nano, before); err != nil || e.Before.IsZero() {
			return e, fmt.Errorf("before %q: not a time", before)
		}
	}
	return e, nil
}
