// Package storetest is the conformance suite that every storage backend
// passes. A backend's own test calls it once per interface it implements:
//
//	func TestStore(t *testing.T) {
//		open := func(t *testing.T, c clock.Clock) *memory.Store { return memory.New(c) }
//		storetest.TestAccounts(t, func(t *testing.T, c clock.Clock) account.Store { return open(t, c) })
//		storetest.TestSessions(t, func(t *testing.T, c clock.Clock) session.Store { return open(t, c) })
//		storetest.TestAudit(t, func(t *testing.T, c clock.Clock) audit.Store { return open(t, c) })
//	}
//
// The suite owns the clock: it creates a *clock.Fake for every subtest, passes
// it to open, and moves it to test expiry. open is called once per subtest and
// must return an empty store that no other subtest sees (a fresh file, a fresh
// key prefix, a fresh schema); it should release it with t.Cleanup.
//
// The suite checks only what the interfaces promise, through the interfaces:
// it knows nothing of any backend's internals. Beyond the doc comments of the
// interfaces, it fixes these choices so that every backend makes the same:
//
//   - Times come back in UTC, equal (time.Time.Equal) to what was stored,
//     with nanosecond precision; the zero time comes back as the zero time.
//   - Empty role lists come back empty (nil or zero length).
//   - A limit of zero or less (ListUsers, audit.Filter.Limit) means no limit.
//   - DeleteUserSession of a dead session is store.ErrNotFound, and
//     DeleteUserSessions returns only the live sessions it deleted.
//   - A backend that has a Purge(ctx) (int, error) method removes exactly the
//     dead sessions with it and reports how many.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// Concurrency of the "Concurrent" subtests: goroutines × operations each.
const (
	goroutines = 16
	opsEach    = 50
)

// start is the fake clock's initial time: nanoseconds set, so that a backend
// that rounds is caught.
var start = time.Date(2031, time.May, 17, 9, 41, 7, 123456789, time.UTC)

// elsewhere is a zone that times are given in, to check that backends return
// UTC whatever zone they were given.
var elsewhere = time.FixedZone("UTC+05:30", 5*3600+30*60)

// purger is the optional ability of a backend to remove dead sessions.
type purger interface {
	Purge(ctx context.Context) (int, error)
}

// newClock returns a fake clock at start.
func newClock() *clock.Fake { return clock.NewFake(start) }

// randomBytes returns n bytes from crypto/rand.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return b
}

// newHash returns a random 32-byte session hash.
func newHash(t testing.TB) []byte { return randomBytes(t, 32) }

// newID returns a random id with a readable prefix.
func newID(t testing.TB, prefix string) string {
	return prefix + "-" + hex.EncodeToString(randomBytes(t, 8))
}

// wantErr fails the test unless errors.Is(err, target); a nil target wants
// no error.
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// checkTime reports got != want (by time.Equal) or got not in UTC.
func checkTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s is in %v, want UTC", what, got.Location())
	}
}

// checkStrings reports a difference between two string slices, treating nil
// and empty as equal.
func checkStrings(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %q, want %q", what, got, want)
			return
		}
	}
}

// runConcurrently runs f(g) in n goroutines and waits for them all; errors
// are reported with t.Error from the calling goroutine.
func runConcurrently(t *testing.T, n int, f func(g int) error) {
	t.Helper()
	errs := make(chan error, n)
	for g := range n {
		go func() { errs <- f(g) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
