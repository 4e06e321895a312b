package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
)

// Lifetimes of the sessions the suite creates.
const (
	idleTimeout     = 30 * time.Minute
	absoluteTimeout = 12 * time.Hour
)

// TestSessions runs the conformance suite for session.Store. open must
// return a new, empty store that uses c as its clock.
func TestSessions(t *testing.T, open func(t *testing.T, c clock.Clock) session.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s session.Store, c *clock.Fake)
	}{
		{"NotFound", testSessionNotFound},
		{"RoundTrip", testSessionRoundTrip},
		{"Conflict", testSessionConflict},
		{"Touch", testTouchSession},
		{"IdleExpiry", testIdleExpiry},
		{"AbsoluteExpiry", testAbsoluteExpiry},
		{"DeleteSession", testDeleteSession},
		{"DeleteUserSession", testDeleteUserSession},
		{"DeleteUserSessions", testDeleteUserSessions},
		{"SessionsByUser", testSessionsByUser},
		{"Copies", testSessionCopies},
		{"Purge", testPurge},
		{"Concurrent", testSessionsConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tt.f(t, open(t, c), c)
		})
	}
}

// newSession returns a session of userID created now, with the default
// lifetimes and its times in another zone than UTC.
func newSession(t testing.TB, c clock.Clock, userID string) *session.Session {
	now := c.Now().In(elsewhere)
	return &session.Session{
		ID:            newID(t, "sess"),
		Hash:          newHash(t),
		UserID:        userID,
		CreatedAt:     now,
		LastSeenAt:    now,
		IdleExpiresAt: now.Add(idleTimeout),
		ExpiresAt:     now.Add(absoluteTimeout),
		UserAgent:     "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0",
		IP:            "2001:db8::1",
	}
}

// cloneSession returns a deep copy of s.
func cloneSession(s *session.Session) *session.Session {
	c := *s
	c.Hash = bytes.Clone(s.Hash)
	return &c
}

// checkSession compares every field of got with want.
func checkSession(t testing.TB, what string, got, want *session.Session) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil session", what)
	}
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", what, got.ID, want.ID)
	}
	if !bytes.Equal(got.Hash, want.Hash) {
		t.Errorf("%s: Hash = %x, want %x", what, got.Hash, want.Hash)
	}
	if got.UserID != want.UserID {
		t.Errorf("%s: UserID = %q, want %q", what, got.UserID, want.UserID)
	}
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+": LastSeenAt", got.LastSeenAt, want.LastSeenAt)
	checkTime(t, what+": IdleExpiresAt", got.IdleExpiresAt, want.IdleExpiresAt)
	checkTime(t, what+": ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	if got.UserAgent != want.UserAgent {
		t.Errorf("%s: UserAgent = %q, want %q", what, got.UserAgent, want.UserAgent)
	}
	if got.IP != want.IP {
		t.Errorf("%s: IP = %q, want %q", what, got.IP, want.IP)
	}
}

// checkSessionIDs compares the ids of got, in order, with those of want.
func checkSessionIDs(t testing.TB, what string, got []*session.Session, want ...*session.Session) {
	t.Helper()
	checkStrings(t, what, sessionIDs(got), sessionIDs(want))
}

// sessionIDs returns the ids of ss in order.
func sessionIDs(ss []*session.Session) []string {
	ids := make([]string, 0, len(ss))
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

// mustCreateSession creates s or fails the test.
func mustCreateSession(t testing.TB, st session.Store, s *session.Session) {
	t.Helper()
	if err := st.CreateSession(context.Background(), s); err != nil {
		t.Fatalf("CreateSession(%s): %v", s.ID, err)
	}
}

// mustSessionByHash loads a live session or fails the test.
func mustSessionByHash(t testing.TB, st session.Store, hash []byte) *session.Session {
	t.Helper()
	s, err := st.SessionByHash(context.Background(), hash)
	if err != nil {
		t.Fatalf("SessionByHash(%x): %v", hash, err)
	}
	return s
}

// mustSessionsByUser lists a user's sessions or fails the test.
func mustSessionsByUser(t testing.TB, st session.Store, userID string) []*session.Session {
	t.Helper()
	ss, err := st.SessionsByUser(context.Background(), userID)
	if err != nil {
		t.Fatalf("SessionsByUser(%q): %v", userID, err)
	}
	return ss
}

// checkGone fails unless the session is no longer found by hash.
func checkGone(t testing.TB, st session.Store, s *session.Session) {
	t.Helper()
	_, err := st.SessionByHash(context.Background(), s.Hash)
	wantErr(t, "SessionByHash of "+s.ID, err, store.ErrNotFound)
}

func testSessionNotFound(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	present := newSession(t, c, "alice")
	mustCreateSession(t, st, present)
	cases := []struct {
		name string
		call func() error
	}{
		{"SessionByHash", func() error { _, err := st.SessionByHash(ctx, newHash(t)); return err }},
		{"SessionByHash nil", func() error { _, err := st.SessionByHash(ctx, nil); return err }},
		{"SessionByHash prefix", func() error { _, err := st.SessionByHash(ctx, present.Hash[:31]); return err }},
		{"TouchSession", func() error {
			return st.TouchSession(ctx, newHash(t), c.Now(), c.Now().Add(time.Minute))
		}},
		{"DeleteUserSession unknown id", func() error { _, err := st.DeleteUserSession(ctx, "alice", "nope"); return err }},
		{"DeleteUserSession unknown user", func() error { _, err := st.DeleteUserSession(ctx, "nobody", present.ID); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), store.ErrNotFound)
		})
	}
	t.Run("DeleteSession missing is not an error", func(t *testing.T) {
		wantErr(t, "DeleteSession", st.DeleteSession(ctx, newHash(t)), nil)
	})
	t.Run("no sessions is an empty list", func(t *testing.T) {
		if got := mustSessionsByUser(t, st, "nobody"); len(got) != 0 {
			t.Errorf("SessionsByUser(nobody) = %d sessions, want 0", len(got))
		}
		got, err := st.DeleteUserSessions(ctx, "nobody", nil)
		wantErr(t, "DeleteUserSessions", err, nil)
		if len(got) != 0 {
			t.Errorf("DeleteUserSessions(nobody) = %d sessions, want 0", len(got))
		}
	})
	checkSession(t, "untouched session", mustSessionByHash(t, st, present.Hash), present)
}

func testSessionRoundTrip(t *testing.T, st session.Store, c *clock.Fake) {
	full := newSession(t, c, "alice")
	full.LastSeenAt = full.CreatedAt.Add(7 * time.Nanosecond)
	full.IdleExpiresAt = full.LastSeenAt.Add(idleTimeout)
	bare := newSession(t, c, "bob")
	bare.UserAgent, bare.IP = "", ""
	for _, s := range []*session.Session{full, bare} {
		mustCreateSession(t, st, s)
	}
	for _, want := range []*session.Session{full, bare} {
		checkSession(t, "SessionByHash "+want.UserID, mustSessionByHash(t, st, want.Hash), want)
		list := mustSessionsByUser(t, st, want.UserID)
		if len(list) != 1 {
			t.Fatalf("SessionsByUser(%s) = %d sessions, want 1", want.UserID, len(list))
		}
		checkSession(t, "SessionsByUser "+want.UserID, list[0], want)
	}
}

func testSessionConflict(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	orig := newSession(t, c, "alice")
	mustCreateSession(t, st, orig)

	sameHash := newSession(t, c, "bob")
	sameHash.Hash = bytes.Clone(orig.Hash)
	sameID := newSession(t, c, "bob")
	sameID.ID = orig.ID
	cases := []struct {
		name string
		s    *session.Session
	}{
		{"same hash", sameHash},
		{"same id", sameID},
		{"same both", cloneSession(orig)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "CreateSession", st.CreateSession(ctx, tc.s), store.ErrConflict)
			checkSession(t, "original", mustSessionByHash(t, st, orig.Hash), orig)
		})
	}
	checkGone(t, st, sameID)
	if got := mustSessionsByUser(t, st, "bob"); len(got) != 0 {
		t.Errorf("SessionsByUser(bob) = %d sessions after refused creates, want 0", len(got))
	}
	checkSessionIDs(t, "SessionsByUser(alice)", mustSessionsByUser(t, st, "alice"), orig)
}

func testTouchSession(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	s := newSession(t, c, "alice")
	other := newSession(t, c, "alice")
	mustCreateSession(t, st, s)
	mustCreateSession(t, st, other)

	// A touch moves LastSeenAt and IdleExpiresAt and nothing else.
	c.Advance(20 * time.Minute)
	seen := c.Now().In(elsewhere)
	wantErr(t, "TouchSession", st.TouchSession(ctx, s.Hash, seen, seen.Add(idleTimeout)), nil)
	want := cloneSession(s)
	want.LastSeenAt = seen
	want.IdleExpiresAt = seen.Add(idleTimeout)
	checkSession(t, "after touch", mustSessionByHash(t, st, s.Hash), want)
	checkSession(t, "other session", mustSessionByHash(t, st, other.Hash), other)

	// Past the first idle expiry, the touched session lives on; the other
	// does not.
	c.Advance(20 * time.Minute)
	checkSession(t, "after the old idle expiry", mustSessionByHash(t, st, s.Hash), want)
	checkGone(t, st, other)
	checkSessionIDs(t, "SessionsByUser", mustSessionsByUser(t, st, "alice"), s)

	// A second touch overwrites the first.
	seen2 := c.Now().Add(time.Nanosecond)
	wantErr(t, "TouchSession again", st.TouchSession(ctx, s.Hash, seen2, seen2.Add(idleTimeout)), nil)
	want.LastSeenAt, want.IdleExpiresAt = seen2, seen2.Add(idleTimeout)
	checkSession(t, "after second touch", mustSessionByHash(t, st, s.Hash), want)

	// A dead session cannot be touched back to life.
	wantErr(t, "TouchSession of a dead session",
		st.TouchSession(ctx, other.Hash, c.Now(), c.Now().Add(idleTimeout)), store.ErrNotFound)
	checkGone(t, st, other)
}

// liveness is one step of an expiry table: at offset from creation, is the
// session live?
type liveness struct {
	name   string
	offset time.Duration
	live   bool
}

// checkLiveness moves the clock through steps (in increasing order) and
// checks what every lookup says of s at each.
func checkLiveness(t *testing.T, st session.Store, c *clock.Fake, s *session.Session, steps []liveness) {
	t.Helper()
	ctx := context.Background()
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			c.Set(s.CreatedAt.Add(step.offset))
			list := mustSessionsByUser(t, st, s.UserID)
			if step.live {
				checkSession(t, "SessionByHash", mustSessionByHash(t, st, s.Hash), s)
				checkSessionIDs(t, "SessionsByUser", list, s)
				return
			}
			checkGone(t, st, s)
			checkSessionIDs(t, "SessionsByUser", list)
			wantErr(t, "TouchSession", st.TouchSession(ctx, s.Hash, c.Now(), c.Now().Add(idleTimeout)), store.ErrNotFound)
			_, err := st.DeleteUserSession(ctx, s.UserID, s.ID)
			wantErr(t, "DeleteUserSession", err, store.ErrNotFound)
		})
	}
}

func testIdleExpiry(t *testing.T, st session.Store, c *clock.Fake) {
	s := newSession(t, c, "alice")
	mustCreateSession(t, st, s)
	checkLiveness(t, st, c, s, []liveness{
		{"at creation", 0, true},
		{"one nanosecond before idle expiry", idleTimeout - time.Nanosecond, true},
		{"at idle expiry", idleTimeout, false},
		{"after idle expiry", idleTimeout + time.Hour, false},
	})
}

func testAbsoluteExpiry(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	// The store checks both bounds even when IdleExpiresAt is not capped.
	s := newSession(t, c, "alice")
	s.ExpiresAt = s.CreatedAt.Add(time.Hour)
	s.IdleExpiresAt = s.CreatedAt.Add(2 * time.Hour)
	mustCreateSession(t, st, s)

	// A touch that pushes the idle expiry further does not extend the
	// absolute one.
	c.Advance(50 * time.Minute)
	s.LastSeenAt = c.Now().In(time.UTC)
	s.IdleExpiresAt = s.LastSeenAt.Add(3 * time.Hour)
	wantErr(t, "TouchSession", st.TouchSession(ctx, s.Hash, s.LastSeenAt, s.IdleExpiresAt), nil)

	checkLiveness(t, st, c, s, []liveness{
		{"one nanosecond before absolute expiry", time.Hour - time.Nanosecond, true},
		{"at absolute expiry", time.Hour, false},
		{"after absolute expiry", 2 * time.Hour, false},
	})
}

func testDeleteSession(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	s := newSession(t, c, "alice")
	keep := newSession(t, c, "alice")
	mustCreateSession(t, st, s)
	mustCreateSession(t, st, keep)

	for i := range 2 { // the second delete is a no-op
		wantErr(t, fmt.Sprintf("DeleteSession #%d", i+1), st.DeleteSession(ctx, s.Hash), nil)
		checkGone(t, st, s)
		checkSession(t, "other session", mustSessionByHash(t, st, keep.Hash), keep)
		checkSessionIDs(t, "SessionsByUser", mustSessionsByUser(t, st, "alice"), keep)
	}
	_, err := st.DeleteUserSession(ctx, "alice", s.ID)
	wantErr(t, "DeleteUserSession of a deleted session", err, store.ErrNotFound)
	wantErr(t, "TouchSession of a deleted session", st.TouchSession(ctx, s.Hash, c.Now(), c.Now().Add(time.Minute)), store.ErrNotFound)
	checkGone(t, st, s)

	// A deleted session's hash and id are free again.
	again := cloneSession(s)
	mustCreateSession(t, st, again)
	checkSession(t, "recreated", mustSessionByHash(t, st, s.Hash), again)

	// Deleting a dead session is not an error either.
	c.Advance(absoluteTimeout)
	wantErr(t, "DeleteSession of a dead session", st.DeleteSession(ctx, keep.Hash), nil)
}

func testDeleteUserSession(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	a1 := newSession(t, c, "alice")
	a2 := newSession(t, c, "alice")
	short := newSession(t, c, "alice")
	short.IdleExpiresAt = short.CreatedAt.Add(time.Minute)
	b1 := newSession(t, c, "bob")
	for _, s := range []*session.Session{a1, a2, short, b1} {
		mustCreateSession(t, st, s)
	}
	c.Advance(2 * time.Minute) // short is dead

	cases := []struct {
		name   string
		userID string
		id     string
		want   *session.Session // nil: store.ErrNotFound
	}{
		{"another user's session", "alice", b1.ID, nil},
		{"by the other user", "bob", a1.ID, nil},
		{"unknown id", "alice", "nope", nil},
		{"empty id", "alice", "", nil},
		{"dead session", "alice", short.ID, nil},
		{"own session", "alice", a1.ID, a1},
		{"already deleted", "alice", a1.ID, nil},
		{"other user's own session", "bob", b1.ID, b1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Concat(mustSessionsByUser(t, st, "alice"), mustSessionsByUser(t, st, "bob"))
			got, err := st.DeleteUserSession(ctx, tc.userID, tc.id)
			after := slices.Concat(mustSessionsByUser(t, st, "alice"), mustSessionsByUser(t, st, "bob"))
			if tc.want == nil {
				wantErr(t, "DeleteUserSession", err, store.ErrNotFound)
				checkSessionIDs(t, "sessions after a refused delete", after, before...)
				return
			}
			wantErr(t, "DeleteUserSession", err, nil)
			checkSession(t, "deleted session", got, tc.want)
			checkGone(t, st, tc.want)
			if len(after) != len(before)-1 {
				t.Errorf("%d sessions left, want %d", len(after), len(before)-1)
			}
		})
	}
	checkSession(t, "remaining session", mustSessionByHash(t, st, a2.Hash), a2)
}

func testDeleteUserSessions(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	create := func(userID string, n int) []*session.Session {
		var ss []*session.Session
		for range n {
			s := newSession(t, c, userID)
			mustCreateSession(t, st, s)
			ss = append(ss, s)
			c.Advance(time.Second)
		}
		return ss
	}
	dead := newSession(t, c, "alice")
	dead.IdleExpiresAt = dead.CreatedAt.Add(time.Second)
	mustCreateSession(t, st, dead)
	alice := create("alice", 4)
	bob := create("bob", 2)
	carol := create("carol", 2)

	// sorted returns the ids sorted, for comparing sets.
	sorted := func(ss []*session.Session) []string {
		ids := sessionIDs(ss)
		slices.Sort(ids)
		return ids
	}

	t.Run("keep one", func(t *testing.T) {
		got, err := st.DeleteUserSessions(ctx, "alice", alice[2].Hash)
		wantErr(t, "DeleteUserSessions", err, nil)
		checkStrings(t, "deleted (live ones only)", sorted(got),
			sorted([]*session.Session{alice[0], alice[1], alice[3]}))
		for _, s := range got {
			if s.ID == alice[0].ID {
				checkSession(t, "deleted session", s, alice[0])
			}
		}
		for _, s := range []*session.Session{alice[0], alice[1], alice[3]} {
			checkGone(t, st, s)
		}
		checkSessionIDs(t, "alice's sessions", mustSessionsByUser(t, st, "alice"), alice[2])
		checkSessionIDs(t, "bob's sessions", mustSessionsByUser(t, st, "bob"), bob[1], bob[0])
	})
	t.Run("keep none", func(t *testing.T) {
		got, err := st.DeleteUserSessions(ctx, "alice", nil)
		wantErr(t, "DeleteUserSessions", err, nil)
		checkSessionIDs(t, "deleted", got, alice[2])
		checkGone(t, st, alice[2])
		checkSessionIDs(t, "alice's sessions", mustSessionsByUser(t, st, "alice"))
		checkSessionIDs(t, "bob's sessions", mustSessionsByUser(t, st, "bob"), bob[1], bob[0])
	})
	t.Run("nothing left", func(t *testing.T) {
		got, err := st.DeleteUserSessions(ctx, "alice", nil)
		wantErr(t, "DeleteUserSessions", err, nil)
		checkSessionIDs(t, "deleted", got)
	})
	t.Run("keep of another user", func(t *testing.T) {
		got, err := st.DeleteUserSessions(ctx, "carol", bob[0].Hash)
		wantErr(t, "DeleteUserSessions", err, nil)
		checkStrings(t, "deleted", sorted(got), sorted(carol))
		checkSessionIDs(t, "bob's sessions", mustSessionsByUser(t, st, "bob"), bob[1], bob[0])
	})
	t.Run("empty keep", func(t *testing.T) {
		got, err := st.DeleteUserSessions(ctx, "bob", []byte{})
		wantErr(t, "DeleteUserSessions", err, nil)
		checkStrings(t, "deleted", sorted(got), sorted(bob))
		checkSessionIDs(t, "bob's sessions", mustSessionsByUser(t, st, "bob"))
	})
}

func testSessionsByUser(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	s1 := newSession(t, c, "alice")
	s1.IdleExpiresAt = s1.CreatedAt.Add(10 * time.Minute)
	c.Advance(time.Second)
	s2 := newSession(t, c, "alice")
	c.Advance(time.Nanosecond)
	s3 := newSession(t, c, "alice")
	// Created last, but logged in first: order is by CreatedAt.
	s0 := newSession(t, c, "alice")
	s0.CreatedAt = s1.CreatedAt.Add(-time.Minute)
	b1 := newSession(t, c, "bob")
	for _, s := range []*session.Session{s1, s2, s3, s0, b1} {
		mustCreateSession(t, st, s)
	}

	got := mustSessionsByUser(t, st, "alice")
	checkSessionIDs(t, "SessionsByUser(alice)", got, s3, s2, s1, s0)
	for i, want := range []*session.Session{s3, s2, s1, s0} {
		if i < len(got) {
			checkSession(t, fmt.Sprintf("SessionsByUser(alice)[%d]", i), got[i], want)
		}
	}
	checkSessionIDs(t, "SessionsByUser(bob)", mustSessionsByUser(t, st, "bob"), b1)
	checkSessionIDs(t, "SessionsByUser(ALICE)", mustSessionsByUser(t, st, "ALICE"))

	// A touch does not reorder; deleted and dead sessions drop out.
	wantErr(t, "TouchSession", st.TouchSession(ctx, s0.Hash, c.Now(), c.Now().Add(2*time.Hour)), nil)
	wantErr(t, "DeleteSession", st.DeleteSession(ctx, s2.Hash), nil)
	checkSessionIDs(t, "after touch and delete", mustSessionsByUser(t, st, "alice"), s3, s1, s0)
	c.Advance(10 * time.Minute) // s1 is dead; s0 was touched; s3 lives.
	checkSessionIDs(t, "after s1 expired", mustSessionsByUser(t, st, "alice"), s3, s0)
}

func testSessionCopies(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	s := newSession(t, c, "alice")
	want := cloneSession(s)
	mustCreateSession(t, st, s)

	// Changing what was passed in changes nothing stored.
	s.Hash[0] ^= 0xff
	s.UserAgent = "changed"
	s.UserID = "mallory"
	checkSession(t, "after changing the argument", mustSessionByHash(t, st, want.Hash), want)
	checkGone(t, st, s)

	// Changing what came out changes nothing stored.
	got := mustSessionByHash(t, st, want.Hash)
	got.Hash[0] ^= 0xff
	got.ExpiresAt = got.ExpiresAt.Add(time.Hour)
	checkSession(t, "after changing a result", mustSessionByHash(t, st, want.Hash), want)

	list := mustSessionsByUser(t, st, "alice")
	if len(list) != 1 {
		t.Fatalf("SessionsByUser = %d sessions, want 1", len(list))
	}
	list[0].Hash[1] ^= 0xff
	list[0].UserID = "mallory"
	list[0] = nil
	checkSessionIDs(t, "after changing a list", mustSessionsByUser(t, st, "alice"), want)
	checkSession(t, "after changing a list", mustSessionByHash(t, st, want.Hash), want)

	// Nor does changing the hash passed to a lookup or a touch.
	hash := bytes.Clone(want.Hash)
	wantErr(t, "TouchSession", st.TouchSession(ctx, hash, want.LastSeenAt, want.IdleExpiresAt), nil)
	hash[0] ^= 0xff
	checkSession(t, "after changing a touched hash", mustSessionByHash(t, st, want.Hash), want)
}

func testPurge(t *testing.T, st session.Store, c *clock.Fake) {
	p, ok := st.(purger)
	if !ok {
		t.Skip("the backend has no Purge method")
	}
	ctx := context.Background()
	live := newSession(t, c, "alice")
	touched := newSession(t, c, "alice")
	touched.IdleExpiresAt = touched.CreatedAt.Add(time.Minute)
	idleDead := newSession(t, c, "alice")
	idleDead.IdleExpiresAt = idleDead.CreatedAt.Add(time.Minute)
	absDead := newSession(t, c, "bob")
	absDead.ExpiresAt = absDead.CreatedAt.Add(time.Minute)
	for _, s := range []*session.Session{live, touched, idleDead, absDead} {
		mustCreateSession(t, st, s)
	}
	wantErr(t, "TouchSession", st.TouchSession(ctx, touched.Hash, c.Now(), c.Now().Add(time.Hour)), nil)

	n, err := p.Purge(ctx)
	wantErr(t, "Purge before any expiry", err, nil)
	if n != 0 {
		t.Errorf("Purge before any expiry = %d, want 0", n)
	}
	c.Advance(time.Minute)
	n, err = p.Purge(ctx)
	wantErr(t, "Purge", err, nil)
	if n != 2 {
		t.Errorf("Purge = %d, want 2", n)
	}
	n, err = p.Purge(ctx)
	wantErr(t, "Purge again", err, nil)
	if n != 0 {
		t.Errorf("Purge again = %d, want 0", n)
	}
	mustSessionByHash(t, st, live.Hash)
	mustSessionByHash(t, st, touched.Hash)
	checkSessionIDs(t, "SessionsByUser(bob)", mustSessionsByUser(t, st, "bob"))
	// Purged sessions are gone for good: their hash and id are free.
	mustCreateSession(t, st, cloneSession(idleDead))
}

func testSessionsConcurrent(t *testing.T, st session.Store, c *clock.Fake) {
	ctx := context.Background()
	const (
		perLoop = 6 // operations per loop below
		loops   = (opsEach - 2) / perLoop
	)
	kept := func(i int) bool { return i%3 == 0 }
	wantKept := 0
	for i := range loops {
		if kept(i) {
			wantKept++
		}
	}

	runConcurrently(t, goroutines, func(g int) error {
		fail := func(op string, err error) error { return fmt.Errorf("goroutine %d: %s: %w", g, op, err) }
		user := fmt.Sprintf("user-%02d", g)
		if err := st.CreateSession(ctx, newSession(t, c, "shared")); err != nil {
			return fail("CreateSession shared", err)
		}
		for i := range loops {
			s := newSession(t, c, user)
			if err := st.CreateSession(ctx, s); err != nil {
				return fail("CreateSession", err)
			}
			got, err := st.SessionByHash(ctx, s.Hash)
			if err != nil {
				return fail("SessionByHash", err)
			}
			if got.ID != s.ID || got.UserID != user {
				return fail("SessionByHash", fmt.Errorf("got session %s of %s, want %s of %s", got.ID, got.UserID, s.ID, user))
			}
			now := c.Now()
			if err := st.TouchSession(ctx, s.Hash, now, now.Add(idleTimeout)); err != nil {
				return fail("TouchSession", err)
			}
			switch {
			case kept(i):
			case i%2 == 0:
				if err := st.DeleteSession(ctx, s.Hash); err != nil {
					return fail("DeleteSession", err)
				}
			default:
				if _, err := st.DeleteUserSession(ctx, user, s.ID); err != nil {
					return fail("DeleteUserSession", err)
				}
			}
			if _, err := st.SessionByHash(ctx, s.Hash); kept(i) != (err == nil) {
				return fail("SessionByHash after delete", fmt.Errorf("kept=%v, err=%v", kept(i), err))
			}
			list, err := st.SessionsByUser(ctx, user)
			if err != nil {
				return fail("SessionsByUser", err)
			}
			for _, s := range list {
				if s.UserID != user {
					return fail("SessionsByUser", fmt.Errorf("listed a session of %s", s.UserID))
				}
			}
		}
		if _, err := st.SessionsByUser(ctx, "shared"); err != nil {
			return fail("SessionsByUser shared", err)
		}
		return nil
	})

	for g := range goroutines {
		user := fmt.Sprintf("user-%02d", g)
		if got := mustSessionsByUser(t, st, user); len(got) != wantKept {
			t.Errorf("%s has %d sessions, want %d", user, len(got), wantKept)
		}
	}
	deleted, err := st.DeleteUserSessions(ctx, "shared", nil)
	wantErr(t, "DeleteUserSessions shared", err, nil)
	if len(deleted) != goroutines {
		t.Errorf("DeleteUserSessions(shared) = %d sessions, want %d", len(deleted), goroutines)
	}
	for _, s := range deleted {
		if s.UserID != "shared" || !strings.HasPrefix(s.ID, "sess-") {
			t.Errorf("DeleteUserSessions(shared) returned %s of %s", s.ID, s.UserID)
		}
	}
}
