package httpapi

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/internal/testenv"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

// BenchmarkHTTPVerifyRedisVsTrivial is BenchmarkHTTPVerifyVsTrivial with
// the sessions in Redis, as with several instances: in one run, over real
// loopback HTTP with keep-alive connections, the requests per second of a
// trivial handler, of GET /v1/verify with a session cookie asking Redis on
// every request (the session cache off, as while an instance is out of
// step with the others), and of the same with the one-second session cache
// on (the steady state). Users are in memory behind the one-second user
// cache, as they are in PostgreSQL behind it. It reports the three rates
// and the ratios to the trivial handler.
func BenchmarkHTTPVerifyRedisVsTrivial(b *testing.B) {
	rawURL := testenv.Redis(b)
	prefix := "gh-bench-" + rand.Text()[:12] + ":"
	b.Cleanup(func() { benchDeleteRedisPrefix(b, rawURL, prefix) })
	rd, err := redisstore.Open(context.Background(), rawURL, redisstore.Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	users := memory.New(clock.System{})

	uncached, cookie := benchRedisServer(b, users, rd, -1, "")
	cached, _ := benchRedisServer(b, users, rd, 0, cookie.Value)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /trivial", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.Handle("/cached/", http.StripPrefix("/cached", cached.Handler()))
	mux.Handle("/", uncached.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	load := loader(b, srv.URL, cookie)
	load("/trivial", 200) // warm the connections
	load("/v1/verify", 200)
	load("/cached/v1/verify", 200)
	b.ResetTimer()
	const rounds = 4
	var trivial, redisVerify, cachedVerify time.Duration
	per := max(b.N/rounds, 100)
	for range rounds {
		trivial += load("/trivial", per)
		redisVerify += load("/v1/verify", per)
		cachedVerify += load("/cached/v1/verify", per)
	}
	b.StopTimer()
	total := float64(per * rounds)
	tr, rr, cr := total/trivial.Seconds(), total/redisVerify.Seconds(), total/cachedVerify.Seconds()
	b.ReportMetric(tr, "trivial-req/s")
	b.ReportMetric(rr, "redis-verify-req/s")
	b.ReportMetric(cr, "cached-verify-req/s")
	b.ReportMetric(rr/tr, "redis/trivial")
	b.ReportMetric(cr/tr, "cached/trivial")
}

// benchRedisServer is the API with users in users (user cache on) and
// sessions in rd with the session cache TTL sessionTTL (-1: off). With
// secret empty it registers a user and logs in; otherwise it serves the
// session of that cookie value, made by an earlier call.
func benchRedisServer(b *testing.B, users *memory.Store, rd *redisstore.Store, sessionTTL time.Duration, secret string) (*Server, *http.Cookie) {
	b.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	accounts, err := account.New(users, account.Config{Params: account.InsecureFastParamsForTests()})
	if err != nil {
		b.Fatal(err)
	}
	sessions, err := session.NewManager(rd, session.Config{CacheTTL: sessionTTL})
	if err != nil {
		b.Fatal(err)
	}
	c := clock.System{}
	api, err := New(Config{
		Accounts: accounts, Sessions: sessions, Audit: audit.NewRecorder(log, users, c), Metrics: metrics.New(),
		AccountLimiter: throttle.NewMemory(c, throttle.DefaultAccountPolicy), IPLimiter: throttle.NewMemory(c, throttle.DefaultIPPolicy),
		Logger: log, Clock: c, Dev: true, Signup: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	if secret != "" {
		return api, &http.Cookie{Name: "gh_session", Value: secret}
	}
	ctx := context.Background()
	u, err := accounts.Register(ctx, "bench", pw)
	if err != nil {
		b.Fatal(err)
	}
	s, _, err := sessions.Create(ctx, u.ID, session.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	return api, &http.Cookie{Name: "gh_session", Value: s.Encode()}
}

// benchDeleteRedisPrefix deletes the keys of a benchmark's prefix.
func benchDeleteRedisPrefix(b *testing.B, rawURL, prefix string) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		b.Errorf("clean Redis: %v", err)
		return
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		b.Errorf("clean Redis: %v", err)
	}
}
