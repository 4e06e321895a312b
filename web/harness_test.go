package web

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/throttle"
	"github.com/gatehouse-auth/gatehouse/token"
)

const (
	testIssuer   = "http://gatehouse.test"
	testAdminKey = "test-admin-key-0123456789abcdef0123456789"
	testPassword = "correct horse battery staple"
)

// secretLog collects every secret the API hands out, so that tests can
// check that no lab answer contains one whole.
type secretLog struct {
	mu      sync.Mutex
	secrets map[string]bool
}

func (s *secretLog) add(v string) {
	if len(v) < 8 {
		return
	}
	s.mu.Lock()
	s.secrets[v] = true
	s.mu.Unlock()
}

func (s *secretLog) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.secrets))
	for k := range s.secrets {
		out = append(out, k)
	}
	return out
}

// capture wraps the API and records the secrets of every answer: cookie
// values and the token and CSRF members of JSON bodies.
func (s *secretLog) capture(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for _, c := range rec.Result().Cookies() {
			s.add(c.Value)
		}
		var m map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &m) == nil {
			for _, k := range []string{"access_token", "refresh_token", "csrf_token"} {
				if v, ok := m[k].(string); ok {
					s.add(v)
				}
			}
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// env is a real API (token mode on) on the memory backend with an offset
// clock, behind the pages and the lab, served over real HTTP.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	web     *Handler
	clock   *clock.Offset
	secrets *secretLog
}

func newEnv(t *testing.T, mutate ...func(*httpapi.Config, *Config)) *env {
	t.Helper()
	ctx := t.Context()
	c := &clock.Offset{}
	st := memory.New(c)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	accounts, err := account.New(st, account.Config{Clock: c, Params: account.InsecureFastParamsForTests()})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(st, session.Config{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{KEK: bytes.Repeat([]byte{7}, 32), Alg: keys.EdDSA, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	revStore := memory.NewRevocations(c)
	idx, err := revocation.New(ctx, revStore, c)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(ring, token.IssuerConfig{Issuer: testIssuer, Audience: testIssuer, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := token.NewVerifier(ring, token.VerifierConfig{Issuer: testIssuer, Audience: testIssuer, Clock: c, Revocation: idx})
	if err != nil {
		t.Fatal(err)
	}
	jwksOnly, err := token.NewVerifier(ring, token.VerifierConfig{Issuer: testIssuer, Audience: testIssuer, Clock: c, UnsafeSkipRevocation: true})
	if err != nil {
		t.Fatal(err)
	}
	rcfg := refresh.DefaultConfig()
	rcfg.Clock = c
	refStore := memory.NewRefresh(c)
	rm, err := refresh.NewManager(refStore, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	acfg := httpapi.Config{
		Accounts:       accounts,
		Sessions:       sessions,
		Audit:          audit.NewRecorder(log, st, c),
		AccountLimiter: throttle.NewMemory(c, throttle.DefaultAccountPolicy),
		IPLimiter:      throttle.NewMemory(c, throttle.DefaultIPPolicy),
		Logger:         log,
		Clock:          c,
		Dev:            true,
		Signup:         true,
		AdminKey:       testAdminKey,
		Tokens: &httpapi.TokenConfig{Ring: ring, Issuer: iss, Verifier: ver, Refresh: rm, Revocations: idx,
			IssuerURL: testIssuer, AccessLifetime: 10 * time.Minute, RefreshLifetime: 30 * 24 * time.Hour,
			CSRFKey: bytes.Repeat([]byte{9}, 32)},
	}
	wcfg := Config{
		Dev:    true,
		Signup: true,
		Logger: log,
		Lab: &LabConfig{
			AdminKey: testAdminKey,
			Now:      c.Now,
			Advance:  c.Advance,
			JWKSOnly: jwksOnly.Verify,
			Snapshot: StoreSnapshot(st, st, refStore, revStore),
		},
	}
	for _, m := range mutate {
		m(&acfg, &wcfg)
	}
	api, err := httpapi.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	secrets := &secretLog{secrets: map[string]bool{}}
	wcfg.API = secrets.capture(api.Handler())
	h, err := New(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, web: h, clock: c, secrets: secrets}
}

// browser is a client with a cookie jar that follows redirects, as a
// browser without JavaScript.
type browser struct {
	e      *env
	client *http.Client
	// headers are added to every request (Sec-Fetch-Site, User-Agent).
	headers map[string]string
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	// A client of its own: the server's Client() is shared.
	c := &http.Client{Transport: e.srv.Client().Transport, Jar: jar}
	return &browser{e: e, client: c, headers: map[string]string{}}
}

type page struct {
	status int
	url    string
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, extra map[string]string) page {
	b.e.t.Helper()
	if form == nil {
		return b.raw(method, path, "", "", extra)
	}
	return b.raw(method, path, "application/x-www-form-urlencoded", form.Encode(), extra)
}

// raw sends a request with a body of the given content type ("" for none).
func (b *browser) raw(method, path, contentType, body string, extra map[string]string) page {
	b.e.t.Helper()
	var rd io.Reader
	if contentType != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(b.e.t.Context(), method, b.e.srv.URL+path, rd)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range b.headers {
		req.Header.Set(k, v)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return page{status: res.StatusCode, url: res.Request.URL.RequestURI(), header: res.Header, body: string(raw)}
}

func (b *browser) get(path string) page { return b.do(http.MethodGet, path, nil, nil) }

func (b *browser) post(path string, kv ...string) page {
	f := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return b.do(http.MethodPost, path, f, nil)
}

// cookie returns the browser's cookie name for the server, "" when none.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// csrfField extracts the hidden CSRF field of a page.
func csrfField(t *testing.T, html string) string {
	t.Helper()
	const marker = `name="csrf_token" value="`
	i := strings.Index(html, marker)
	if i < 0 {
		t.Fatalf("no CSRF field in page:\n%s", html)
	}
	rest := html[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}
