package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a real API over real HTTP (httptest), on the memory backend,
// with a fake clock and every log captured.
type harness struct {
	t        *testing.T
	srv      *httptest.Server
	api      *Server
	clock    *clock.Fake
	store    *memory.Store
	accounts *account.Service
	logs     *syncBuffer
}

const adminKey = "test-admin-key-0123456789abcdef0123456789"

func newHarness(t *testing.T, mutate ...func(*Config)) *harness {
	t.Helper()
	fc := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	st := memory.New(fc)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	accounts, err := account.New(st, account.Config{Clock: fc, Params: account.InsecureFastParamsForTests()})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(st, session.Config{Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Accounts:       accounts,
		Sessions:       sessions,
		Audit:          audit.NewRecorder(log, st, fc),
		Metrics:        metrics.New(),
		AccountLimiter: throttle.NewMemory(fc, throttle.DefaultAccountPolicy),
		IPLimiter:      throttle.NewMemory(fc, throttle.DefaultIPPolicy),
		Logger:         log,
		Clock:          fc,
		Dev:            true,
		Signup:         true,
		AdminKey:       adminKey,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, api: api, clock: fc, store: st, accounts: accounts, logs: logs}
}

// req describes one request.
type req struct {
	method, path string
	body         string
	contentType  string // default application/json when body is set
	headers      map[string]string
	cookies      []*http.Cookie
	rawCookie    string // a literal Cookie header
}

type resp struct {
	*http.Response
	body []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

func (r resp) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (h *harness) do(rq req) resp {
	h.t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r, err := http.NewRequestWithContext(context.Background(), rq.method, h.srv.URL+rq.path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if rq.body != "" {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	for _, c := range rq.cookies {
		r.AddCookie(c)
	}
	if rq.rawCookie != "" {
		r.Header.Set("Cookie", rq.rawCookie)
	}
	res, err := h.srv.Client().Do(r)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp{Response: res, body: b}
}

// signup creates a user through the API.
func (h *harness) signup(username, password string) string {
	h.t.Helper()
	r := h.do(req{method: "POST", path: "/v1/users", body: credJSON(username, password)})
	if r.StatusCode != http.StatusCreated {
		h.t.Fatalf("signup %s: %d %s", username, r.StatusCode, r.body)
	}
	return r.json(h.t)["id"].(string)
}

// login is a logged-in browser: the session cookie and the CSRF token.
type login struct {
	cookie    *http.Cookie
	csrf      string
	sessionID string
}

func (h *harness) login(username, password string) login {
	h.t.Helper()
	r := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON(username, password)})
	if r.StatusCode != http.StatusCreated {
		h.t.Fatalf("login %s: %d %s", username, r.StatusCode, r.body)
	}
	c := r.cookie("gh_session")
	if c == nil {
		h.t.Fatal("login set no session cookie")
	}
	m := r.json(h.t)
	return login{
		cookie:    &http.Cookie{Name: c.Name, Value: c.Value},
		csrf:      m["csrf_token"].(string),
		sessionID: m["session"].(map[string]any)["id"].(string),
	}
}

// as sends rq with the login's cookie and, unless csrf is false, its CSRF token.
func (h *harness) as(l login, rq req, csrf bool) resp {
	h.t.Helper()
	rq.cookies = append(rq.cookies, l.cookie)
	if csrf {
		if rq.headers == nil {
			rq.headers = map[string]string{}
		}
		rq.headers["X-CSRF-Token"] = l.csrf
	}
	return h.do(rq)
}

func credJSON(username, password string) string {
	b, _ := json.Marshal(map[string]string{"username": username, "password": password})
	return string(b)
}

// wantProblem checks a problem+json answer of the given status and class.
func wantProblem(t *testing.T, r resp, status int, class string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", r.StatusCode, status, r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	m := r.json(t)
	if m["type"] != ProblemBase+class {
		t.Fatalf("problem type %v, want %s", m["type"], ProblemBase+class)
	}
	if int(m["status"].(float64)) != status || m["title"] == "" {
		t.Fatalf("problem body %s", r.body)
	}
}
