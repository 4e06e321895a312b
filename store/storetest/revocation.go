package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
)

// TestRevocation runs the conformance suite for revocation.Store. open must
// return a new, empty store that uses c as its clock.
func TestRevocation(t *testing.T, open func(t *testing.T, c clock.Clock) revocation.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s revocation.Store, c *clock.Fake)
	}{
		{"Empty", testRevocationEmpty},
		{"RoundTrip", testRevocationRoundTrip},
		{"Namespaces", testRevocationNamespaces},
		{"Merge", testRevocationMerge},
		{"Liveness", testRevocationLiveness},
		{"Purge", testRevocationPurge},
		{"Concurrent", testRevocationConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tt.f(t, open(t, c), c)
		})
	}
}

// rvLoad returns the store's live entries sorted by kind and id.
func rvLoad(t testing.TB, s revocation.Store) []revocation.Entry {
	t.Helper()
	es, err := s.Load(context.Background())
	wantErr(t, "Load", err, nil)
	slices.SortFunc(es, func(a, b revocation.Entry) int {
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return es
}

// rvCheck compares entries sorted by kind and id.
func rvCheck(t testing.TB, what string, got, want []revocation.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		w := fmt.Sprintf("%s[%d]", what, i)
		if got[i].Kind != want[i].Kind || got[i].ID != want[i].ID {
			t.Errorf("%s = %v %q, want %v %q", w, got[i].Kind, got[i].ID, want[i].Kind, want[i].ID)
		}
		checkTime(t, w+".Until", got[i].Until, want[i].Until)
		if want[i].Before.IsZero() {
			if !got[i].Before.IsZero() {
				t.Errorf("%s.Before = %v, want zero", w, got[i].Before)
			}
		} else {
			checkTime(t, w+".Before", got[i].Before, want[i].Before)
		}
	}
}

func rvPurge(t testing.TB, s revocation.Store, want int) {
	t.Helper()
	n, err := s.Purge(context.Background())
	wantErr(t, "Purge", err, nil)
	if n != want {
		t.Errorf("Purge = %d, want %d", n, want)
	}
}

func testRevocationEmpty(t *testing.T, s revocation.Store, _ *clock.Fake) {
	rvCheck(t, "Load", rvLoad(t, s), nil)
	rvPurge(t, s, 0)
}

func testRevocationRoundTrip(t *testing.T, s revocation.Store, c *clock.Fake) {
	ctx := context.Background()
	now := c.Now().In(elsewhere)
	wantErr(t, "DenyToken", s.DenyToken(ctx, "jti-1", now.Add(10*time.Minute)), nil)
	wantErr(t, "RevokeSID", s.RevokeSID(ctx, "sid-1", now.Add(20*time.Minute)), nil)
	wantErr(t, "RevokeUser", s.RevokeUser(ctx, "user-1", now, now.Add(30*time.Minute)), nil)
	rvCheck(t, "Load", rvLoad(t, s), []revocation.Entry{
		{Kind: revocation.KindToken, ID: "jti-1", Until: now.Add(10 * time.Minute)},
		{Kind: revocation.KindSID, ID: "sid-1", Until: now.Add(20 * time.Minute)},
		{Kind: revocation.KindUser, ID: "user-1", Before: now, Until: now.Add(30 * time.Minute)},
	})
}

func testRevocationNamespaces(t *testing.T, s revocation.Store, c *clock.Fake) {
	ctx := context.Background()
	now := c.Now()
	wantErr(t, "DenyToken", s.DenyToken(ctx, "x", now.Add(time.Minute)), nil)
	wantErr(t, "RevokeSID", s.RevokeSID(ctx, "x", now.Add(2*time.Minute)), nil)
	wantErr(t, "RevokeUser", s.RevokeUser(ctx, "x", now, now.Add(3*time.Minute)), nil)
	rvCheck(t, "Load", rvLoad(t, s), []revocation.Entry{
		{Kind: revocation.KindToken, ID: "x", Until: now.Add(time.Minute)},
		{Kind: revocation.KindSID, ID: "x", Until: now.Add(2 * time.Minute)},
		{Kind: revocation.KindUser, ID: "x", Before: now, Until: now.Add(3 * time.Minute)},
	})
}

// testRevocationMerge checks that writing an existing entry never moves
// Until or Before backwards.
func testRevocationMerge(t *testing.T, s revocation.Store, c *clock.Fake) {
	ctx := context.Background()
	now := c.Now()
	later, earlier := now.Add(time.Hour), now.Add(time.Minute)
	wantErr(t, "DenyToken", s.DenyToken(ctx, "jti", later), nil)
	wantErr(t, "DenyToken earlier", s.DenyToken(ctx, "jti", earlier), nil)
	wantErr(t, "RevokeSID", s.RevokeSID(ctx, "sid", earlier), nil)
	wantErr(t, "RevokeSID later", s.RevokeSID(ctx, "sid", later), nil)
	// Before and Until merge independently.
	wantErr(t, "RevokeUser", s.RevokeUser(ctx, "u1", now, earlier), nil)
	wantErr(t, "RevokeUser earlier before, later until", s.RevokeUser(ctx, "u1", now.Add(-time.Hour), later), nil)
	wantErr(t, "RevokeUser", s.RevokeUser(ctx, "u2", now, later), nil)
	wantErr(t, "RevokeUser later before, earlier until", s.RevokeUser(ctx, "u2", now.Add(time.Second), earlier), nil)
	rvCheck(t, "Load", rvLoad(t, s), []revocation.Entry{
		{Kind: revocation.KindToken, ID: "jti", Until: later},
		{Kind: revocation.KindSID, ID: "sid", Until: later},
		{Kind: revocation.KindUser, ID: "u1", Before: now, Until: later},
		{Kind: revocation.KindUser, ID: "u2", Before: now.Add(time.Second), Until: later},
	})
}

func testRevocationLiveness(t *testing.T, s revocation.Store, c *clock.Fake) {
	ctx := context.Background()
	now := c.Now()
	wantErr(t, "DenyToken", s.DenyToken(ctx, "short", now.Add(time.Minute)), nil)
	wantErr(t, "RevokeSID", s.RevokeSID(ctx, "short", now.Add(time.Minute)), nil)
	wantErr(t, "RevokeUser", s.RevokeUser(ctx, "short", now, now.Add(time.Minute)), nil)
	wantErr(t, "DenyToken", s.DenyToken(ctx, "long", now.Add(time.Hour)), nil)
	wantErr(t, "DenyToken already past", s.DenyToken(ctx, "past", now), nil)
	long := revocation.Entry{Kind: revocation.KindToken, ID: "long", Until: now.Add(time.Hour)}

	c.Advance(time.Minute - time.Nanosecond)
	if got := rvLoad(t, s); len(got) != 4 {
		t.Errorf("Load just before the short entries end: %d entries %v, want 4", len(got), got)
	}
	c.Advance(time.Nanosecond)
	rvCheck(t, "Load when the short entries end", rvLoad(t, s), []revocation.Entry{long})
}

func testRevocationPurge(t *testing.T, s revocation.Store, c *clock.Fake) {
	ctx := context.Background()
	now := c.Now()
	wantErr(t, "DenyToken", s.DenyToken(ctx, "short", now.Add(time.Minute)), nil)
	wantErr(t, "RevokeSID", s.RevokeSID(ctx, "short", now.Add(time.Minute)), nil)
	wantErr(t, "RevokeUser", s.RevokeUser(ctx, "short", now, now.Add(time.Minute)), nil)
	wantErr(t, "RevokeSID", s.RevokeSID(ctx, "long", now.Add(time.Hour)), nil)
	long := revocation.Entry{Kind: revocation.KindSID, ID: "long", Until: now.Add(time.Hour)}

	rvPurge(t, s, 0)
	c.Advance(time.Minute)
	rvPurge(t, s, 3)
	rvPurge(t, s, 0)
	rvCheck(t, "Load after Purge", rvLoad(t, s), []revocation.Entry{long})

	// A purged entry is gone: writing it again starts afresh, and an
	// earlier before is taken as it is.
	c.Set(start)
	wantErr(t, "RevokeUser again", s.RevokeUser(ctx, "short", now.Add(-time.Hour), now.Add(time.Minute)), nil)
	rvCheck(t, "Load after writing a purged entry again", rvLoad(t, s), []revocation.Entry{
		long,
		{Kind: revocation.KindUser, ID: "short", Before: now.Add(-time.Hour), Until: now.Add(time.Minute)},
	})
}

func testRevocationConcurrent(t *testing.T, s revocation.Store, c *clock.Fake) {
	ctx := context.Background()
	now := c.Now()
	runConcurrently(t, goroutines, func(g int) error {
		for i := range opsEach {
			until := now.Add(time.Duration(g*opsEach+i+1) * time.Second)
			if err := s.DenyToken(ctx, "shared", until); err != nil {
				return err
			}
			if err := s.RevokeSID(ctx, fmt.Sprintf("sid-%d-%d", g, i), until); err != nil {
				return err
			}
			if err := s.RevokeUser(ctx, "shared", until, until); err != nil {
				return err
			}
			if _, err := s.Load(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	last := now.Add(time.Duration(goroutines*opsEach) * time.Second)
	es := rvLoad(t, s)
	if len(es) != 2+goroutines*opsEach {
		t.Fatalf("Load: %d entries, want %d", len(es), 2+goroutines*opsEach)
	}
	rvCheck(t, "shared entries", []revocation.Entry{es[0], es[len(es)-1]}, []revocation.Entry{
		{Kind: revocation.KindToken, ID: "shared", Until: last},
		{Kind: revocation.KindUser, ID: "shared", Before: last, Until: last},
	})
}
