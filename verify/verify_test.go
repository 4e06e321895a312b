package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/token"
	"github.com/gatehouse-auth/gatehouse/verify"
)

func TestVerifyToken(t *testing.T) {
	g := newGatehouse(t)
	g.signup("ann")
	access, _ := g.login("ann")
	v := newVerifier(t, g.config())
	ctx := context.Background()

	c, err := v.Verify(ctx, access)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Issuer != g.url || c.Audience != audience || c.Subject == "" || c.JTI == "" || c.SID == "" {
		t.Fatalf("claims %+v", c)
	}

	other := g.config()
	other.Audience = "another-api"
	later := g.config()
	later.Clock = clock.NewFake(time.Now().Add(11 * time.Minute))
	tests := []struct {
		name string
		v    *verify.Verifier
		raw  string
		want error
	}{
		{"the token", v, access, nil},
		{"garbage", v, "not.a.token", token.ErrInvalidToken},
		{"empty", v, "", token.ErrInvalidToken},
		{"altered signature", v, alter(access, len(access)-10), token.ErrInvalidToken},
		{"altered claims", v, alter(access, strings.Index(access, ".")+5), token.ErrInvalidToken},
		{"another audience", newVerifier(t, other), access, token.ErrInvalidToken},
		{"past its exp", newVerifier(t, later), access, token.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(ctx, tt.raw)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	g := newGatehouse(t)
	down := httpServerURLThatIsClosed(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(*verify.Config)
		want   string
	}{
		{"no issuer", func(c *verify.Config) { c.Issuer = "" }, "Issuer is required"},
		{"relative issuer", func(c *verify.Config) { c.Issuer = "gatehouse.test" }, "not an http or https base URL"},
		{"issuer with a query", func(c *verify.Config) { c.Issuer = g.url + "?x=1" }, "not an http or https base URL"},
		{"ftp issuer", func(c *verify.Config) { c.Issuer = "ftp://gatehouse.test" }, "not an http or https base URL"},
		{"no audience", func(c *verify.Config) { c.Audience = "" }, "Audience is required"},
		{"no service key", func(c *verify.Config) { c.ServiceKey = "" }, "ServiceKey is required"},
		{"service key and no feed", func(c *verify.Config) { c.UnsafeNoRevocationFeed = true }, "UnsafeNoRevocationFeed set together"},
		{"fail open without a feed", func(c *verify.Config) {
			c.ServiceKey, c.UnsafeNoRevocationFeed, c.UnsafeFailOpen = "", true, true
		}, "UnsafeFailOpen needs"},
		{"staleness below the minimum", func(c *verify.Config) { c.MaxStaleness = 50 * time.Millisecond }, "below the minimum"},
		{"negative staleness", func(c *verify.Config) { c.MaxStaleness = -time.Second }, "below the minimum"},
		{"negative JWKS refresh", func(c *verify.Config) { c.JWKSMinRefresh = -time.Second }, "negative JWKSMinRefresh"},
		{"leeway above the maximum", func(c *verify.Config) { c.Leeway = 2 * time.Minute }, "leeway"},
		{"client timeout shorter than the long poll", func(c *verify.Config) { c.HTTPClient = &http.Client{Timeout: time.Second} }, "shorter than the long poll"},
		{"issuer spelled with a trailing slash", func(c *verify.Config) { c.Issuer = g.url + "/" }, "is not the configured"},
		{"unreachable server", func(c *verify.Config) { c.Issuer = down }, "discovery"},
		{"wrong service key", func(c *verify.Config) { c.ServiceKey = strings.Repeat("w", 40) }, "status 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := g.config()
			tt.mutate(&cfg)
			v, err := verify.New(ctx, cfg)
			if err == nil {
				_ = v.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to say %q", err, tt.want)
			}
			if cfg.ServiceKey != "" && strings.Contains(err.Error(), cfg.ServiceKey) {
				t.Fatal("the error shows the service key")
			}
		})
	}
	t.Run("JWKS unreachable", func(t *testing.T) {
		g.jwksDown.Store(true)
		defer g.jwksDown.Store(false)
		if _, err := verify.New(ctx, g.config()); err == nil || !strings.Contains(err.Error(), "JWKS") {
			t.Fatalf("New with the JWKS down: %v", err)
		}
	})
}

// alter changes the base64url character at i to another one.
func alter(raw string, i int) string {
	c := byte('A')
	if raw[i] == 'A' {
		c = 'B'
	}
	return raw[:i] + string(c) + raw[i+1:]
}

// httpServerURLThatIsClosed returns the URL of a server that no longer
// listens.
func httpServerURLThatIsClosed(t *testing.T) string {
	g := newGatehouse(t)
	g.srv.Close()
	return g.url
}

// TestRevocationReachesVerifier revokes 50 tokens on the server (RFC 7009)
// and measures, for each, the time from the revocation's response to the
// first refusal by a verifier in another "service".
func TestRevocationReachesVerifier(t *testing.T) {
	g := newGatehouse(t)
	g.signup("bob")
	const n = 50
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i], _ = g.login("bob")
	}
	v := newVerifier(t, g.config())
	ctx := context.Background()
	delays := make([]time.Duration, n)
	first := 0 // refused at the first check after the revocation's response
	for i, tok := range tokens {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("token %d before revocation: %v", i, err)
		}
		g.revoke(tok)
		revokedAt := time.Now()
		deadline := revokedAt.Add(5 * time.Second)
		for check := 0; ; check++ {
			_, err := v.Verify(ctx, tok)
			if errors.Is(err, token.ErrRevoked) {
				delays[i] = time.Since(revokedAt)
				if check == 0 {
					first++
				}
				break
			}
			if err != nil {
				t.Fatalf("token %d: %v, want ErrRevoked", i, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("token %d still accepted 5 s after its revocation", i)
			}
			runtime.Gosched()
		}
	}
	slices.Sort(delays)
	p50, p99 := delays[n/2], delays[(n*99+99)/100-1]
	t.Logf("revocation → refusal by the verifier, %d revocations: p50 %v, p99 %v, max %v; %d refused at the first check", n, p50, p99, delays[n-1], first)
	if p99 > 2*time.Second {
		t.Fatalf("p99 %v is over 2 s", p99)
	}
}

func TestStaleFeedFailsClosed(t *testing.T) {
	for _, fault := range []struct {
		name      string
		cut, heal func(*gatehouse)
	}{
		{"feed requests hang", (*gatehouse).cutFeed, (*gatehouse).restoreFeed},
		{"server refuses the feed", func(g *gatehouse) { g.feedRefuse.Store(true) }, func(g *gatehouse) { g.feedRefuse.Store(false) }},
	} {
		t.Run(fault.name, func(t *testing.T) {
			g := newGatehouse(t)
			g.signup("cid")
			a, _ := g.login("cid")
			b, _ := g.login("cid")
			logs := &syncBuffer{}
			cfg := g.config()
			cfg.MaxStaleness = 300 * time.Millisecond
			cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			v := newVerifier(t, cfg)
			open := g.config()
			open.MaxStaleness, open.UnsafeFailOpen = 300*time.Millisecond, true
			vOpen := newVerifier(t, open)
			ctx := context.Background()
			// (eventually: on a loaded machine one poll may take longer than
			// the 300 ms.)
			for _, x := range []*verify.Verifier{v, vOpen} {
				if _, err := eventually(5*time.Second, wantErr(x, a, nil)); err != nil {
					t.Fatalf("before the cut: %v", err)
				}
			}

			fault.cut(g)
			took, err := eventually(5*time.Second, wantErr(v, a, verify.ErrStale))
			if err != nil {
				t.Fatalf("no ErrStale within 5 s of the cut: %v", err)
			}
			t.Logf("ErrStale %v after the cut (MaxStaleness 300ms)", took)
			_, err = v.Verify(ctx, a)
			if errors.Is(err, token.ErrRevoked) || errors.Is(err, token.ErrInvalidToken) {
				t.Fatalf("the stale error is also a refusal of the token: %v", err)
			}
			if _, err := v.Verify(ctx, "not.a.token"); !errors.Is(err, token.ErrInvalidToken) {
				t.Fatalf("an invalid token while stale: %v", err)
			}
			// Revoked meanwhile: the fail-open verifier cannot know.
			g.revoke(b)
			if _, err := vOpen.Verify(ctx, b); err != nil {
				t.Fatalf("the fail-open verifier refused while stale: %v", err)
			}

			fault.heal(g)
			took, err = eventually(5*time.Second, wantErr(v, a, nil))
			if err != nil {
				t.Fatalf("not recovered 5 s after the feed came back: %v", err)
			}
			t.Logf("recovered %v after the feed came back", took)
			for _, x := range []*verify.Verifier{v, vOpen} {
				if _, err := eventually(5*time.Second, wantErr(x, b, token.ErrRevoked)); err != nil {
					t.Fatalf("the revocation made during the cut: %v", err)
				}
			}
			if strings.Contains(logs.String(), serviceKey) {
				t.Fatal("the service key reached the log")
			}
			if fault.name == "server refuses the feed" && !strings.Contains(logs.String(), "revocation feed poll failed") {
				t.Fatalf("the failing feed was not logged:\n%s", logs)
			}
		})
	}
}

func TestServerRestart(t *testing.T) {
	g := newGatehouse(t)
	g.signup("dee")
	a, _ := g.login("dee")
	b, _ := g.login("dee")
	cfg := g.config()
	cfg.MaxStaleness = time.Second // short polls: the poll waiting on the old process ends soon
	v := newVerifier(t, cfg)
	g.revoke(a)
	if _, err := eventually(5*time.Second, wantErr(v, a, token.ErrRevoked)); err != nil {
		t.Fatal(err)
	}

	// A restart on the same store: a new feed epoch, so the verifier takes
	// a snapshot, which still has a, and then follows the new process.
	feeds := g.feedHits.Load()
	g.restart(false)
	g.revoke(b)
	if _, err := eventually(5*time.Second, wantErr(v, b, token.ErrRevoked)); err != nil {
		t.Fatalf("a revocation after the restart: %v", err)
	}
	if _, err := eventually(5*time.Second, wantErr(v, a, token.ErrRevoked)); err != nil {
		t.Fatalf("a revocation from before the restart: %v", err)
	}
	if g.feedHits.Load() == feeds {
		t.Fatal("no poll after the restart")
	}

	// A snapshot replaces what the verifier holds: after a restart that
	// lost every revocation (a memory store), the verifier knows what the
	// server knows, no more.
	g.restart(true)
	if _, err := eventually(5*time.Second, wantErr(v, a, nil)); err != nil {
		t.Fatalf("the snapshot did not replace the local state: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	g := newGatehouse(t)
	g.signup("eve")
	old, _ := g.login("eve")
	cfg := g.config()
	cfg.JWKSMinRefresh = time.Hour
	v := newVerifier(t, cfg)
	ctx := context.Background()

	before := g.jwksHits.Load()
	kid := g.rotate()
	fresh, _ := g.login("eve")
	if kidOf(t, fresh) != kid || kidOf(t, old) == kid {
		t.Fatal("the new token is not signed by the new key")
	}
	// A burst of verifications of the unknown kid: one JWKS fetch.
	const burst = 20
	errs := make(chan error, burst)
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			_, err := v.Verify(ctx, fresh)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a token of the new key: %v", err)
		}
	}
	if got := g.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for a burst of %d, want 1", got, burst)
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("a token of the old key after rotation: %v", err)
	}
	// Unknown kids within JWKSMinRefresh: refused without a fetch.
	for i := range 10 {
		if _, err := v.Verify(ctx, withKid(fresh, fmt.Sprint("unknown-", i))); !errors.Is(err, token.ErrInvalidToken) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if got := g.jwksHits.Load() - before; got != 1 {
		t.Fatalf("unknown kids caused %d more JWKS fetches within JWKSMinRefresh", got-1)
	}
}

func TestJWKSDownKeepsCachedKeys(t *testing.T) {
	g := newGatehouse(t)
	g.signup("fay")
	old, _ := g.login("fay")
	cfg := g.config()
	cfg.JWKSMinRefresh = time.Millisecond
	v := newVerifier(t, cfg)
	ctx := context.Background()

	g.jwksDown.Store(true)
	g.rotate()
	fresh, _ := g.login("fay")
	before := g.jwksHits.Load()
	if _, err := v.Verify(ctx, fresh); !errors.Is(err, token.ErrInvalidToken) {
		t.Fatalf("a token of a key the verifier could not fetch: %v", err)
	}
	if g.jwksHits.Load() == before {
		t.Fatal("an unknown kid did not try a refresh")
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("a cached key stopped working while the JWKS is down: %v", err)
	}

	g.jwksDown.Store(false)
	if _, err := eventually(5*time.Second, wantErr(v, fresh, nil)); err != nil {
		t.Fatalf("the new key once the JWKS is back: %v", err)
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("the old key after the refresh: %v", err)
	}
}

func TestWithoutFeed(t *testing.T) {
	g := newGatehouse(t)
	g.signup("gus")
	a, _ := g.login("gus")
	cfg := g.config()
	cfg.ServiceKey, cfg.UnsafeNoRevocationFeed = "", true
	v := newVerifier(t, cfg)
	g.revoke(a)
	// What UnsafeNoRevocationFeed costs: a revoked token is accepted.
	if _, err := v.Verify(context.Background(), a); err != nil {
		t.Fatalf("Verify without revocation: %v", err)
	}
	if n := g.feedHits.Load(); n != 0 {
		t.Fatalf("%d feed requests without a service key", n)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	g := newGatehouse(t)
	v, err := verify.New(context.Background(), g.config())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
