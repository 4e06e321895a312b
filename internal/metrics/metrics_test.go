package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrape returns the exposition text served by m.Handler().
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// has reports whether text holds the exposition line want.
func has(text, want string) bool {
	for line := range strings.Lines(text) {
		if strings.TrimSuffix(line, "\n") == want {
			return true
		}
	}
	return false
}

func TestExposition(t *testing.T) {
	m := New()
	m.Login("session", "success")
	m.Login("session", "success")
	m.Login("token", "throttled")
	m.Login("carrier-pigeon", "success")
	m.Login("session", "sideways")
	m.Verification("cookie-token", "revoked")
	m.Verification("token", "ok")
	m.Verification("token", "ok")
	m.Verification("token", "made-up")
	m.ObserveStore("sqlite", "session.get", 30*time.Microsecond)
	m.ObserveStore("sqlite", "session.get", 2*time.Millisecond)
	m.HTTP("POST /v1/session", 201, 40*time.Millisecond)
	m.HTTP("POST /v1/session", 401, 60*time.Millisecond)
	m.HTTP("", 404, time.Millisecond)
	m.HTTP("GET /v1/me", 1000, time.Millisecond)
	m.AuditWriteError()
	m.Argon2Waiting(1)
	m.Argon2Waiting(1)
	m.Argon2Waiting(-1)
	m.Argon2InFlight(1)
	text := scrape(t, m)

	tests := []struct {
		name string
		line string
	}{
		{"login counted", `gatehouse_logins_total{mode="session",outcome="success"} 2`},
		{"login throttled", `gatehouse_logins_total{mode="token",outcome="throttled"} 1`},
		{"unknown mode is other", `gatehouse_logins_total{mode="other",outcome="success"} 1`},
		{"unknown outcome is other", `gatehouse_logins_total{mode="session",outcome="other"} 1`},
		{"series exist from the start", `gatehouse_logins_total{mode="cookie-token",outcome="error"} 0`},
		{"verification counted", `gatehouse_verifications_total{mode="token",outcome="ok"} 2`},
		{"verification revoked", `gatehouse_verifications_total{mode="cookie-token",outcome="revoked"} 1`},
		{"verification unknown outcome", `gatehouse_verifications_total{mode="token",outcome="other"} 1`},
		{"verification zero", `gatehouse_verifications_total{mode="session",outcome="expired"} 0`},
		{"store smallest bucket", `gatehouse_store_operation_duration_seconds_bucket{backend="sqlite",op="session.get",le="1e-05"} 0`},
		{"store bucket", `gatehouse_store_operation_duration_seconds_bucket{backend="sqlite",op="session.get",le="5e-05"} 1`},
		{"store largest bucket", `gatehouse_store_operation_duration_seconds_bucket{backend="sqlite",op="session.get",le="1"} 2`},
		{"store count", `gatehouse_store_operation_duration_seconds_count{backend="sqlite",op="session.get"} 2`},
		{"store sum", `gatehouse_store_operation_duration_seconds_sum{backend="sqlite",op="session.get"} 0.00203`},
		{"http by route and code", `gatehouse_http_requests_total{code="201",route="POST /v1/session"} 1`},
		{"http other code", `gatehouse_http_requests_total{code="401",route="POST /v1/session"} 1`},
		{"http unmatched", `gatehouse_http_requests_total{code="404",route="unmatched"} 1`},
		{"http impossible code", `gatehouse_http_requests_total{code="other",route="GET /v1/me"} 1`},
		{"http duration by route", `gatehouse_http_request_duration_seconds_count{route="POST /v1/session"} 2`},
		{"http duration bucket", `gatehouse_http_request_duration_seconds_bucket{route="POST /v1/session",le="0.05"} 1`},
		{"audit write errors", `gatehouse_audit_write_errors_total 1`},
		{"argon2 waiting", `gatehouse_argon2_waiting 1`},
		{"argon2 in flight", `gatehouse_argon2_in_flight 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !has(text, tt.line) {
				t.Errorf("missing line %s", tt.line)
			}
		})
	}
	for _, prefix := range []string{"go_goroutines ", "process_start_time_seconds "} {
		if !strings.Contains(text, "\n"+prefix) {
			t.Errorf("no %s: the Go and process collectors are missing", strings.TrimSpace(prefix))
		}
	}
	if strings.Contains(text, "carrier-pigeon") || strings.Contains(text, "made-up") {
		t.Error("an unknown label value was exported")
	}
}

func TestOwnRegistry(t *testing.T) {
	a, b := New(), New()
	a.Login("session", "success")
	if !has(scrape(t, b), `gatehouse_logins_total{mode="session",outcome="success"} 0`) {
		t.Fatal("two Metrics share counts")
	}
}

func TestSeriesFromCodeAreBounded(t *testing.T) {
	m := New()
	for i := range maxSeries + 100 {
		m.HTTP(fmt.Sprintf("GET /r%d", i), 200, time.Millisecond)
		m.ObserveStore("memory", fmt.Sprintf("op%d", i), time.Microsecond)
	}
	m.HTTP(strings.Repeat("x", 1000), 200, time.Millisecond)
	text := scrape(t, m)
	if n := strings.Count(text, "gatehouse_http_requests_total{"); n > maxSeries+1 {
		t.Errorf("%d HTTP series, bound is %d", n, maxSeries+1)
	}
	if !has(text, `gatehouse_http_requests_total{code="200",route="other"} 101`) {
		t.Error("routes beyond the bound are not counted as other")
	}
	if n := strings.Count(text, "gatehouse_store_operation_duration_seconds_count{"); n > maxSeries+1 {
		t.Errorf("%d store series, bound is %d", n, maxSeries+1)
	}
	if !has(text, `gatehouse_store_operation_duration_seconds_count{backend="other",op="other"} 100`) {
		t.Error("store operations beyond the bound are not counted as other")
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.Login("session", "success")
	m.Verification("token", "ok")
	m.ObserveStore("memory", "get", time.Millisecond)
	m.HTTP("GET /", 200, time.Millisecond)
	m.AuditWriteError()
	m.Argon2Waiting(1)
	m.Argon2InFlight(1)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("nil Metrics handler answered %d, want 404", rec.Code)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				m.Verification("token", "ok")
				m.HTTP(fmt.Sprintf("GET /r%d", (g+i)%20), 200, time.Millisecond)
				m.ObserveStore("memory", "get", time.Microsecond)
			}
		})
	}
	wg.Wait()
	text := scrape(t, m)
	if !has(text, `gatehouse_verifications_total{mode="token",outcome="ok"} 8000`) {
		t.Error("lost verifications")
	}
	if !has(text, `gatehouse_store_operation_duration_seconds_count{backend="memory",op="get"} 8000`) {
		t.Error("lost store observations")
	}
}

func BenchmarkVerification(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			m.Verification("cookie-token", "ok")
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Verification("token", "revoked")
			}
		})
	})
	b.Run("nil", func(b *testing.B) {
		var m *Metrics
		for b.Loop() {
			m.Verification("token", "ok")
		}
	})
}

func BenchmarkHTTP(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.HTTP("GET /v1/verify", 200, time.Millisecond)
	}
}

func BenchmarkObserveStore(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveStore("sqlite", "session.get", 50*time.Microsecond)
	}
}
