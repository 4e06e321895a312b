package token_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/token"
)

const ringDelay = 5 * time.Minute

// ringEnv is the real thing: a key ring on the memory store, an Issuer and
// a Verifier over it, a revocation index, one fake clock.
type ringEnv struct {
	clock    *clock.Fake
	ring     *keys.Ring
	issuer   *token.Issuer
	verifier *token.Verifier
	revoked  *revocation.Index
}

var rsaRingStore = sync.OnceValue(memory.NewKeys) // RSA keys are slow to make: one ring store for all tests

func newRingEnv(t testing.TB, alg string, cacheSize int) *ringEnv {
	t.Helper()
	c := clock.NewFake(t0)
	store := memory.NewKeys()
	kek := []byte("0123456789abcdef0123456789abcdef")
	if alg == keys.RS256 {
		store = rsaRingStore()
	}
	ring, err := keys.NewRing(t.Context(), store, keys.RingConfig{KEK: kek, Alg: alg, Clock: c, PublishDelay: ringDelay})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(ring, token.IssuerConfig{Issuer: testIssuer, Audience: testAudience, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := revocation.New(t.Context(), memory.NewRevocations(c), c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(ring, token.VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Clock: c, Revocation: idx, CacheSize: cacheSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &ringEnv{clock: c, ring: ring, issuer: iss, verifier: v, revoked: idx}
}

func (e *ringEnv) issue(t testing.TB) (string, token.Claims) {
	t.Helper()
	raw, c, err := e.issuer.Issue(t.Context(), "user-42", "family-7", []string{"admin", "dev"}, "read write")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return raw, c
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	for _, alg := range []string{keys.EdDSA, keys.ES256, keys.RS256} {
		t.Run(alg, func(t *testing.T) {
			e := newRingEnv(t, alg, -1)
			raw, issued := e.issue(t)
			if want := t0.Add(token.DefaultLifetime); !issued.ExpiresAt.Equal(want) || !issued.IssuedAt.Equal(t0) {
				t.Fatalf("issued iat %v exp %v", issued.IssuedAt, issued.ExpiresAt)
			}
			if len(issued.JTI) != 22 { // 128 bits, base64url
				t.Fatalf("jti %q is not 128 bits", issued.JTI)
			}
			got, err := e.verifier.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != "user-42" || got.SID != "family-7" || got.Scope != "read write" ||
				!slices.Equal(got.Roles, []string{"admin", "dev"}) || got.JTI != issued.JTI ||
				got.Issuer != testIssuer || got.Audience != testAudience ||
				!got.ExpiresAt.Equal(issued.ExpiresAt) || !got.IssuedAt.Equal(issued.IssuedAt) || !got.NotBefore.IsZero() {
				t.Fatalf("verified claims %+v, issued %+v", got, issued)
			}
			// The header is exactly {"alg","typ":"at+jwt","kid"}.
			signer, err := e.ring.Signer(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if h := strings.Split(raw, ".")[0]; h != b64s(`{"alg":"`+alg+`","typ":"at+jwt","kid":"`+signer.KID()+`"}`) {
				t.Fatalf("header %s", h)
			}
			// Two tokens never share a jti.
			_, again := e.issue(t)
			if again.JTI == issued.JTI {
				t.Fatal("two tokens with one jti")
			}
		})
	}
}

func TestTokensAcrossRotation(t *testing.T) {
	e := newRingEnv(t, keys.EdDSA, -1)
	old, _ := e.issue(t)
	_, signsFrom, err := e.ring.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(signsFrom)
	fresh, _ := e.issue(t)
	if strings.Split(old, ".")[0] == strings.Split(fresh, ".")[0] {
		t.Fatal("the new token is not signed by the new key")
	}
	// The old token stays valid to its exp: its key is still published.
	e.clock.Set(t0.Add(token.DefaultLifetime - time.Second))
	for name, raw := range map[string]string{"old": old, "new": fresh} {
		if _, err := e.verifier.Verify(t.Context(), raw); err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
	}
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	t.Run("hit skips parsing and the signature", func(t *testing.T) {
		cached := newRingEnv(t, keys.EdDSA, 100)
		raw, _ := cached.issue(t)
		if _, err := cached.verifier.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		hit := testing.AllocsPerRun(100, func() {
			if _, err := cached.verifier.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
		})
		uncached := newRingEnv(t, keys.EdDSA, -1)
		raw2, _ := uncached.issue(t)
		miss := testing.AllocsPerRun(100, func() {
			if _, err := uncached.verifier.Verify(ctx, raw2); err != nil {
				t.Fatal(err)
			}
		})
		if hit > 2 || miss <= hit {
			t.Fatalf("allocations: %v per cached call, %v uncached", hit, miss)
		}
	})
	t.Run("claims are copies", func(t *testing.T) {
		e := newRingEnv(t, keys.EdDSA, 100)
		raw, _ := e.issue(t)
		for range 3 {
			c, err := e.verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Roles, []string{"admin", "dev"}) || c.Subject != "user-42" {
				t.Fatalf("claims %+v: a caller's change reached the cache", c)
			}
			c.Roles[0], c.Subject = "root", "someone-else"
		}
	})
	t.Run("expiry is checked on every hit", func(t *testing.T) {
		e := newRingEnv(t, keys.EdDSA, 100)
		raw, issued := e.issue(t)
		steps := []struct {
			name string
			at   time.Time
			err  error
		}{
			{"fresh", t0, nil},
			{"just before exp", issued.ExpiresAt.Add(-time.Second), nil},
			{"at exp, within the leeway", issued.ExpiresAt, nil},
			{"at exp + leeway", issued.ExpiresAt.Add(token.DefaultLeeway), token.ErrExpired},
			{"much later", issued.ExpiresAt.Add(time.Hour), token.ErrExpired},
		}
		for _, s := range steps {
			e.clock.Set(s.at)
			if _, err := e.verifier.Verify(ctx, raw); !errors.Is(err, s.err) || (s.err == nil) != (err == nil) {
				t.Fatalf("%s: %v, want %v", s.name, err, s.err)
			}
		}
	})
	t.Run("revocation is checked on every hit", func(t *testing.T) {
		e := newRingEnv(t, keys.EdDSA, 100)
		raw, issued := e.issue(t)
		for range 2 {
			if _, err := e.verifier.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.revoked.DenyToken(ctx, issued.JTI, issued.ExpiresAt); err != nil {
			t.Fatal(err)
		}
		if _, err := e.verifier.Verify(ctx, raw); !errors.Is(err, token.ErrRevoked) {
			t.Fatalf("cached token after revocation: %v, want ErrRevoked", err)
		}
	})
	t.Run("key removal invalidates", func(t *testing.T) {
		e := newRingEnv(t, keys.EdDSA, 100)
		raw, _ := e.issue(t)
		if _, err := e.verifier.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		signer, err := e.ring.Signer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ring.Remove(ctx, signer.KID()); err != nil {
			t.Fatal(err)
		}
		_, err = e.verifier.Verify(ctx, raw)
		if !errors.Is(err, token.ErrInvalidToken) || !strings.Contains(token.Reason(err), "kid") {
			t.Fatalf("cached token of a removed key: %v, want ErrInvalidToken for its kid", err)
		}
		// New tokens, from the replacement key, verify.
		fresh, _ := e.issue(t)
		if _, err := e.verifier.Verify(ctx, fresh); err != nil {
			t.Fatalf("token of the replacement key: %v", err)
		}
	})
	t.Run("a refused token is not cached", func(t *testing.T) {
		e := newRingEnv(t, keys.EdDSA, 100)
		raw, issued := e.issue(t)
		if err := e.revoked.DenyToken(ctx, issued.JTI, issued.ExpiresAt); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := e.verifier.Verify(ctx, raw); !errors.Is(err, token.ErrRevoked) {
				t.Fatalf("Verify: %v, want ErrRevoked", err)
			}
		}
	})
}

// failingChecker is a revocation checker whose store is down.
type failingChecker struct{}

func (failingChecker) Revoked(context.Context, string, string, string, time.Time) (bool, error) {
	return false, errors.New("denylist unreachable")
}

func TestRevocationFailureFailsClosed(t *testing.T) {
	ks := mustKeys(t)
	c := clock.NewFake(t0)
	for _, size := range []int{-1, 10} {
		v, err := token.NewVerifier(trusted(ks), token.VerifierConfig{
			Issuer: testIssuer, Audience: testAudience, Clock: c, Revocation: failingChecker{}, CacheSize: size,
		})
		if err != nil {
			t.Fatal(err)
		}
		raw := forge(t, ks["ed"], header("EdDSA", "ed"), claimsAt(t0, "j"))
		for range 2 {
			claims, err := v.Verify(t.Context(), raw)
			if err == nil || claims != nil {
				t.Fatal("accepted a token without an answer from the revocation checker")
			}
			if errors.Is(err, token.ErrInvalidToken) || errors.Is(err, token.ErrRevoked) || errors.Is(err, token.ErrExpired) {
				t.Fatalf("a checker failure reads as a token refusal: %v", err)
			}
		}
	}
}

func TestUnsafeSkipRevocation(t *testing.T) {
	ks := mustKeys(t)
	v, err := token.NewVerifier(trusted(ks), token.VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Clock: clock.NewFake(t0), UnsafeSkipRevocation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), forge(t, ks["ed"], header("EdDSA", "ed"), claimsAt(t0, "j"))); err != nil {
		t.Fatal(err)
	}
}

func TestVerifierConfig(t *testing.T) {
	ks := trusted(mustKeys(t))
	idx, err := revocation.New(t.Context(), memory.NewRevocations(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	base := token.VerifierConfig{Issuer: testIssuer, Audience: testAudience, Revocation: idx}
	cases := []struct {
		name string
		ks   token.KeySource
		edit func(*token.VerifierConfig)
		ok   bool
	}{
		{"defaults", ks, func(*token.VerifierConfig) {}, true},
		{"leeway 60s", ks, func(c *token.VerifierConfig) { c.Leeway = 60 * time.Second }, true},
		{"leeway 61s", ks, func(c *token.VerifierConfig) { c.Leeway = 61 * time.Second }, false},
		{"negative leeway", ks, func(c *token.VerifierConfig) { c.Leeway = -time.Second }, false},
		{"no key source", nil, func(*token.VerifierConfig) {}, false},
		{"no issuer", ks, func(c *token.VerifierConfig) { c.Issuer = "" }, false},
		{"no audience", ks, func(c *token.VerifierConfig) { c.Audience = "" }, false},
		{"no revocation", ks, func(c *token.VerifierConfig) { c.Revocation = nil }, false},
		{"unsafe without revocation", ks, func(c *token.VerifierConfig) { c.Revocation, c.UnsafeSkipRevocation = nil, true }, true},
		{"unsafe with revocation", ks, func(c *token.VerifierConfig) { c.UnsafeSkipRevocation = true }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			if _, err := token.NewVerifier(tc.ks, cfg); (err == nil) != tc.ok {
				t.Fatalf("NewVerifier: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestIssuerConfig(t *testing.T) {
	e := newRingEnv(t, keys.EdDSA, -1)
	base := token.IssuerConfig{Issuer: testIssuer, Audience: testAudience}
	cases := []struct {
		name string
		ring *keys.Ring
		edit func(*token.IssuerConfig)
		ok   bool
	}{
		{"defaults", e.ring, func(*token.IssuerConfig) {}, true},
		{"lifetime equal to the ring's", e.ring, func(c *token.IssuerConfig) { c.Lifetime = e.ring.TokenLifetime() }, true},
		{"lifetime beyond the ring's", e.ring, func(c *token.IssuerConfig) { c.Lifetime = e.ring.TokenLifetime() + time.Second }, false},
		{"lifetime under a second", e.ring, func(c *token.IssuerConfig) { c.Lifetime = time.Millisecond }, false},
		{"negative lifetime", e.ring, func(c *token.IssuerConfig) { c.Lifetime = -time.Minute }, false},
		{"no ring", nil, func(*token.IssuerConfig) {}, false},
		{"no issuer", e.ring, func(c *token.IssuerConfig) { c.Issuer = "" }, false},
		{"no audience", e.ring, func(c *token.IssuerConfig) { c.Audience = "" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			if _, err := token.NewIssuer(tc.ring, cfg); (err == nil) != tc.ok {
				t.Fatalf("NewIssuer: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestIssueRefusals(t *testing.T) {
	e := newRingEnv(t, keys.EdDSA, -1)
	cases := []struct {
		name, sub, sid string
		roles          []string
		scope          string
	}{
		{"no subject", "", "s", nil, ""},
		{"no sid", "u", "", nil, ""},
		{"subject not UTF-8", "u\xff", "s", nil, ""},
		{"scope not UTF-8", "u", "s", nil, "\xfe"},
		{"empty role", "u", "s", []string{"admin", ""}, ""},
		{"too many roles for 8 KiB", "u", "s", slices.Repeat([]string{"a-rather-long-role-name"}, 400), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if raw, _, err := e.issuer.Issue(t.Context(), tc.sub, tc.sid, tc.roles, tc.scope); err == nil {
				t.Fatalf("Issue accepted it: %s", raw)
			}
		})
	}
	// Escapes round-trip: JSON-special and non-ASCII characters.
	raw, _, err := e.issuer.Issue(t.Context(), `us"er\<é>`, "s\u2028", []string{"a&b"}, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.verifier.Verify(t.Context(), raw)
	if err != nil || c.Subject != `us"er\<é>` || c.SID != "s\u2028" || c.Roles[0] != "a&b" || c.Scope != "" {
		t.Fatalf("Verify: %+v, %v", c, err)
	}
}

func TestReason(t *testing.T) {
	if token.Reason(nil) != "" {
		t.Error("Reason(nil) is not empty")
	}
	other := errors.New("disk on fire")
	if token.Reason(other) != "disk on fire" {
		t.Error("Reason of a foreign error")
	}
	ks := mustKeys(t)
	e := newEnv(t, trusted(ks), -1)
	raw := forge(t, ks["ed"], header("EdDSA", "ed"), claimsAt(t0, "secret-jti"))
	// Change one character in the middle of the signature (the last ones
	// may be padding bits, or already "A").
	mid := len(raw) - (len(raw)-strings.LastIndexByte(raw, '.'))/2
	repl := byte('A')
	if raw[mid] == 'A' {
		repl = 'B'
	}
	_, err := e.verifier.Verify(t.Context(), raw[:mid]+string(repl)+raw[mid+1:])
	if !errors.Is(err, token.ErrInvalidToken) {
		t.Fatalf("Verify: %v", err)
	}
	for _, leak := range []string{raw[:20], "secret-jti", "user-1"} {
		if strings.Contains(err.Error(), leak) || strings.Contains(token.Reason(err), leak) {
			t.Fatalf("the error %q repeats %q", err, leak)
		}
	}
}

// TestOversizedIsRefusedUnread checks that a 1 MiB token costs nothing: it
// is refused by its length, before any decoding (which would allocate).
func TestOversizedIsRefusedUnread(t *testing.T) {
	ks := mustKeys(t)
	e := newEnv(t, trusted(ks), 100)
	huge := strings.Repeat("A", 1<<20) + ".AAAA.AAAA"
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := e.verifier.Verify(t.Context(), huge); !errors.Is(err, token.ErrInvalidToken) {
			t.Fatalf("Verify: %v", err)
		}
	})
	if allocs != 0 {
		t.Fatalf("refusing a 1 MiB token allocated %v times: it was read", allocs)
	}
}

func TestConcurrentVerify(t *testing.T) {
	e := newRingEnv(t, keys.EdDSA, 8)
	var tokens []string
	for range 16 {
		raw, _ := e.issue(t)
		tokens = append(tokens, raw)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := e.verifier.Verify(context.Background(), tokens[(g*7+i)%len(tokens)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
