package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

// TestAccounts runs the conformance suite for account.Store. open must
// return a new, empty store that uses c as its clock.
func TestAccounts(t *testing.T, open func(t *testing.T, c clock.Clock) account.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s account.Store, c *clock.Fake)
	}{
		{"NotFound", testUserNotFound},
		{"RoundTrip", testUserRoundTrip},
		{"Conflict", testUserConflict},
		{"SetPasswordHash", testSetPasswordHash},
		{"SetRoles", testSetRoles},
		{"SetRevokedBefore", testSetRevokedBefore},
		{"Copies", testUserCopies},
		{"ListUsers", testListUsers},
		{"Concurrent", testUsersConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tt.f(t, open(t, c), c)
		})
	}
}

// newUser returns a user with every field set, its times in another zone
// than UTC.
func newUser(t testing.TB, username string) *account.User {
	created := start.Add(-48 * time.Hour).In(elsewhere)
	return &account.User{
		ID:            newID(t, "user"),
		Username:      username,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo-" + username,
		Roles:         []string{"admin", "auditor"},
		CreatedAt:     created,
		UpdatedAt:     created.Add(time.Hour + 1),
		RevokedBefore: created.Add(2*time.Hour + 2),
	}
}

// checkUser compares every field of got with want.
func checkUser(t testing.TB, what string, got, want *account.User) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil user", what)
	}
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", what, got.ID, want.ID)
	}
	if got.Username != want.Username {
		t.Errorf("%s: Username = %q, want %q", what, got.Username, want.Username)
	}
	if got.PasswordHash != want.PasswordHash {
		t.Errorf("%s: PasswordHash = %q, want %q", what, got.PasswordHash, want.PasswordHash)
	}
	checkStrings(t, what+": Roles", got.Roles, want.Roles)
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+": UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	checkTime(t, what+": RevokedBefore", got.RevokedBefore, want.RevokedBefore)
}

// mustCreateUser creates u or fails the test.
func mustCreateUser(t testing.TB, s account.Store, u *account.User) {
	t.Helper()
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.Username, err)
	}
}

// mustUserByID loads a user or fails the test.
func mustUserByID(t testing.TB, s account.Store, id string) *account.User {
	t.Helper()
	u, err := s.UserByID(context.Background(), id)
	if err != nil {
		t.Fatalf("UserByID(%q): %v", id, err)
	}
	return u
}

func testUserNotFound(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	mustCreateUser(t, s, newUser(t, "present"))
	cases := []struct {
		name string
		call func() error
	}{
		{"UserByID", func() error { _, err := s.UserByID(ctx, "missing"); return err }},
		{"UserByID empty", func() error { _, err := s.UserByID(ctx, ""); return err }},
		{"UserByUsername", func() error { _, err := s.UserByUsername(ctx, "missing"); return err }},
		{"UserByUsername other case", func() error { _, err := s.UserByUsername(ctx, "PRESENT"); return err }},
		{"SetPasswordHash", func() error { return s.SetPasswordHash(ctx, "missing", "h", start) }},
		{"SetRoles", func() error { return s.SetRoles(ctx, "missing", []string{"admin"}, start) }},
		{"SetRevokedBefore", func() error { return s.SetRevokedBefore(ctx, "missing", start) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), store.ErrNotFound)
		})
	}
}

func testUserRoundTrip(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	full := newUser(t, "alice")
	bare := &account.User{
		ID:           newID(t, "user"),
		Username:     "bob",
		PasswordHash: "$argon2id$bob",
		CreatedAt:    start,
		UpdatedAt:    start,
	}
	for _, u := range []*account.User{full, bare} {
		mustCreateUser(t, s, u)
	}
	for _, want := range []*account.User{full, bare} {
		checkUser(t, "UserByID "+want.Username, mustUserByID(t, s, want.ID), want)
		got, err := s.UserByUsername(ctx, want.Username)
		wantErr(t, "UserByUsername "+want.Username, err, nil)
		checkUser(t, "UserByUsername "+want.Username, got, want)
	}
}

func testUserConflict(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	orig := newUser(t, "carol")
	mustCreateUser(t, s, orig)

	sameName := newUser(t, "carol")
	sameName.PasswordHash = "other"
	sameID := newUser(t, "carol2")
	sameID.ID = orig.ID
	cases := []struct {
		name string
		u    *account.User
	}{
		{"same username", sameName},
		{"same id", sameID},
		{"same both", newUserLike(orig)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "CreateUser", s.CreateUser(ctx, tc.u), store.ErrConflict)
			checkUser(t, "original", mustUserByID(t, s, orig.ID), orig)
		})
	}
	// Nothing of the refused users was stored under their other key.
	if _, err := s.UserByID(ctx, sameName.ID); err == nil {
		t.Error("UserByID of the refused same-username user found it")
	}
	if _, err := s.UserByUsername(ctx, "carol2"); err == nil {
		t.Error("UserByUsername of the refused same-id user found it")
	}
	if got, err := s.ListUsers(ctx, "", 0); err != nil || len(got) != 1 {
		t.Errorf("ListUsers = %d users, %v; want 1", len(got), err)
	}
}

// newUserLike returns a copy of u.
func newUserLike(u *account.User) *account.User {
	c := *u
	c.Roles = slices.Clone(u.Roles)
	return &c
}

func testSetPasswordHash(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	u := newUser(t, "dave")
	other := newUser(t, "erin")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, other)

	at := start.Add(3 * time.Second).In(elsewhere)
	wantErr(t, "SetPasswordHash", s.SetPasswordHash(ctx, u.ID, "$argon2id$new", at), nil)
	want := newUserLike(u)
	want.PasswordHash = "$argon2id$new"
	want.UpdatedAt = at
	checkUser(t, "after SetPasswordHash", mustUserByID(t, s, u.ID), want)
	checkUser(t, "other user", mustUserByID(t, s, other.ID), other)

	// A second change overwrites the first.
	at2 := at.Add(time.Nanosecond)
	wantErr(t, "SetPasswordHash again", s.SetPasswordHash(ctx, u.ID, "$argon2id$newer", at2), nil)
	want.PasswordHash = "$argon2id$newer"
	want.UpdatedAt = at2
	checkUser(t, "after second SetPasswordHash", mustUserByID(t, s, u.ID), want)
}

func testSetRoles(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	u := newUser(t, "frank")
	other := newUser(t, "grace")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, other)

	cases := []struct {
		name  string
		roles []string
	}{
		{"replace", []string{"operator"}},
		{"several", []string{"admin", "operator", "support"}},
		{"none", nil},
		{"empty", []string{}},
		{"again", []string{"admin"}},
	}
	want := newUserLike(u)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := start.Add(time.Duration(i+1) * time.Minute)
			wantErr(t, "SetRoles", s.SetRoles(ctx, u.ID, tc.roles, at), nil)
			want.Roles = tc.roles
			want.UpdatedAt = at
			checkUser(t, "after SetRoles", mustUserByID(t, s, u.ID), want)
		})
	}
	checkUser(t, "other user", mustUserByID(t, s, other.ID), other)
}

func testSetRevokedBefore(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	u := newUser(t, "heidi")
	u.RevokedBefore = time.Time{}
	other := newUser(t, "ivan")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, other)

	t1 := start.Add(time.Hour).In(elsewhere)
	cases := []struct {
		name string
		set  time.Time
		want time.Time
	}{
		{"first", t1, t1},
		{"same", t1, t1},
		{"earlier is ignored", t1.Add(-time.Nanosecond), t1},
		{"zero is ignored", time.Time{}, t1},
		{"later", t1.Add(time.Nanosecond), t1.Add(time.Nanosecond)},
		{"much later", t1.Add(24 * time.Hour), t1.Add(24 * time.Hour)},
		{"back to first is ignored", t1, t1.Add(24 * time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "SetRevokedBefore", s.SetRevokedBefore(ctx, u.ID, tc.set), nil)
			got := mustUserByID(t, s, u.ID)
			checkTime(t, "RevokedBefore", got.RevokedBefore, tc.want)
			if got.PasswordHash != u.PasswordHash || got.Username != u.Username {
				t.Errorf("SetRevokedBefore changed other fields: %+v", got)
			}
		})
	}
	checkUser(t, "other user", mustUserByID(t, s, other.ID), other)
}

func testUserCopies(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	u := newUser(t, "judy")
	want := newUserLike(u)
	mustCreateUser(t, s, u)

	// Changing what was passed in changes nothing stored.
	u.Roles[0] = "root"
	u.Username = "mallory"
	u.PasswordHash = "x"
	checkUser(t, "after changing the argument", mustUserByID(t, s, want.ID), want)

	// Changing what came out changes nothing stored.
	got := mustUserByID(t, s, want.ID)
	got.Roles[0] = "root"
	got.Roles = append(got.Roles, "extra")
	got.PasswordHash = "x"
	checkUser(t, "after changing a result", mustUserByID(t, s, want.ID), want)

	byName, err := s.UserByUsername(ctx, want.Username)
	wantErr(t, "UserByUsername", err, nil)
	byName.Roles[1] = "root"
	checkUser(t, "after changing a UserByUsername result", mustUserByID(t, s, want.ID), want)

	list, err := s.ListUsers(ctx, "", 10)
	wantErr(t, "ListUsers", err, nil)
	if len(list) != 1 {
		t.Fatalf("ListUsers = %d users, want 1", len(list))
	}
	list[0].Roles[0] = "root"
	list[0].Username = "mallory"
	checkUser(t, "after changing a ListUsers result", mustUserByID(t, s, want.ID), want)

	// SetRoles keeps its own copy too.
	roles := []string{"a", "b"}
	wantErr(t, "SetRoles", s.SetRoles(ctx, want.ID, roles, start), nil)
	roles[0] = "root"
	checkStrings(t, "Roles after changing the SetRoles argument", mustUserByID(t, s, want.ID).Roles, []string{"a", "b"})
}

func testListUsers(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()
	// Created out of order; byte order is what counts ("B" < "a").
	names := []string{"mike", "alice", "zed", "bob", "Bob", "carol", "alice2", "éa", "nina"}
	byName := make(map[string]*account.User)
	for _, n := range names {
		u := newUser(t, n)
		byName[n] = u
		mustCreateUser(t, s, u)
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)

	all, err := s.ListUsers(ctx, "", 0)
	wantErr(t, "ListUsers all", err, nil)
	if len(all) != len(names) {
		t.Fatalf("ListUsers(\"\", 0) = %d users, want %d", len(all), len(names))
	}
	for i, u := range all {
		checkUser(t, fmt.Sprintf("ListUsers[%d]", i), u, byName[sorted[i]])
	}

	cases := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"first page", "", 3, sorted[:3]},
		{"second page", sorted[2], 3, sorted[3:6]},
		{"third page", sorted[5], 3, sorted[6:9]},
		{"past the end", sorted[8], 3, nil},
		{"after a name not present", "b", 2, []string{"bob", "carol"}},
		{"after everything", "\U0010FFFF", 3, nil},
		{"limit larger than the rest", sorted[6], 100, sorted[7:]},
		{"negative limit is no limit", sorted[0], -1, sorted[1:]},
		{"limit one", "", 1, sorted[:1]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListUsers(ctx, tc.after, tc.limit)
			wantErr(t, "ListUsers", err, nil)
			var gotNames []string
			for _, u := range got {
				gotNames = append(gotNames, u.Username)
			}
			checkStrings(t, "usernames", gotNames, tc.want)
		})
	}

	// Walking page by page visits every user once, in order.
	var walked []string
	after := ""
	for range len(names) + 1 {
		page, err := s.ListUsers(ctx, after, 2)
		wantErr(t, "ListUsers page", err, nil)
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			walked = append(walked, u.Username)
		}
		after = page[len(page)-1].Username
	}
	checkStrings(t, "walked usernames", walked, sorted)
}

func testUsersConcurrent(t *testing.T, s account.Store, _ *clock.Fake) {
	ctx := context.Background()

	// Everyone races for the same username: exactly one wins.
	wins := make(chan string, goroutines)
	runConcurrently(t, goroutines, func(g int) error {
		u := newUser(t, "contested")
		u.ID = fmt.Sprintf("contested-%d", g)
		err := s.CreateUser(ctx, u)
		switch {
		case err == nil:
			wins <- u.ID
		case !errors.Is(err, store.ErrConflict):
			return fmt.Errorf("goroutine %d: CreateUser: %w", g, err)
		}
		return nil
	})
	close(wins)
	var winners []string
	for id := range wins {
		winners = append(winners, id)
	}
	if len(winners) != 1 {
		t.Fatalf("%d goroutines created the contested user, want 1: %v", len(winners), winners)
	}
	if got, err := s.UserByUsername(ctx, "contested"); err != nil || got.ID != winners[0] {
		t.Errorf("UserByUsername(contested) = %v, %v; want id %s", got, err, winners[0])
	}

	// Then every goroutine works on its own users: create, read, update.
	const perUser = 5 // operations per user below
	runConcurrently(t, goroutines, func(g int) error {
		for i := range opsEach / perUser {
			u := newUser(t, fmt.Sprintf("g%02d-u%02d", g, i))
			if err := s.CreateUser(ctx, u); err != nil {
				return fmt.Errorf("goroutine %d: CreateUser: %w", g, err)
			}
			if _, err := s.UserByID(ctx, u.ID); err != nil {
				return fmt.Errorf("goroutine %d: UserByID: %w", g, err)
			}
			at := start.Add(time.Duration(i) * time.Second)
			if err := s.SetPasswordHash(ctx, u.ID, fmt.Sprintf("hash-%d-%d", g, i), at); err != nil {
				return fmt.Errorf("goroutine %d: SetPasswordHash: %w", g, err)
			}
			if err := s.SetRevokedBefore(ctx, u.ID, at); err != nil {
				return fmt.Errorf("goroutine %d: SetRevokedBefore: %w", g, err)
			}
			got, err := s.UserByUsername(ctx, u.Username)
			if err != nil {
				return fmt.Errorf("goroutine %d: UserByUsername: %w", g, err)
			}
			if got.PasswordHash != fmt.Sprintf("hash-%d-%d", g, i) || !got.RevokedBefore.Equal(at) {
				return fmt.Errorf("goroutine %d: user %s = %+v after updates", g, u.Username, got)
			}
		}
		return nil
	})
	all, err := s.ListUsers(ctx, "", 0)
	wantErr(t, "ListUsers", err, nil)
	if want := 1 + goroutines*(opsEach/perUser); len(all) != want {
		t.Errorf("ListUsers = %d users, want %d", len(all), want)
	}
}
