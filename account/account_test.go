package account_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

var start = time.Date(2031, time.May, 17, 9, 41, 7, 0, time.UTC)

const password = "correct horse battery staple"

// fixture is a Service on a fresh memory store with a fake clock.
type fixture struct {
	svc   *account.Service
	store *memory.Store
	clock *clock.Fake
}

// newFixture returns a fixture whose service uses cfg, with the insecure
// test params unless cfg sets others.
func newFixture(t testing.TB, cfg account.Config) fixture {
	t.Helper()
	c := clock.NewFake(start)
	st := memory.New(c)
	cfg.Clock = c
	if cfg.Params == (account.Params{}) {
		cfg.Params = account.InsecureFastParamsForTests()
	}
	svc, err := account.New(st, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return fixture{svc: svc, store: st, clock: c}
}

// countHashes makes svc count its Argon2id computations.
func countHashes(svc *account.Service) func() int {
	var mu sync.Mutex
	n := 0
	account.SetHashHook(svc, func() {
		mu.Lock()
		n++
		mu.Unlock()
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func mustRegister(t testing.TB, svc *account.Service, username, password string) *account.User {
	t.Helper()
	u, err := svc.Register(context.Background(), username, password)
	if err != nil {
		t.Fatalf("Register(%q): %v", username, err)
	}
	return u
}

func TestNew(t *testing.T) {
	st := memory.New(nil)
	tests := []struct {
		name  string
		store account.Store
		cfg   account.Config
		ok    bool
	}{
		{"zero config", st, account.Config{}, true},
		{"default params spelled out", st, account.Config{Params: account.DefaultParams(), MaxConcurrentHashes: 1}, true},
		{"nil store", nil, account.Config{}, false},
		{"negative concurrency", st, account.Config{MaxConcurrentHashes: -1}, false},
		{"params below the OWASP minimum", st, account.Config{Params: account.Params{Memory: 4096, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}}, false},
		{"no salt", st, account.Config{Params: account.Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 32}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := account.New(tc.store, tc.cfg)
			if tc.ok && (err != nil || svc == nil) {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("New accepted the config")
			}
		})
	}
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	u, err := f.svc.Register(ctx, "Alice", password)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if u.Username != "alice" {
		t.Errorf("Username = %q, want alice", u.Username)
	}
	id, err := base64.RawURLEncoding.Strict().DecodeString(u.ID)
	if err != nil || len(id) != 16 {
		t.Errorf("ID %q is not 16 bytes of unpadded base64url (%v)", u.ID, err)
	}
	if !u.CreatedAt.Equal(start) || !u.UpdatedAt.Equal(start) {
		t.Errorf("CreatedAt, UpdatedAt = %v, %v; want %v", u.CreatedAt, u.UpdatedAt, start)
	}
	if len(u.Roles) != 0 {
		t.Errorf("Roles = %v, want none", u.Roles)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(u.PasswordHash, password) {
		t.Errorf("PasswordHash = %q, want an Argon2id PHC string with the current params", u.PasswordHash)
	}
	stored, err := f.svc.User(ctx, u.ID)
	if err != nil || stored.Username != "alice" || stored.PasswordHash != u.PasswordHash {
		t.Fatalf("User(%q) = %+v, %v; want the registered user", u.ID, stored, err)
	}

	bob := mustRegister(t, f.svc, "bob", password)
	if bob.ID == u.ID {
		t.Errorf("two users got the same id %q", u.ID)
	}
	if bob.PasswordHash == u.PasswordHash {
		t.Errorf("the same password hashed twice gave the same hash: salts are not random")
	}

	refused := []struct {
		name, username, password string
		want                     error
	}{
		{"same username", "alice", password, account.ErrUsernameTaken},
		{"case variant", "ALICE", password, account.ErrUsernameTaken},
		{"full-width variant", "ａｌｉｃｅ", password, account.ErrUsernameTaken},
		{"invalid username", "al ice", password, account.ErrInvalidUsername},
		{"empty username", "", password, account.ErrInvalidUsername},
		{"short password", "carol", "1234567", account.ErrPasswordPolicy},
		{"long password", "carol", strings.Repeat("x", 129), account.ErrPasswordPolicy},
		{"NUL in password", "carol", "password\x00", account.ErrPasswordPolicy},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.Register(ctx, tc.username, tc.password); !errors.Is(err, tc.want) {
				t.Errorf("Register(%q) error = %v, want %v", tc.username, err, tc.want)
			}
		})
	}
	if _, err := f.svc.UserByUsername(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused registration created a user: %v", err)
	}
}

func TestRegisterChecksBeforeHashing(t *testing.T) {
	f := newFixture(t, account.Config{})
	hashes := countHashes(f.svc)
	if _, err := f.svc.Register(context.Background(), "al ice", password); !errors.Is(err, account.ErrInvalidUsername) {
		t.Fatalf("invalid username: %v", err)
	}
	if _, err := f.svc.Register(context.Background(), "alice", "short"); !errors.Is(err, account.ErrPasswordPolicy) {
		t.Fatalf("short password: %v", err)
	}
	if n := hashes(); n != 0 {
		t.Errorf("refused registrations computed %d hashes, want 0", n)
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	alice := mustRegister(t, f.svc, "alice", password)
	mustRegister(t, f.svc, "bob", "another password")

	tests := []struct {
		name     string
		username string
		password string
		ok       bool
		hashes   int // Argon2id computations the attempt costs
	}{
		{"right password", "alice", password, true, 1},
		{"case variant username", "Alice", password, true, 1},
		{"full-width username", "ＡＬＩＣＥ", password, true, 1},
		{"wrong password", "alice", "correct horse battery stapler", false, 1},
		{"password case matters", "alice", strings.ToUpper(password), false, 1},
		{"another user's password", "alice", "another password", false, 1},
		{"empty password", "alice", "", false, 1},
		{"unknown user", "mallory", password, false, 1},
		{"unknown user, empty password", "mallory", "", false, 1},
		{"username that cannot be normalised", "al ice", password, false, 0},
		{"empty username", "", password, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hashes := countHashes(f.svc)
			u, err := f.svc.Authenticate(ctx, tc.username, tc.password)
			if tc.ok {
				if err != nil || u == nil || u.ID != alice.ID {
					t.Fatalf("Authenticate = %+v, %v; want alice", u, err)
				}
			} else if err != account.ErrBadCredentials || u != nil {
				// The very sentinel, not a wrapped one: nothing about the
				// cause may leak into the message.
				t.Fatalf("Authenticate = %+v, %v; want ErrBadCredentials", u, err)
			}
			if n := hashes(); n != tc.hashes {
				t.Errorf("Argon2id computations = %d, want %d", n, tc.hashes)
			}
		})
	}
}

func TestAuthenticateCorruptStoredHash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	u := mustRegister(t, f.svc, "alice", password)
	if err := f.store.SetPasswordHash(ctx, u.ID, "$argon2id$v=19$m=64,t=1,p=1$bad", start); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Authenticate(ctx, "alice", password)
	if err == nil || errors.Is(err, account.ErrBadCredentials) {
		t.Fatalf("Authenticate with a corrupt stored hash = %v, want an internal error", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error %q contains the password", err)
	}
}

// TestRehash logs in through a service with other params than the hash was
// made with: the login succeeds and the hash is replaced.
func TestRehash(t *testing.T) {
	ctx := context.Background()
	old := newFixture(t, account.Config{})
	u := mustRegister(t, old.svc, "alice", password)
	old.clock.Advance(time.Hour)

	var rehashErrs []error
	current, err := account.New(old.store, account.Config{
		Clock:         old.clock,
		Params:        account.DefaultParams(),
		OnRehashError: func(err error) { rehashErrs = append(rehashErrs, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	hashes := countHashes(current)
	got, err := current.Authenticate(ctx, "alice", password)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if n := hashes(); n != 2 {
		t.Errorf("Argon2id computations = %d, want 2 (verify, rehash)", n)
	}
	const defaultPrefix = "$argon2id$v=19$m=19456,t=2,p=1$"
	if !strings.HasPrefix(got.PasswordHash, defaultPrefix) {
		t.Errorf("returned hash %q was not rehashed with the default params", got.PasswordHash)
	}
	stored, err := current.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.PasswordHash != got.PasswordHash {
		t.Errorf("stored hash %q, want the new one %q", stored.PasswordHash, got.PasswordHash)
	}
	if want := start.Add(time.Hour); !stored.UpdatedAt.Equal(want) {
		t.Errorf("UpdatedAt = %v, want %v", stored.UpdatedAt, want)
	}
	if len(rehashErrs) != 0 {
		t.Errorf("OnRehashError called: %v", rehashErrs)
	}

	// Same params now: no second rehash.
	hashes = countHashes(current)
	if _, err := current.Authenticate(ctx, "alice", password); err != nil {
		t.Fatalf("second Authenticate: %v", err)
	}
	if n := hashes(); n != 1 {
		t.Errorf("second login: Argon2id computations = %d, want 1", n)
	}
	again, _ := current.User(ctx, u.ID)
	if again.PasswordHash != stored.PasswordHash {
		t.Errorf("hash changed on a login with matching params")
	}

	// A wrong password never rehashes.
	if _, err := old.svc.Authenticate(ctx, "alice", "wrong password"); !errors.Is(err, account.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if after, _ := current.User(ctx, u.ID); after.PasswordHash != stored.PasswordHash {
		t.Errorf("a failed login changed the hash")
	}
}

// TestRehashReferenceHash stores a hash made by the Argon2 reference
// implementation (src/test.c of P-H-C/phc-winner-argon2: "password",
// "somesalt", m=256, t=2, p=1) and logs in with it: it verifies, and is
// replaced by a hash with the current params.
func TestRehashReferenceHash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	const reference = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	err := f.store.CreateUser(ctx, &account.User{ID: "imported", Username: "imported", PasswordHash: reference, CreatedAt: start, UpdatedAt: start})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, "imported", "passwore"); !errors.Is(err, account.ErrBadCredentials) {
		t.Fatalf("wrong password against the reference hash: %v", err)
	}
	u, err := f.svc.Authenticate(ctx, "imported", "password")
	if err != nil {
		t.Fatalf("Authenticate against the reference hash: %v", err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q not rehashed with the current params", u.PasswordHash)
	}
	if _, err := f.svc.Authenticate(ctx, "imported", "password"); err != nil {
		t.Fatalf("Authenticate after rehash: %v", err)
	}
}

// TestRehashFailureDoesNotFailLogin cancels the login's context while the
// password is verified: the rehash cannot run, the login succeeds, the old
// hash stays, and the error goes to OnRehashError.
func TestRehashFailureDoesNotFailLogin(t *testing.T) {
	old := newFixture(t, account.Config{})
	u := mustRegister(t, old.svc, "alice", password)

	var rehashErrs []error
	current, err := account.New(old.store, account.Config{
		Clock:         old.clock,
		Params:        account.DefaultParams(),
		OnRehashError: func(err error) { rehashErrs = append(rehashErrs, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	account.SetHashHook(current, cancel)
	got, err := current.Authenticate(ctx, "alice", password)
	if err != nil {
		t.Fatalf("Authenticate: %v, want success despite the failed rehash", err)
	}
	if got.PasswordHash != u.PasswordHash {
		t.Errorf("returned hash changed although the rehash failed")
	}
	if len(rehashErrs) != 1 || !errors.Is(rehashErrs[0], context.Canceled) {
		t.Fatalf("OnRehashError got %v, want one context.Canceled", rehashErrs)
	}
	if !strings.Contains(rehashErrs[0].Error(), u.ID) || strings.Contains(rehashErrs[0].Error(), password) {
		t.Errorf("rehash error %q should name the user id and not the password", rehashErrs[0])
	}
	stored, _ := current.User(context.Background(), u.ID)
	if stored.PasswordHash != u.PasswordHash {
		t.Errorf("stored hash changed although the rehash failed")
	}
}

func TestChangePassword(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	u := mustRegister(t, f.svc, "alice", password)
	const next = "a brand new passphrase"

	refused := []struct {
		name, id, current, next string
		want                    error
	}{
		{"wrong current password", u.ID, "not my password", next, account.ErrBadCredentials},
		{"empty current password", u.ID, "", next, account.ErrBadCredentials},
		{"next too short", u.ID, password, "short", account.ErrPasswordPolicy},
		{"next too long", u.ID, password, strings.Repeat("é", 129), account.ErrPasswordPolicy},
		{"next invalid UTF-8", u.ID, password, "password\xff\xfe", account.ErrPasswordPolicy},
		{"unknown user", "no-such-id", password, next, store.ErrNotFound},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.svc.ChangePassword(ctx, tc.id, tc.current, tc.next); !errors.Is(err, tc.want) {
				t.Fatalf("ChangePassword error = %v, want %v", err, tc.want)
			}
			if _, err := f.svc.Authenticate(ctx, "alice", password); err != nil {
				t.Fatalf("old password stopped working after a refused change: %v", err)
			}
		})
	}

	f.clock.Advance(time.Minute)
	if err := f.svc.ChangePassword(ctx, u.ID, password, next); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, "alice", password); !errors.Is(err, account.ErrBadCredentials) {
		t.Errorf("old password after change: %v, want ErrBadCredentials", err)
	}
	got, err := f.svc.Authenticate(ctx, "alice", next)
	if err != nil {
		t.Fatalf("new password after change: %v", err)
	}
	if want := start.Add(time.Minute); !got.UpdatedAt.Equal(want) {
		t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, want)
	}
}

func TestSetRoles(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	u := mustRegister(t, f.svc, "alice", password)

	tests := []struct {
		name  string
		roles []string
		want  []string // nil with ok false: refused
		ok    bool
	}{
		{"one role", []string{"admin"}, []string{"admin"}, true},
		{"sorted and deduplicated", []string{"ops", "admin", "ops", "admin"}, []string{"admin", "ops"}, true},
		{"digits, dash, underscore", []string{"team-a", "level_2"}, []string{"level_2", "team-a"}, true},
		{"32 characters", []string{"a" + strings.Repeat("b", 31)}, []string{"a" + strings.Repeat("b", 31)}, true},
		{"none", []string{}, []string{}, true},
		{"nil", nil, []string{}, true},
		{"upper case", []string{"Admin"}, nil, false},
		{"leading digit", []string{"1admin"}, nil, false},
		{"leading dash", []string{"-admin"}, nil, false},
		{"empty name", []string{""}, nil, false},
		{"33 characters", []string{"a" + strings.Repeat("b", 32)}, nil, false},
		{"space", []string{"ad min"}, nil, false},
		{"newline", []string{"admin\n"}, nil, false},
		{"one bad among good", []string{"admin", "Root"}, nil, false},
		{"non-ASCII", []string{"ädmin"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Start each case from a known state.
			if err := f.svc.SetRoles(ctx, u.ID, []string{"before"}); err != nil {
				t.Fatal(err)
			}
			err := f.svc.SetRoles(ctx, u.ID, tc.roles)
			got, lookupErr := f.svc.User(ctx, u.ID)
			if lookupErr != nil {
				t.Fatal(lookupErr)
			}
			if !tc.ok {
				if !errors.Is(err, account.ErrInvalidRole) {
					t.Fatalf("SetRoles(%q) error = %v, want ErrInvalidRole", tc.roles, err)
				}
				if !slices.Equal(got.Roles, []string{"before"}) {
					t.Errorf("refused SetRoles changed the roles to %v", got.Roles)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetRoles(%q): %v", tc.roles, err)
			}
			if !slices.Equal(got.Roles, tc.want) {
				t.Errorf("Roles = %v, want %v", got.Roles, tc.want)
			}
		})
	}

	t.Run("unknown user", func(t *testing.T) {
		if err := f.svc.SetRoles(ctx, "no-such-id", []string{"admin"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetRoles of an unknown user = %v, want store.ErrNotFound", err)
		}
	})
	t.Run("updates UpdatedAt", func(t *testing.T) {
		f.clock.Advance(time.Hour)
		if err := f.svc.SetRoles(ctx, u.ID, []string{"admin"}); err != nil {
			t.Fatal(err)
		}
		got, _ := f.svc.User(ctx, u.ID)
		if want := f.clock.Now(); !got.UpdatedAt.Equal(want) || !got.HasRole("admin") {
			t.Errorf("after SetRoles: UpdatedAt %v (want %v), roles %v", got.UpdatedAt, want, got.Roles)
		}
	})
}

func TestLookups(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	u := mustRegister(t, f.svc, "alice", password)

	tests := []struct {
		name   string
		lookup func() (*account.User, error)
		want   error // nil: found alice
	}{
		{"by id", func() (*account.User, error) { return f.svc.User(ctx, u.ID) }, nil},
		{"by unknown id", func() (*account.User, error) { return f.svc.User(ctx, "nope") }, store.ErrNotFound},
		{"by username", func() (*account.User, error) { return f.svc.UserByUsername(ctx, "alice") }, nil},
		{"by case variant", func() (*account.User, error) { return f.svc.UserByUsername(ctx, "ALICE") }, nil},
		{"by full-width variant", func() (*account.User, error) { return f.svc.UserByUsername(ctx, "ａｌｉｃｅ") }, nil},
		{"by unknown username", func() (*account.User, error) { return f.svc.UserByUsername(ctx, "bob") }, store.ErrNotFound},
		{"by invalid username", func() (*account.User, error) { return f.svc.UserByUsername(ctx, "al\nice") }, account.ErrInvalidUsername},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.lookup()
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("error = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil || got.ID != u.ID {
				t.Fatalf("= %+v, %v; want alice", got, err)
			}
		})
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	for _, name := range []string{"carol", "Alice", "bob", "dave", "eve"} {
		mustRegister(t, f.svc, name, password)
	}
	var pages [][]string
	after := ""
	for {
		users, err := f.svc.List(ctx, after, 2)
		if err != nil {
			t.Fatalf("List(%q): %v", after, err)
		}
		if len(users) == 0 {
			break
		}
		var page []string
		for _, u := range users {
			page = append(page, u.Username)
		}
		pages = append(pages, page)
		after = users[len(users)-1].Username
		if len(pages) > 5 {
			t.Fatalf("pagination does not end: %v", pages)
		}
	}
	want := [][]string{{"alice", "bob"}, {"carol", "dave"}, {"eve"}}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages = %v, want %v", pages, want)
	}

	for _, limit := range []int{0, -1, 5000} {
		users, err := f.svc.List(ctx, "", limit)
		if err != nil || len(users) != 5 {
			t.Errorf("List(limit %d) = %d users, %v; want all 5", limit, len(users), err)
		}
	}
}

func TestRevokeAll(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, account.Config{})
	u := mustRegister(t, f.svc, "alice", password)

	at := start.Add(time.Hour)
	if err := f.svc.RevokeAll(ctx, u.ID, at.In(time.FixedZone("UTC+2", 7200))); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	got, _ := f.svc.User(ctx, u.ID)
	if !got.RevokedBefore.Equal(at) {
		t.Errorf("RevokedBefore = %v, want %v", got.RevokedBefore, at)
	}
	if err := f.svc.RevokeAll(ctx, u.ID, start); err != nil {
		t.Fatalf("RevokeAll earlier: %v", err)
	}
	got, _ = f.svc.User(ctx, u.ID)
	if !got.RevokedBefore.Equal(at) {
		t.Errorf("RevokedBefore moved backwards to %v", got.RevokedBefore)
	}
	if err := f.svc.RevokeAll(ctx, u.ID, time.Time{}); err == nil {
		t.Errorf("RevokeAll with the zero time succeeded")
	}
	if err := f.svc.RevokeAll(ctx, "no-such-id", at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeAll of an unknown user = %v, want store.ErrNotFound", err)
	}
}

func TestCancelledContextDoesNotHash(t *testing.T) {
	f := newFixture(t, account.Config{})
	mustRegister(t, f.svc, "alice", password)
	hashes := countHashes(f.svc)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	calls := []struct {
		name string
		call func() error
	}{
		{"Authenticate", func() error { _, err := f.svc.Authenticate(ctx, "alice", password); return err }},
		{"Authenticate unknown user", func() error { _, err := f.svc.Authenticate(ctx, "mallory", password); return err }},
		{"Register", func() error { _, err := f.svc.Register(ctx, "bob", password); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
		})
	}
	if n := hashes(); n != 0 {
		t.Errorf("cancelled calls computed %d hashes, want 0", n)
	}
}

// TestChangePasswordThen: the step between the checks and the change runs
// only after the current password is verified, and its failure leaves the
// password unchanged.
func TestChangePasswordThen(t *testing.T) {
	f := newFixture(t, account.Config{})
	u := mustRegister(t, f.svc, "pat", password)
	ctx := t.Context()
	calls := 0
	step := func(fail error) func(context.Context) error {
		return func(context.Context) error { calls++; return fail }
	}
	if err := f.svc.ChangePasswordThen(ctx, u.ID, "wrong password!", "a brand new one", step(nil)); !errors.Is(err, account.ErrBadCredentials) || calls != 0 {
		t.Fatalf("wrong current password: err %v, step ran %d times", err, calls)
	}
	if err := f.svc.ChangePasswordThen(ctx, u.ID, password, "short", step(nil)); !errors.Is(err, account.ErrPasswordPolicy) || calls != 0 {
		t.Fatalf("policy: err %v, step ran %d times", err, calls)
	}
	boom := errors.New("store down")
	if err := f.svc.ChangePasswordThen(ctx, u.ID, password, "a brand new one", step(boom)); !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("failing step: err %v, step ran %d times", err, calls)
	}
	if _, err := f.svc.Authenticate(ctx, "pat", password); err != nil {
		t.Fatalf("the password changed although the step failed: %v", err)
	}
	if err := f.svc.ChangePasswordThen(ctx, u.ID, password, "a brand new one", step(nil)); err != nil || calls != 2 {
		t.Fatalf("change: err %v, step ran %d times", err, calls)
	}
	if _, err := f.svc.Authenticate(ctx, "pat", "a brand new one"); err != nil {
		t.Fatal("the new password does not work:", err)
	}
}

// gaugeRecorder is a HashGauges that keeps the current values and the
// highest in-flight count.
type gaugeRecorder struct {
	mu                     sync.Mutex
	waiting, inFlight, top int
}

func (g *gaugeRecorder) Argon2Waiting(d int) { g.mu.Lock(); g.waiting += d; g.mu.Unlock() }
func (g *gaugeRecorder) Argon2InFlight(d int) {
	g.mu.Lock()
	g.inFlight += d
	g.top = max(g.top, g.inFlight)
	g.mu.Unlock()
}

// TestHashGauges: the hashing queue's gauges rise while hashes wait and
// run, and return to zero.
func TestHashGauges(t *testing.T) {
	g := &gaugeRecorder{}
	f := newFixture(t, account.Config{Gauges: g, MaxConcurrentHashes: 2})
	mustRegister(t, f.svc, "gus", password)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { _, _ = f.svc.Authenticate(t.Context(), "gus", password) })
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting != 0 || g.inFlight != 0 || g.top < 1 || g.top > 2 {
		t.Fatalf("gauges waiting %d, in flight %d, top %d; want 0, 0 and 1..2", g.waiting, g.inFlight, g.top)
	}
}
