package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

// TestAudit runs the conformance suite for audit.Store. open must return a
// new, empty store that uses c as its clock.
func TestAudit(t *testing.T, open func(t *testing.T, c clock.Clock) audit.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s audit.Store, c *clock.Fake)
	}{
		{"Empty", testAuditEmpty},
		{"RoundTrip", testAuditRoundTrip},
		{"Conflict", testAuditConflict},
		{"Order", testAuditOrder},
		{"Filter", testAuditFilter},
		{"Copies", testAuditCopies},
		{"Concurrent", testAuditConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tt.f(t, open(t, c), c)
		})
	}
}

// newEvent returns an event with every field set, its time in another zone
// than UTC.
func newEvent(t testing.TB, typ, userID string, at time.Time) *audit.Event {
	return &audit.Event{
		ID:        newID(t, "evt"),
		Time:      at.In(elsewhere),
		Type:      typ,
		Severity:  "warning",
		UserID:    userID,
		Username:  "name-of-" + userID,
		SessionID: "sess-of-" + userID,
		ActorID:   "admin-key",
		IP:        "192.0.2.7",
		UserAgent: "curl/8.14.1",
		Reason:    "bad_credentials",
	}
}

// checkEvent compares every field of got with want.
func checkEvent(t testing.TB, what string, got, want *audit.Event) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil event", what)
	}
	checkTime(t, what+": Time", got.Time, want.Time)
	g, w := *got, *want
	g.Time, w.Time = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

// checkEventIDs compares the ids of got, in order, with those of want.
func checkEventIDs(t testing.TB, what string, got []*audit.Event, want ...*audit.Event) {
	t.Helper()
	ids := func(es []*audit.Event) []string {
		out := make([]string, 0, len(es))
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	checkStrings(t, what, ids(got), ids(want))
}

// mustAppend appends the events or fails the test.
func mustAppend(t testing.TB, s audit.Store, es ...*audit.Event) {
	t.Helper()
	for _, e := range es {
		if err := s.AppendEvent(context.Background(), e); err != nil {
			t.Fatalf("AppendEvent(%s): %v", e.ID, err)
		}
	}
}

// mustEvents queries events or fails the test.
func mustEvents(t testing.TB, s audit.Store, f audit.Filter) []*audit.Event {
	t.Helper()
	es, err := s.Events(context.Background(), f)
	if err != nil {
		t.Fatalf("Events(%+v): %v", f, err)
	}
	return es
}

func testAuditEmpty(t *testing.T, s audit.Store, _ *clock.Fake) {
	for _, f := range []audit.Filter{{}, {UserID: "u"}, {Type: "login.success", Limit: 5}} {
		if got := mustEvents(t, s, f); len(got) != 0 {
			t.Errorf("Events(%+v) on an empty store = %d events, want 0", f, len(got))
		}
	}
}

func testAuditRoundTrip(t *testing.T, s audit.Store, c *clock.Fake) {
	full := newEvent(t, "login.failure", "alice", c.Now())
	bare := &audit.Event{ID: newID(t, "evt"), Time: c.Now().Add(time.Nanosecond), Type: "keys.rotated", Severity: "info"}
	mustAppend(t, s, full, bare)
	got := mustEvents(t, s, audit.Filter{})
	checkEventIDs(t, "Events", got, bare, full)
	if len(got) == 2 {
		checkEvent(t, "bare event", got[0], bare)
		checkEvent(t, "full event", got[1], full)
	}
}

func testAuditConflict(t *testing.T, s audit.Store, c *clock.Fake) {
	e := newEvent(t, "login.success", "alice", c.Now())
	mustAppend(t, s, e)
	dup := newEvent(t, "logout", "bob", c.Now().Add(time.Second))
	dup.ID = e.ID
	wantErr(t, "AppendEvent of a duplicate id", s.AppendEvent(context.Background(), dup), store.ErrConflict)
	got := mustEvents(t, s, audit.Filter{})
	checkEventIDs(t, "Events", got, e)
	if len(got) == 1 {
		checkEvent(t, "original event", got[0], e)
	}
}

func testAuditOrder(t *testing.T, s audit.Store, c *clock.Fake) {
	t0 := c.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	e1 := newEvent(t, "a", "u", at(1))
	e2 := newEvent(t, "a", "u", at(3))
	e3 := newEvent(t, "a", "u", at(2))
	e4 := newEvent(t, "a", "u", at(2))
	e5 := newEvent(t, "a", "u", at(2))
	e6 := newEvent(t, "a", "u", at(0))
	e7 := newEvent(t, "a", "u", at(time.Hour))
	mustAppend(t, s, e1, e2, e3, e4, e5, e6, e7)
	// Newest first by time; equal times, the last appended first.
	want := []*audit.Event{e7, e2, e5, e4, e3, e1, e6}
	checkEventIDs(t, "Events", mustEvents(t, s, audit.Filter{}), want...)
	checkEventIDs(t, "Events by user", mustEvents(t, s, audit.Filter{UserID: "u"}), want...)
	checkEventIDs(t, "Events by type", mustEvents(t, s, audit.Filter{Type: "a"}), want...)
	checkEventIDs(t, "Events limit 3", mustEvents(t, s, audit.Filter{Limit: 3}), want[:3]...)
}

func testAuditFilter(t *testing.T, s audit.Store, c *clock.Fake) {
	var all []*audit.Event // newest first
	add := func(typ, userID string) *audit.Event {
		c.Advance(time.Second)
		e := newEvent(t, typ, userID, c.Now())
		if userID == "" {
			e.Username, e.SessionID = "", ""
		}
		mustAppend(t, s, e)
		all = append([]*audit.Event{e}, all...)
		return e
	}
	a1 := add("login.success", "alice")
	b1 := add("login.failure", "bob")
	a2 := add("login.failure", "alice")
	k1 := add("keys.rotated", "")
	a3 := add("logout", "alice")
	b2 := add("login.success", "bob")
	a4 := add("login.failure", "alice")

	cases := []struct {
		name   string
		filter audit.Filter
		want   []*audit.Event
	}{
		{"everything", audit.Filter{}, all},
		{"negative limit is no limit", audit.Filter{Limit: -1}, all},
		{"limit", audit.Filter{Limit: 2}, []*audit.Event{a4, b2}},
		{"limit above the count", audit.Filter{Limit: 100}, all},
		{"by user", audit.Filter{UserID: "alice"}, []*audit.Event{a4, a3, a2, a1}},
		{"by user with limit", audit.Filter{UserID: "alice", Limit: 3}, []*audit.Event{a4, a3, a2}},
		{"by other user", audit.Filter{UserID: "bob"}, []*audit.Event{b2, b1}},
		{"by type", audit.Filter{Type: "login.failure"}, []*audit.Event{a4, a2, b1}},
		{"by type with limit", audit.Filter{Type: "login.success", Limit: 1}, []*audit.Event{b2}},
		{"by type without user", audit.Filter{Type: "keys.rotated"}, []*audit.Event{k1}},
		{"by user and type", audit.Filter{UserID: "alice", Type: "login.failure"}, []*audit.Event{a4, a2}},
		{"by user and type with limit", audit.Filter{UserID: "bob", Type: "login.failure", Limit: 1}, []*audit.Event{b1}},
		{"unknown user", audit.Filter{UserID: "carol"}, nil},
		{"unknown type", audit.Filter{Type: "nope"}, nil},
		{"user and type that never meet", audit.Filter{UserID: "bob", Type: "logout"}, nil},
		{"user id is exact", audit.Filter{UserID: "ALICE"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mustEvents(t, s, tc.filter)
			checkEventIDs(t, "Events", got, tc.want...)
			for i := range min(len(got), len(tc.want)) {
				checkEvent(t, fmt.Sprintf("Events[%d]", i), got[i], tc.want[i])
			}
		})
	}
}

func testAuditCopies(t *testing.T, s audit.Store, c *clock.Fake) {
	e := newEvent(t, "login.success", "alice", c.Now())
	want := *e
	mustAppend(t, s, e)
	e.Type, e.UserID, e.Reason = "changed", "mallory", "changed"

	got := mustEvents(t, s, audit.Filter{})
	if len(got) != 1 {
		t.Fatalf("Events = %d events, want 1", len(got))
	}
	checkEvent(t, "after changing the argument", got[0], &want)
	got[0].Type, got[0].UserID = "changed", "mallory"
	got[0] = nil

	got = mustEvents(t, s, audit.Filter{UserID: "alice"})
	if len(got) != 1 {
		t.Fatalf("Events(alice) = %d events, want 1", len(got))
	}
	checkEvent(t, "after changing a result", got[0], &want)
}

func testAuditConcurrent(t *testing.T, s audit.Store, c *clock.Fake) {
	ctx := context.Background()
	const reads = 5
	appends := opsEach - reads
	runConcurrently(t, goroutines, func(g int) error {
		user := fmt.Sprintf("user-%02d", g)
		for i := range opsEach {
			if i%(opsEach/reads) == 0 {
				es, err := s.Events(ctx, audit.Filter{UserID: user, Limit: 10})
				if err != nil {
					return fmt.Errorf("goroutine %d: Events: %w", g, err)
				}
				if want := min(10, i-i/(opsEach/reads)); len(es) != want {
					return fmt.Errorf("goroutine %d: Events = %d events before append %d, want %d", g, len(es), i, want)
				}
				continue
			}
			e := newEvent(t, "login.success", user, c.Now())
			if err := s.AppendEvent(ctx, e); err != nil {
				return fmt.Errorf("goroutine %d: AppendEvent: %w", g, err)
			}
		}
		return nil
	})
	if got := mustEvents(t, s, audit.Filter{}); len(got) != goroutines*appends {
		t.Errorf("Events = %d events, want %d", len(got), goroutines*appends)
	}
	for g := range goroutines {
		user := fmt.Sprintf("user-%02d", g)
		if got := mustEvents(t, s, audit.Filter{UserID: user}); len(got) != appends {
			t.Errorf("Events(%s) = %d events, want %d", user, len(got), appends)
		}
	}
}
