package refresh_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

// Two tabs refresh with the same token at once: the second gets a sibling.
// A copy of the token presented after the grace period is reuse, and the
// whole family ends.
func ExampleManager_Rotate() {
	ctx := context.Background()
	c := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := refresh.DefaultConfig() // grace 10 s
	cfg.Clock = c
	m, err := refresh.NewManager(memory.NewRefresh(c), cfg)
	if err != nil {
		panic(err)
	}
	tok, _, err := m.Start(ctx, "user-1", refresh.Meta{})
	if err != nil {
		panic(err)
	}

	tab1, _, out, _ := m.Rotate(ctx, tok)
	fmt.Println("tab 1:", out)
	tab2, _, out, _ := m.Rotate(ctx, tok)
	fmt.Println("tab 2:", out)

	c.Advance(time.Minute)
	_, _, out, err = m.Rotate(ctx, tok)
	fmt.Println("stolen copy:", out, errors.Is(err, refresh.ErrReuse))
	for _, t := range []string{tab1, tab2} {
		_, _, out, err = m.Rotate(ctx, t)
		fmt.Println("tab:", out, errors.Is(err, refresh.ErrInvalidGrant))
	}
	// Output:
	// tab 1: rotated
	// tab 2: grace_replay
	// stolen copy: reuse true
	// tab: revoked true
	// tab: revoked true
}
