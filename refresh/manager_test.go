package refresh_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

const (
	day   = 24 * time.Hour
	idle  = 14 * day
	abs   = 30 * day
	grace = 10 * time.Second
)

var epoch = time.Date(2030, time.January, 2, 3, 4, 5, 600_000_000, time.UTC)

// env is a Manager over a memory store, both on one fake clock.
type env struct {
	ctx   context.Context
	clock *clock.Fake
	store *memory.Refresh
	m     *refresh.Manager
}

func newEnv(t *testing.T, edit func(*refresh.Config)) *env {
	t.Helper()
	c := clock.NewFake(epoch)
	s := memory.NewRefresh(c)
	cfg := refresh.DefaultConfig()
	cfg.Clock = c
	if edit != nil {
		edit(&cfg)
	}
	m, err := refresh.NewManager(s, cfg)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return &env{ctx: context.Background(), clock: c, store: s, m: m}
}

func (e *env) start(t *testing.T, userID string) (string, refresh.Family) {
	t.Helper()
	tok, fam, err := e.m.Start(e.ctx, userID, refresh.Meta{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return tok, fam
}

// rotate rotates tok and fails the test unless it is exchanged.
func (e *env) rotate(t *testing.T, tok string) string {
	t.Helper()
	next, _, out, err := e.m.Rotate(e.ctx, tok)
	if err != nil {
		t.Fatalf("Rotate: %v (outcome %v)", err, out)
	}
	return next
}

// live reports whether the family is live by the store's clock.
func (e *env) live(t *testing.T, id string) bool {
	t.Helper()
	f, err := e.store.Family(e.ctx, id)
	if err != nil {
		t.Fatalf("Family: %v", err)
	}
	return f.Live(e.clock.Now())
}

func TestRefreshNewManagerConfig(t *testing.T) {
	s := memory.NewRefresh(nil)
	tests := []struct {
		name string
		edit func(*refresh.Config)
		ok   bool
	}{
		{"defaults", nil, true},
		{"zero values take defaults", func(c *refresh.Config) { *c = refresh.Config{} }, true},
		{"grace off", func(c *refresh.Config) { c.Grace = 0 }, true},
		{"grace one minute", func(c *refresh.Config) { c.Grace = time.Minute }, true},
		{"grace over one minute", func(c *refresh.Config) { c.Grace = time.Minute + 1 }, false},
		{"negative grace", func(c *refresh.Config) { c.Grace = -time.Second }, false},
		{"grace not shorter than idle", func(c *refresh.Config) { c.IdleLifetime = time.Minute; c.Grace = time.Minute }, false},
		{"idle equal to absolute", func(c *refresh.Config) { c.IdleLifetime = abs }, true},
		{"idle longer than absolute", func(c *refresh.Config) { c.IdleLifetime = abs + 1 }, false},
		{"negative idle", func(c *refresh.Config) { c.IdleLifetime = -1 }, false},
		{"negative absolute", func(c *refresh.Config) { c.AbsoluteLifetime = -1 }, false},
		{"one sibling", func(c *refresh.Config) { c.MaxSiblings = 1 }, true},
		{"negative siblings", func(c *refresh.Config) { c.MaxSiblings = -1 }, false},
		{"too many siblings", func(c *refresh.Config) { c.MaxSiblings = 1001 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := refresh.DefaultConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			_, err := refresh.NewManager(s, cfg)
			if (err == nil) != tt.ok {
				t.Errorf("NewManager(%+v) error = %v, want ok=%v", cfg, err, tt.ok)
			}
		})
	}
	if _, err := refresh.NewManager(nil, refresh.DefaultConfig()); err == nil {
		t.Error("NewManager(nil store) succeeded")
	}
}

func TestRefreshRotationChain(t *testing.T) {
	e := newEnv(t, nil)
	tok, fam := e.start(t, "alice")
	seen := map[string]bool{tok: true}
	for i := range 5 {
		e.clock.Advance(time.Hour)
		next, got, out, err := e.m.Rotate(e.ctx, tok)
		if err != nil || out != refresh.OutcomeRotated {
			t.Fatalf("rotation %d: outcome %v, error %v", i, out, err)
		}
		if got.ID != fam.ID || got.UserID != "alice" || !got.LastUsedAt.Equal(e.clock.Now()) {
			t.Errorf("rotation %d: family %+v", i, got)
		}
		if seen[next] {
			t.Fatalf("rotation %d returned a token seen before", i)
		}
		seen[next] = true
		tok = next
	}
}

// TestRotate runs one scenario per rule: each prepares the store and returns
// the token to present; the presentation's outcome, error and the family's
// state afterwards are checked.
func TestRefreshRotate(t *testing.T) {
	type scenario func(t *testing.T, e *env) (token, familyID string)
	tests := []struct {
		name     string
		edit     func(*refresh.Config)
		scenario scenario
		want     refresh.Outcome
		wantErr  error // nil: success
		wantLive bool  // the family afterwards
	}{
		{
			name: "current token",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				return e.rotate(t, e.rotate(t, tok)), fam.ID
			},
			want: refresh.OutcomeRotated, wantLive: true,
		},
		{
			name: "reuse of generation N-2",
			scenario: func(t *testing.T, e *env) (string, string) {
				g1, fam := e.start(t, "alice")
				g2 := e.rotate(t, g1)
				e.clock.Advance(time.Minute)
				e.rotate(t, g2)
				e.clock.Advance(time.Minute)
				return g1, fam.ID
			},
			want: refresh.OutcomeReuse, wantErr: refresh.ErrReuse,
		},
		{
			name: "reuse of the previous generation after grace",
			scenario: func(t *testing.T, e *env) (string, string) {
				g1, fam := e.start(t, "alice")
				e.rotate(t, g1)
				e.clock.Advance(grace)
				return g1, fam.ID
			},
			want: refresh.OutcomeReuse, wantErr: refresh.ErrReuse,
		},
		{
			name: "grace on: second presentation within grace",
			scenario: func(t *testing.T, e *env) (string, string) {
				g1, fam := e.start(t, "alice")
				e.rotate(t, g1)
				e.clock.Advance(grace - time.Millisecond)
				return g1, fam.ID
			},
			want: refresh.OutcomeGraceReplay, wantLive: true,
		},
		{
			name: "grace off: second presentation is reuse",
			edit: func(c *refresh.Config) { c.Grace = 0 },
			scenario: func(t *testing.T, e *env) (string, string) {
				g1, fam := e.start(t, "alice")
				e.rotate(t, g1)
				return g1, fam.ID
			},
			want: refresh.OutcomeReuse, wantErr: refresh.ErrReuse,
		},
		{
			name: "grace on: siblings exhausted",
			edit: func(c *refresh.Config) { c.MaxSiblings = 3 },
			scenario: func(t *testing.T, e *env) (string, string) {
				g1, fam := e.start(t, "alice")
				for range 4 { // the rotation and three siblings
					e.rotate(t, g1)
				}
				return g1, fam.ID
			},
			want: refresh.OutcomeReuse, wantErr: refresh.ErrReuse,
		},
		{
			name: "just before idle expiry",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				e.clock.Advance(idle - time.Nanosecond)
				return tok, fam.ID
			},
			want: refresh.OutcomeRotated, wantLive: true,
		},
		{
			name: "idle expiry",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				e.clock.Advance(idle)
				return tok, fam.ID
			},
			want: refresh.OutcomeExpired, wantErr: refresh.ErrInvalidGrant,
		},
		{
			name: "idle expiry resets at each rotation",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				e.clock.Advance(idle - time.Hour)
				tok = e.rotate(t, tok)
				e.clock.Advance(idle - time.Hour)
				return tok, fam.ID
			},
			want: refresh.OutcomeRotated, wantLive: true,
		},
		{
			name: "absolute expiry caps idle expiry",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				for range 2 { // days 13 and 26
					e.clock.Advance(13 * day)
					tok = e.rotate(t, tok)
				}
				// Minted on day 26, the token would idle-expire on day
				// 40; the family ends on day 30.
				e.clock.Set(fam.ExpiresAt)
				return tok, fam.ID
			},
			want: refresh.OutcomeExpired, wantErr: refresh.ErrInvalidGrant,
		},
		{
			name: "just before absolute expiry",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				for range 2 {
					e.clock.Advance(13 * day)
					tok = e.rotate(t, tok)
				}
				e.clock.Set(fam.ExpiresAt.Add(-time.Second))
				return tok, fam.ID
			},
			want: refresh.OutcomeRotated, wantLive: true,
		},
		{
			name: "revoked family",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				if _, err := e.m.RevokeFamily(e.ctx, "alice", fam.ID); err != nil {
					t.Fatalf("RevokeFamily: %v", err)
				}
				return tok, fam.ID
			},
			want: refresh.OutcomeRevoked, wantErr: refresh.ErrInvalidGrant,
		},
		{
			name: "family revoked by reuse",
			scenario: func(t *testing.T, e *env) (string, string) {
				g1, fam := e.start(t, "alice")
				g2 := e.rotate(t, g1)
				e.clock.Advance(time.Minute)
				if _, _, _, err := e.m.Rotate(e.ctx, g1); !errors.Is(err, refresh.ErrReuse) {
					t.Fatalf("reuse: %v", err)
				}
				return g2, fam.ID
			},
			want: refresh.OutcomeRevoked, wantErr: refresh.ErrInvalidGrant,
		},
		{
			name: "revoke user",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				if _, err := e.m.RevokeUser(e.ctx, "alice"); err != nil {
					t.Fatalf("RevokeUser: %v", err)
				}
				return tok, fam.ID
			},
			want: refresh.OutcomeRevoked, wantErr: refresh.ErrInvalidGrant,
		},
		{
			name: "another user revoked",
			scenario: func(t *testing.T, e *env) (string, string) {
				tok, fam := e.start(t, "alice")
				e.start(t, "bob")
				if _, err := e.m.RevokeUser(e.ctx, "bob"); err != nil {
					t.Fatalf("RevokeUser: %v", err)
				}
				return tok, fam.ID
			},
			want: refresh.OutcomeRotated, wantLive: true,
		},
		{
			name: "unknown token",
			scenario: func(t *testing.T, e *env) (string, string) {
				e.start(t, "alice")
				return strings.Repeat("A", 43), ""
			},
			want: refresh.OutcomeInvalid, wantErr: refresh.ErrInvalidGrant,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.edit)
			tok, famID := tt.scenario(t, e)
			next, fam, out, err := e.m.Rotate(e.ctx, tok)
			if out != tt.want {
				t.Errorf("outcome %v, want %v", out, tt.want)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			case tt.wantErr != nil && !errors.Is(err, refresh.ErrInvalidGrant):
				t.Fatalf("error %v does not wrap ErrInvalidGrant", err)
			}
			if (next != "") != (tt.wantErr == nil) {
				t.Errorf("new token %q with error %v", next, err)
			}
			if famID == "" {
				return
			}
			if fam.ID != famID {
				t.Errorf("family %q, want %q", fam.ID, famID)
			}
			if live := e.live(t, famID); live != tt.wantLive {
				t.Errorf("family live = %v, want %v", live, tt.wantLive)
			}
			if tt.wantErr == nil {
				// The new token works.
				e.clock.Advance(time.Millisecond)
				e.rotate(t, next)
			}
		})
	}
}

// TestMalformed checks that malformed tokens are refused before the store:
// with a cancelled context, a store call would fail with context.Canceled.
func TestRefreshMalformed(t *testing.T) {
	e := newEnv(t, nil)
	valid, _ := e.start(t, "alice")
	tests := []struct {
		name, token string
	}{
		{"empty", ""},
		{"short", valid[:42]},
		{"long", valid + "A"},
		{"over 64 bytes", strings.Repeat("A", 65)},
		{"padded", valid + "="},
		{"padding inside", valid[:41] + "=="},
		{"standard alphabet plus", "+" + valid[1:]},
		{"standard alphabet slash", "/" + valid[1:]},
		{"non-canonical trailing bits", strings.Repeat("A", 42) + "B"},
		{"newline inside", valid[:20] + "\n" + valid[21:]},
		{"space", valid[:42] + " "},
		{"non-ASCII", valid[:41] + "é"},
		{"NUL", valid[:42] + "\x00"},
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, fam, out, err := e.m.Rotate(cancelled, tt.token)
			if !errors.Is(err, refresh.ErrInvalidGrant) || out != refresh.OutcomeInvalid || next != "" || fam.ID != "" {
				t.Errorf("Rotate(%q) = %q, %v, %v, %v; want invalid grant", tt.token, next, fam.ID, out, err)
			}
			if _, err := e.m.Revoke(cancelled, tt.token); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Revoke(%q) error %v, want not found", tt.token, err)
			}
		})
	}
	// The same context does reach the store with a well-formed token.
	if _, _, _, err := e.m.Rotate(cancelled, valid); !errors.Is(err, context.Canceled) {
		t.Errorf("Rotate(valid, cancelled context) error %v, want context.Canceled", err)
	}
	if e.rotate(t, valid) == "" {
		t.Error("the valid token was not exchanged")
	}
}

// TestGraceParallel is the several-tabs case: 20 requests present the same
// token at the same instant.
func TestRefreshGraceParallel(t *testing.T) {
	const n = 20
	e := newEnv(t, nil)
	tok, fam := e.start(t, "alice")
	type result struct {
		next string
		fam  refresh.Family
		out  refresh.Outcome
		err  error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			next, f, out, err := e.m.Rotate(e.ctx, tok)
			results[i] = result{next, f, out, err}
		})
	}
	wg.Wait()

	tokens := map[string]bool{}
	outcomes := map[refresh.Outcome]int{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		if r.fam.ID != fam.ID {
			t.Errorf("request %d: family %s, want %s", i, r.fam.ID, fam.ID)
		}
		tokens[r.next] = true
		outcomes[r.out]++
	}
	if len(tokens) != n {
		t.Errorf("%d distinct tokens, want %d", len(tokens), n)
	}
	if outcomes[refresh.OutcomeRotated] != 1 || outcomes[refresh.OutcomeGraceReplay] != n-1 {
		t.Errorf("outcomes %v, want 1 rotated, %d grace replays", outcomes, n-1)
	}
	if !e.live(t, fam.ID) {
		t.Fatal("family not live after the parallel refreshes")
	}

	// The client keeps one of the new tokens (a browser's cookie jar keeps
	// the last Set-Cookie) and rotates it normally; that retires its
	// siblings, which the other tabs may still present within the grace
	// period (a pair of the same family), not after.
	e.clock.Advance(time.Minute)
	next, _, out, err := e.m.Rotate(e.ctx, results[0].next)
	if err != nil || out != refresh.OutcomeRotated {
		t.Fatalf("rotating the kept token: outcome %v, error %v", out, err)
	}
	latest := []string{next}
	for i, r := range results[1:] {
		next, _, out, err := e.m.Rotate(e.ctx, r.next)
		if err != nil || out != refresh.OutcomeGraceReplay {
			t.Fatalf("a retired sibling %d within the grace period: outcome %v, error %v; want a grace replay", i+1, out, err)
		}
		latest = append(latest, next)
	}
	e.clock.Advance(time.Minute)

	// The original, presented after the grace window, is reuse: the family
	// dies and every token of it fails.
	_, f, out, err := e.m.Rotate(e.ctx, tok)
	if !errors.Is(err, refresh.ErrReuse) || out != refresh.OutcomeReuse || f.ID != fam.ID || f.RevokedAt.IsZero() {
		t.Fatalf("late presentation of the original: %+v, %v, %v; want reuse", f, out, err)
	}
	for i, tk := range latest {
		if _, _, out, err := e.m.Rotate(e.ctx, tk); !errors.Is(err, refresh.ErrInvalidGrant) || out != refresh.OutcomeRevoked {
			t.Errorf("token %d after reuse: outcome %v, error %v; want revoked", i, out, err)
		}
	}
	if e.live(t, fam.ID) {
		t.Error("family live after reuse")
	}
}

func TestRefreshRevoke(t *testing.T) {
	tests := []struct {
		name    string
		present func(t *testing.T, e *env, first, current string) string
	}{
		{"current token", func(_ *testing.T, _ *env, _, current string) string { return current }},
		{"rotated token", func(_ *testing.T, _ *env, first, _ string) string { return first }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			first, fam := e.start(t, "alice")
			current := e.rotate(t, first)
			other, _ := e.start(t, "alice")
			e.clock.Advance(time.Minute)
			f, err := e.m.Revoke(e.ctx, tt.present(t, e, first, current))
			if err != nil || f.ID != fam.ID || !f.RevokedAt.Equal(e.clock.Now()) {
				t.Fatalf("Revoke = %+v, %v", f, err)
			}
			if _, _, out, err := e.m.Rotate(e.ctx, current); out != refresh.OutcomeRevoked || !errors.Is(err, refresh.ErrInvalidGrant) {
				t.Errorf("Rotate after Revoke: %v, %v", out, err)
			}
			// Revoking again is not an error and keeps the first time.
			e.clock.Advance(time.Minute)
			f2, err := e.m.Revoke(e.ctx, current)
			if err != nil || !f2.RevokedAt.Equal(f.RevokedAt) {
				t.Errorf("second Revoke = %+v, %v", f2, err)
			}
			// The user's other login is untouched.
			e.rotate(t, other)
		})
	}
	e := newEnv(t, nil)
	if _, err := e.m.Revoke(e.ctx, strings.Repeat("A", 43)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Revoke(unknown) error %v, want not found", err)
	}
}

func TestRefreshRevokeFamily(t *testing.T) {
	tests := []struct {
		name    string
		userID  string
		id      func(fam refresh.Family) string
		wantErr error
	}{
		{"own family", "alice", func(f refresh.Family) string { return f.ID }, nil},
		{"another user's family", "mallory", func(f refresh.Family) string { return f.ID }, store.ErrNotFound},
		{"unknown family", "alice", func(refresh.Family) string { return "nope" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tok, fam := e.start(t, "alice")
			f, err := e.m.RevokeFamily(e.ctx, tt.userID, tt.id(fam))
			if !errors.Is(err, tt.wantErr) || (err == nil && f.RevokedAt.IsZero()) {
				t.Fatalf("RevokeFamily = %+v, %v; want error %v", f, err, tt.wantErr)
			}
			_, _, _, err = e.m.Rotate(e.ctx, tok)
			if revoked := err != nil; revoked != (tt.wantErr == nil) {
				t.Errorf("token works after RevokeFamily: %v", err)
			}
		})
	}
}

func TestRefreshRevokeUserAndList(t *testing.T) {
	e := newEnv(t, nil)
	a1, f1 := e.start(t, "alice")
	e.clock.Advance(time.Second)
	_, f2, err := e.m.Start(e.ctx, "alice", refresh.Meta{Delivery: refresh.DeliveryCookie, UserAgent: "Firefox\x00\n\tNightly", IP: "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	bob, fb := e.start(t, "bob")

	list, err := e.m.List(e.ctx, "alice")
	if err != nil || len(list) != 2 || list[0].ID != f2.ID || list[1].ID != f1.ID {
		t.Fatalf("List(alice) = %+v, %v; want newest first", list, err)
	}
	if got := list[0]; got.Delivery != refresh.DeliveryCookie || got.UserAgent != "FirefoxNightly" || got.IP != "2001:db8::1" {
		t.Errorf("listed family = %+v", got)
	}
	if list[1].Delivery != refresh.DeliveryBody {
		t.Errorf("default delivery = %q, want body", list[1].Delivery)
	}

	e.clock.Advance(time.Minute)
	revoked, err := e.m.RevokeUser(e.ctx, "alice")
	if err != nil || len(revoked) != 2 || revoked[0].ID != f2.ID || revoked[1].ID != f1.ID {
		t.Fatalf("RevokeUser(alice) = %+v, %v", revoked, err)
	}
	for _, f := range revoked {
		if !f.RevokedAt.Equal(e.clock.Now()) {
			t.Errorf("family %s revoked at %v, want %v", f.ID, f.RevokedAt, e.clock.Now())
		}
	}
	if list, err := e.m.List(e.ctx, "alice"); err != nil || len(list) != 0 {
		t.Errorf("List(alice) after RevokeUser = %+v, %v", list, err)
	}
	if _, _, _, err := e.m.Rotate(e.ctx, a1); !errors.Is(err, refresh.ErrInvalidGrant) {
		t.Errorf("alice's token after RevokeUser: %v", err)
	}
	if list, err := e.m.List(e.ctx, "bob"); err != nil || len(list) != 1 || list[0].ID != fb.ID {
		t.Errorf("List(bob) = %+v, %v", list, err)
	}
	e.rotate(t, bob)
}

func TestRefreshStart(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	tests := []struct {
		name    string
		userID  string
		meta    refresh.Meta
		ok      bool
		wantUA  string
		wantDel string
	}{
		{"defaults", "alice", refresh.Meta{}, true, "", refresh.DeliveryBody},
		{"cookie", "alice", refresh.Meta{Delivery: refresh.DeliveryCookie}, true, "", refresh.DeliveryCookie},
		{"unknown delivery", "alice", refresh.Meta{Delivery: "query"}, false, "", ""},
		{"empty user", "", refresh.Meta{}, false, "", ""},
		{"control characters", "alice", refresh.Meta{UserAgent: "a\r\nb\x7fc\u0085d"}, true, "abcd", refresh.DeliveryBody},
		{"invalid UTF-8", "alice", refresh.Meta{UserAgent: "a\xffb"}, true, "ab", refresh.DeliveryBody},
		{"long user agent", "alice", refresh.Meta{UserAgent: long}, true, long[:512], refresh.DeliveryBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tok, fam, err := e.m.Start(e.ctx, tt.userID, tt.meta)
			if (err == nil) != tt.ok {
				t.Fatalf("Start error %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if list, _ := e.m.List(e.ctx, tt.userID); len(list) != 0 {
					t.Errorf("a refused Start stored %d families", len(list))
				}
				return
			}
			if len(tok) != 43 || len(fam.ID) != 22 {
				t.Errorf("token %d chars, family id %d chars; want 43 and 22", len(tok), len(fam.ID))
			}
			if fam.UserAgent != tt.wantUA || fam.Delivery != tt.wantDel {
				t.Errorf("family UserAgent %q Delivery %q, want %q %q", fam.UserAgent, fam.Delivery, tt.wantUA, tt.wantDel)
			}
			now := e.clock.Now()
			if !fam.CreatedAt.Equal(now) || !fam.ExpiresAt.Equal(now.Add(abs)) || !fam.IdleExpiresAt.Equal(now.Add(idle)) {
				t.Errorf("family times %v %v %v", fam.CreatedAt, fam.IdleExpiresAt, fam.ExpiresAt)
			}
		})
	}
}

func TestRefreshOutcomeString(t *testing.T) {
	want := map[refresh.Outcome]string{
		refresh.OutcomeInvalid:     "invalid",
		refresh.OutcomeRotated:     "rotated",
		refresh.OutcomeGraceReplay: "grace_replay",
		refresh.OutcomeReuse:       "reuse",
		refresh.OutcomeExpired:     "expired",
		refresh.OutcomeRevoked:     "revoked",
		refresh.Outcome(99):        "unknown",
	}
	for o, s := range want {
		if o.String() != s {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), o.String(), s)
		}
	}
}
