package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

// backend is what a benchmark server stores in.
type backend interface {
	account.Store
	session.Store
	audit.Store
}

func benchBackends(b *testing.B) map[string]func() backend {
	return map[string]func() backend{
		"memory": func() backend { return memory.New(clock.System{}) },
		"sqlite": func() backend {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		},
	}
}

// benchServer is the API on st with production Argon2id parameters and
// silent logs, plus one logged-in user.
func benchServer(b *testing.B, st backend, params account.Params, cacheTTL time.Duration) (*Server, *http.Cookie) {
	b.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	accounts, err := account.New(st, account.Config{Params: params, UserCacheTTL: cacheTTL})
	if err != nil {
		b.Fatal(err)
	}
	sessions, err := session.NewManager(st, session.Config{CacheTTL: cacheTTL})
	if err != nil {
		b.Fatal(err)
	}
	c := clock.System{}
	api, err := New(Config{
		Accounts: accounts, Sessions: sessions, Audit: audit.NewRecorder(log, st, c), Metrics: metrics.New(),
		AccountLimiter: throttle.NewMemory(c, throttle.DefaultAccountPolicy), IPLimiter: throttle.NewMemory(c, throttle.DefaultIPPolicy),
		Logger: log, Clock: c, Dev: true, Signup: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	u, err := accounts.Register(ctx, "bench", pw)
	if err != nil {
		b.Fatal(err)
	}
	secret, _, err := sessions.Create(ctx, u.ID, session.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	return api, &http.Cookie{Name: "gh_session", Value: secret.Encode()}
}

// BenchmarkSessionVerify is the cost of turning a session cookie into a
// user: cookie parsing, strict decoding, hashing, the session lookup (and
// its coalesced touch), the user lookup; "store" asks the store every time,
// "warm" is the in-process path (sessions and users cached for a second).
func BenchmarkSessionVerify(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		for _, mode := range []struct {
			name string
			ttl  time.Duration
		}{{"store", -1}, {"warm", 0}} {
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				benchVerify(b, benchBackends(b)[name](), mode.ttl)
			})
		}
	}
}

func benchVerify(b *testing.B, st backend, ttl time.Duration) {
	api, cookie := benchServer(b, st, account.InsecureFastParamsForTests(), ttl)
	r := httptest.NewRequest("GET", "/v1/me", nil)
	r.AddCookie(cookie)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := api.authenticate(r)
		if err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogin is a whole session login through the handler, with the
// production Argon2id parameters (m=19 MiB, t=2, p=1) on SQLite.
func BenchmarkLogin(b *testing.B) {
	api, _ := benchServer(b, benchBackends(b)["sqlite"](), account.DefaultParams(), 0)
	h := api.Handler()
	body := credJSON("bench", pw)
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/v1/sessions", stringsReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			b.Fatalf("login: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkHTTPVerifyVsTrivial measures, in one run and over real loopback
// HTTP with keep-alive connections, the requests per second of the
// session-verify endpoint (GET /v1/verify with a session cookie, on SQLite)
// and of a trivial handler served by the same http.Server, interleaved in
// rounds so that machine noise hits both alike. It reports both rates and
// their ratio.
func BenchmarkHTTPVerifyVsTrivial(b *testing.B) {
	api, cookie := benchServer(b, benchBackends(b)["sqlite"](), account.InsecureFastParamsForTests(), 0)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /trivial", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.Handle("/", api.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	load := loader(b, srv.URL, cookie)
	load("/trivial", 200) // warm the connections
	load("/v1/verify", 200)
	b.ResetTimer()
	const rounds = 4
	var trivial, verify time.Duration
	per := max(b.N/rounds, 100)
	for range rounds {
		trivial += load("/trivial", per)
		verify += load("/v1/verify", per)
	}
	b.StopTimer()
	total := float64(per * rounds)
	tr, vr := total/trivial.Seconds(), total/verify.Seconds()
	b.ReportMetric(tr, "trivial-req/s")
	b.ReportMetric(vr, "verify-req/s")
	b.ReportMetric(vr/tr, "verify/trivial")
}

// benchWorkers is how many concurrent keep-alive clients the HTTP
// benchmarks run.
const benchWorkers = 8

// loader returns a load generator for the server at base: GET path n times
// over benchWorkers keep-alive connections, with cookie, failing the
// benchmark on anything but 200; it answers the elapsed time.
func loader(b *testing.B, base string, cookie *http.Cookie) func(path string, n int) time.Duration {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchWorkers, MaxConnsPerHost: benchWorkers}}
	return func(path string, n int) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range benchWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					r, _ := http.NewRequest("GET", base+path, nil)
					r.AddCookie(cookie)
					res, err := client.Do(r)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("%s: %d", path, res.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
