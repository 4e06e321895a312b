package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/testenv"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
)

// BenchmarkSessionLookupRedis is a session lookup with the sessions in
// Redis: "redis" asks Redis every time (the session cache off, as while
// an instance is out of step: two round trips), "cached" is a hit of the
// one-second session cache (the steady state).
func BenchmarkSessionLookupRedis(b *testing.B) {
	rawURL := testenv.Redis(b)
	ctx := context.Background()
	for _, mode := range []struct {
		name string
		ttl  time.Duration
	}{{"redis", -1}, {"cached", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			rd, err := redisstore.Open(ctx, rawURL, redisstore.Options{Prefix: testPrefix(b, rawURL)})
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Close()
			m, err := session.NewManager(rd, session.Config{CacheTTL: mode.ttl})
			if err != nil {
				b.Fatal(err)
			}
			secret, _, err := m.Create(ctx, "bench-user", session.Meta{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.Lookup(ctx, secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRevocationCheck is the token verifier's revocation check with
// several instances (the index behind the freshness guard), against the
// bare index, on an index of 10,000 denylisted jtis.
func BenchmarkRevocationCheck(b *testing.B) {
	ctx := context.Background()
	idx, err := revocation.New(ctx, memory.NewRevocations(nil), nil)
	if err != nil {
		b.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	for i := range 10_000 {
		if err := idx.DenyToken(ctx, fmt.Sprintf("jti-%d", i), until); err != nil {
			b.Fatal(err)
		}
	}
	f := newFreshness(clock.System{}, time.Hour)
	f.received(f.next())
	guarded := guardedIndex{idx: idx, fresh: f}
	iat := time.Now()
	for _, c := range []struct {
		name    string
		check   func(context.Context, string, string, string, time.Time) (bool, error)
		jti     string
		revoked bool
	}{
		{"guarded/hit", guarded.Revoked, "jti-4242", true},
		{"guarded/miss", guarded.Revoked, "not-revoked", false},
		{"index/hit", idx.Revoked, "jti-4242", true},
		{"index/miss", idx.Revoked, "not-revoked", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, err := c.check(ctx, c.jti, "sid", "user", iat); err != nil || r != c.revoked {
					b.Fatal(r, err)
				}
			}
		})
	}
}
