package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/gatehouse-auth/gatehouse/verify"
)

// The tests run a real Gatehouse (httpapi on the memory backend, real
// clock) behind httptest, with two faults the tests can switch: a cut
// revocation feed (its requests hang until the feed is restored, as in a
// network partition) and a JWKS that answers 503.

const (
	audience   = "api.test"
	serviceKey = "verify-test-service-key-0123456789abcdef"
	adminKey   = "verify-test-admin-key-0123456789abcdef012"
	password   = "correct horse battery staple"
)

// gatehouse is a running server.
type gatehouse struct {
	t      testing.TB
	srv    *httptest.Server
	url    string
	ring   *keys.Ring
	revs   *memory.Revocations // the revocation store, kept across restarts
	issuer *token.Issuer       // mints tokens with the server's keys (benchmarks)

	api atomic.Pointer[http.Handler]

	mu         sync.Mutex
	feedCut    chan struct{} // non-nil while cut; closed on restore
	feedRefuse atomic.Bool   // the feed answers 503
	jwksDown   atomic.Bool

	jwksHits atomic.Int64
	feedHits atomic.Int64
}

func newGatehouse(t testing.TB) *gatehouse {
	t.Helper()
	g := &gatehouse{t: t, revs: memory.NewRevocations(clock.System{})}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	t.Cleanup(g.restoreFeed) // before Close: no request left hanging
	g.url = g.srv.URL
	ring, err := keys.NewRing(context.Background(), memory.NewKeys(), keys.RingConfig{KEK: bytes.Repeat([]byte{7}, 32), Alg: keys.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	g.ring = ring
	g.start()
	return g
}

// start builds the API, anew for a restart: a new revocation index loaded
// from the revocation store (so a new feed epoch), and new account state.
func (g *gatehouse) start() {
	t := g.t
	ctx := context.Background()
	c := clock.System{}
	st := memory.New(c)
	log := slog.New(slog.DiscardHandler)
	accounts, err := account.New(st, account.Config{Clock: c, Params: account.InsecureFastParamsForTests()})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(st, session.Config{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := revocation.New(ctx, g.revs, c)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(g.ring, token.IssuerConfig{Issuer: g.url, Audience: audience, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := token.NewVerifier(g.ring, token.VerifierConfig{Issuer: g.url, Audience: audience, Clock: c, Revocation: idx})
	if err != nil {
		t.Fatal(err)
	}
	rcfg := refresh.DefaultConfig()
	rcfg.Clock = c
	rm, err := refresh.NewManager(memory.NewRefresh(c), rcfg)
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{
		Accounts: accounts, Sessions: sessions, Audit: audit.NewRecorder(log, st, c),
		AccountLimiter: throttle.NewMemory(c, throttle.DefaultAccountPolicy),
		IPLimiter:      throttle.NewMemory(c, throttle.DefaultIPPolicy),
		Logger:         log, Clock: c, Dev: true, Signup: true, AdminKey: adminKey,
		Tokens: &httpapi.TokenConfig{
			Ring: g.ring, Issuer: iss, Verifier: ver, Refresh: rm, Revocations: idx,
			IssuerURL: g.url, AccessLifetime: 10 * time.Minute, RefreshLifetime: 24 * time.Hour,
			CSRFKey: bytes.Repeat([]byte{9}, 32), ServiceKey: serviceKey,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := api.Handler()
	g.issuer = iss
	g.api.Store(&h)
}

// restart replaces the API as a restarted process would: same keys and
// revocation store, new feed epoch, no users.
func (g *gatehouse) restart(loseRevocations bool) {
	if loseRevocations {
		g.revs = memory.NewRevocations(clock.System{})
	}
	g.start()
}

func (g *gatehouse) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/revocations":
		g.feedHits.Add(1)
		if g.feedRefuse.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		g.mu.Lock()
		cut := g.feedCut
		g.mu.Unlock()
		if cut != nil {
			select {
			case <-cut:
			case <-r.Context().Done():
				return
			}
		}
	case "/.well-known/jwks.json":
		g.jwksHits.Add(1)
		if g.jwksDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
	}
	(*g.api.Load()).ServeHTTP(w, r)
}

// cutFeed makes every new feed request hang until restoreFeed.
func (g *gatehouse) cutFeed() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.feedCut == nil {
		g.feedCut = make(chan struct{})
	}
}

func (g *gatehouse) restoreFeed() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.feedCut != nil {
		close(g.feedCut)
		g.feedCut = nil
	}
}

// do sends a request and returns the status and body; it does not fail
// the test, so that it may run on any goroutine.
func (g *gatehouse) do(method, path, contentType, body string, header ...string) (int, []byte, error) {
	req, err := http.NewRequest(method, g.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := g.srv.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func (g *gatehouse) mustDo(want int, method, path, contentType, body string, header ...string) []byte {
	g.t.Helper()
	status, b, err := g.do(method, path, contentType, body, header...)
	if err != nil || status != want {
		g.t.Fatalf("%s %s: %d %s %v, want %d", method, path, status, b, err, want)
	}
	return b
}

// signup creates a user.
func (g *gatehouse) signup(name string) {
	g.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": name, "password": password})
	g.mustDo(http.StatusCreated, "POST", "/v1/users", "application/json", string(b))
}

// login returns an access token and a refresh token of the user.
func (g *gatehouse) login(name string) (access, refreshToken string) {
	g.t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {name}, "password": {password}}.Encode()
	b := g.mustDo(http.StatusOK, "POST", "/v1/token", "application/x-www-form-urlencoded", form)
	var m struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Access == "" || m.Refresh == "" {
		g.t.Fatalf("token answer %s: %v", b, err)
	}
	return m.Access, m.Refresh
}

// revoke revokes a token by RFC 7009.
func (g *gatehouse) revoke(tok string) {
	g.t.Helper()
	g.mustDo(http.StatusOK, "POST", "/v1/token/revoke", "application/x-www-form-urlencoded", url.Values{"token": {tok}}.Encode())
}

// rotate rotates the signing key (it signs at once: no publish delay).
func (g *gatehouse) rotate() string {
	g.t.Helper()
	b := g.mustDo(http.StatusOK, "POST", "/v1/admin/keys/rotate", "", "", "Authorization", "Bearer "+adminKey)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		g.t.Fatal(err)
	}
	return m["kid"].(string)
}

// config is a verifier configuration for g.
func (g *gatehouse) config() verify.Config {
	return verify.Config{Issuer: g.url, Audience: audience, ServiceKey: serviceKey, Logger: slog.New(slog.DiscardHandler)}
}

func newVerifier(t testing.TB, cfg verify.Config) *verify.Verifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := verify.New(ctx, cfg)
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// kidOf reads the kid of a token's header.
func kidOf(t testing.TB, raw string) string {
	t.Helper()
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// withKid returns raw with its header's kid replaced (the signature no
// longer matches, which does not matter for an unknown kid).
func withKid(raw, kid string) string {
	_, rest, _ := strings.Cut(raw, ".")
	h := `{"alg":"EdDSA","kid":"` + kid + `","typ":"at+jwt"}`
	return base64.RawURLEncoding.EncodeToString([]byte(h)) + "." + rest
}

// eventually calls check every few milliseconds until it returns nil or
// bound passes, and returns the last error and the time it took.
func eventually(bound time.Duration, check func() error) (time.Duration, error) {
	start := time.Now()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return time.Since(start), nil
		}
		select {
		case <-deadline.C:
			return time.Since(start), err
		case <-tick.C:
		}
	}
}

// wantErr is a check for eventually: the token is refused with target.
func wantErr(v *verify.Verifier, raw string, target error) func() error {
	return func() error {
		_, err := v.Verify(context.Background(), raw)
		if target == nil {
			return err
		}
		if !errors.Is(err, target) {
			return errors.New("got " + errString(err) + ", want " + target.Error())
		}
		return nil
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// syncBuffer collects log output from several goroutines.
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
