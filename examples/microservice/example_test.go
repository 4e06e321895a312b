package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/examples/internal/exampletest"
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
	serviceKey = "microservice-test-service-key-0123456789"
	adminKey   = "microservice-test-admin-key-0123456789ab"
	password   = "correct horse battery staple"
)

// gatehouse is a real Gatehouse server in the test's process: the API on
// the memory stores, over real HTTP on loopback, as
// `gatehouse serve --dev --service-key …` would run it. Its revocation feed
// can be cut (answering 503), as by a network partition.
type gatehouse struct {
	url     string
	ring    *keys.Ring
	feedCut atomic.Bool
}

func startGatehouse(t *testing.T) *gatehouse {
	t.Helper()
	ctx := context.Background()
	srv := httptest.NewUnstartedServer(nil)
	g := &gatehouse{url: "http://" + srv.Listener.Addr().String()}
	c := clock.System{}
	st := memory.New(c)
	log := slog.New(slog.DiscardHandler)
	accounts, err := account.New(st, account.Config{Params: account.InsecureFastParamsForTests()})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(st, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g.ring, err = keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{KEK: bytes.Repeat([]byte{7}, 32), Alg: keys.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := revocation.New(ctx, memory.NewRevocations(c), c)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(g.ring, token.IssuerConfig{Issuer: g.url, Audience: g.url})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := token.NewVerifier(g.ring, token.VerifierConfig{Issuer: g.url, Audience: g.url, Revocation: idx})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := refresh.NewManager(memory.NewRefresh(c), refresh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{
		Accounts: accounts, Sessions: sessions, Audit: audit.NewRecorder(log, st, c),
		AccountLimiter: throttle.NewMemory(c, throttle.DefaultAccountPolicy),
		IPLimiter:      throttle.NewMemory(c, throttle.DefaultIPPolicy),
		Logger:         log, Dev: true, Signup: true, AdminKey: adminKey,
		Tokens: &httpapi.TokenConfig{
			Ring: g.ring, Issuer: iss, Verifier: ver, Refresh: rm, Revocations: idx,
			IssuerURL: g.url, AccessLifetime: token.DefaultLifetime, RefreshLifetime: 30 * 24 * time.Hour,
			CSRFKey: bytes.Repeat([]byte{9}, 32), ServiceKey: serviceKey,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := api.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.feedCut.Load() && r.URL.Path == "/v1/revocations" {
			http.Error(w, "cut", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return g
}

// call sends a request to base+path and returns the status and the body.
func call(t *testing.T, method, rawURL, contentType, body string, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		r.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// signup creates a user and returns its id.
func (g *gatehouse) signup(t *testing.T, username string) string {
	t.Helper()
	status, _, body := call(t, "POST", g.url+"/v1/users", "application/json", `{"username":"`+username+`","password":"`+password+`"}`, nil)
	if status != 201 {
		t.Fatalf("sign-up: %d %s", status, body)
	}
	var u struct{ ID string }
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// login is a password grant; it returns the access token.
func (g *gatehouse) login(t *testing.T, username string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}.Encode()
	status, _, body := call(t, "POST", g.url+"/v1/token", "application/x-www-form-urlencoded", form, nil)
	if status != 200 {
		t.Fatalf("password grant: %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("password grant body %s: %v", body, err)
	}
	return tok.AccessToken
}

// mint issues a token with the server's keys but other settings.
func (g *gatehouse) mint(t *testing.T, cfg token.IssuerConfig, sub string) string {
	t.Helper()
	iss, err := token.NewIssuer(g.ring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := iss.Issue(context.Background(), sub, "test-family", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func writeKey(t *testing.T, key string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "service.key")
	if err := os.WriteFile(path, []byte(key+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func startService(t *testing.T, g *gatehouse, extra ...string) string {
	t.Helper()
	args := append([]string{"--addr", "127.0.0.1:0", "--gatehouse", g.url, "--service-key-file", writeKey(t, serviceKey, 0o600), "--log-level", "debug"}, extra...)
	return exampletest.Start(t, run, args...)
}

func callHello(t *testing.T, base string, authorization ...string) (int, http.Header, []byte) {
	t.Helper()
	h := http.Header{}
	for _, a := range authorization {
		h.Add("Authorization", a)
	}
	return call(t, "GET", base+"/hello", "", "", h)
}

// eventually calls check every few milliseconds until it returns true or
// bound passes, and returns how long that took and whether it happened.
func eventually(bound time.Duration, check func() bool) (time.Duration, bool) {
	start := time.Now()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if check() {
			return time.Since(start), true
		}
		select {
		case <-deadline.C:
			return time.Since(start), false
		case <-tick.C:
		}
	}
}

func TestHello(t *testing.T) {
	g := startGatehouse(t)
	base := startService(t, g)
	uid := g.signup(t, "sam")
	access := g.login(t, "sam")

	other, err := keys.NewRing(context.Background(), memory.NewKeys(), keys.RingConfig{KEK: bytes.Repeat([]byte{8}, 32), Alg: keys.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	foreignIss, err := token.NewIssuer(other, token.IssuerConfig{Issuer: g.url, Audience: g.url})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := foreignIss.Issue(context.Background(), uid, "x", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	hourAgo := clock.NewFake(time.Now().Add(-time.Hour))

	cases := []struct {
		name      string
		auth      []string
		status    int
		challenge string
	}{
		{"a valid token", []string{"Bearer " + access}, 200, ""},
		{"the scheme in lower case", []string{"bearer " + access}, 200, ""},
		{"no Authorization header", nil, 401, "Bearer"},
		{"a token that is not a JWT", []string{"Bearer not-a-token"}, 401, `Bearer error="invalid_token"`},
		{"a token for another audience", []string{"Bearer " + g.mint(t, token.IssuerConfig{Issuer: g.url, Audience: "https://elsewhere.example"}, uid)}, 401, `Bearer error="invalid_token"`},
		{"a token of another issuer", []string{"Bearer " + g.mint(t, token.IssuerConfig{Issuer: "https://evil.example", Audience: g.url}, uid)}, 401, `Bearer error="invalid_token"`},
		{"an expired token", []string{"Bearer " + g.mint(t, token.IssuerConfig{Issuer: g.url, Audience: g.url, Clock: hourAgo}, uid)}, 401, `Bearer error="invalid_token"`},
		{"a token signed by another key", []string{"Bearer " + foreign}, 401, `Bearer error="invalid_token"`},
		{"a token with its signature cut", []string{"Bearer " + access[:strings.LastIndexByte(access, '.')+1]}, 401, `Bearer error="invalid_token"`},
		{"another scheme", []string{"Basic c2FtOnB3"}, 400, `Bearer error="invalid_request"`},
		{"two Authorization headers", []string{"Bearer " + access, "Bearer " + access}, 400, `Bearer error="invalid_request"`},
		{"a space in the token", []string{"Bearer " + access + " x"}, 400, `Bearer error="invalid_request"`},
		{"an empty token", []string{"Bearer "}, 400, `Bearer error="invalid_request"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := callHello(t, base, c.auth...)
			if status != c.status || h.Get("WWW-Authenticate") != c.challenge {
				t.Fatalf("status %d, WWW-Authenticate %q; want %d, %q: %s", status, h.Get("WWW-Authenticate"), c.status, c.challenge, body)
			}
			if status == 200 {
				var got struct{ Subject string }
				if err := json.Unmarshal(body, &got); err != nil || got.Subject != uid {
					t.Fatalf("body %s, want subject %s", body, uid)
				}
			}
		})
	}
}

// TestRevocation: a token revoked on the server, or ended by a forced
// logout, is refused by the service through the revocation feed, within a
// bound far below the token's lifetime.
func TestRevocation(t *testing.T) {
	const bound = 5 * time.Second // the feed usually takes milliseconds
	g := startGatehouse(t)
	base := startService(t, g)
	uid := g.signup(t, "rita")

	refused := func(access string) func() bool {
		return func() bool {
			status, _, _ := callHello(t, base, "Bearer "+access)
			return status == 401
		}
	}
	t.Run("RFC 7009 revocation", func(t *testing.T) {
		access := g.login(t, "rita")
		if status, _, body := callHello(t, base, "Bearer "+access); status != 200 {
			t.Fatalf("before the revocation: %d %s", status, body)
		}
		if status, _, body := call(t, "POST", g.url+"/v1/token/revoke", "application/x-www-form-urlencoded", "token="+access, nil); status != 200 {
			t.Fatalf("revoke: %d %s", status, body)
		}
		took, ok := eventually(bound, refused(access))
		if !ok {
			t.Fatalf("the revoked token is still accepted %v after its revocation", bound)
		}
		t.Logf("revoked token refused by the service %v after the revocation's answer", took)
	})
	t.Run("forced logout", func(t *testing.T) {
		access := g.login(t, "rita")
		if status, _, body := callHello(t, base, "Bearer "+access); status != 200 {
			t.Fatalf("before the logout: %d %s", status, body)
		}
		status, _, body := call(t, "POST", g.url+"/v1/admin/users/"+uid+"/logout", "", "", http.Header{"Authorization": {"Bearer " + adminKey}})
		if status != 204 {
			t.Fatalf("forced logout: %d %s", status, body)
		}
		took, ok := eventually(bound, refused(access))
		if !ok {
			t.Fatalf("the token is still accepted %v after the forced logout", bound)
		}
		t.Logf("token refused by the service %v after the forced logout", took)
	})
}

// TestFeedCut: when the revocation feed is cut off for longer than
// --max-staleness, the service refuses valid tokens with 503 (fail
// closed), and accepts them again once the feed is back.
func TestFeedCut(t *testing.T) {
	g := startGatehouse(t)
	base := startService(t, g, "--max-staleness", "300ms")
	g.signup(t, "fay")
	access := g.login(t, "fay")
	status := func() int { s, _, _ := callHello(t, base, "Bearer "+access); return s }
	if s := status(); s != 200 {
		t.Fatalf("before the cut: %d", s)
	}
	g.feedCut.Store(true)
	took, ok := eventually(10*time.Second, func() bool { return status() == 503 })
	if !ok {
		t.Fatal("tokens still accepted 10 s after the feed was cut, with --max-staleness 300ms")
	}
	t.Logf("503 %v after the cut", took)
	g.feedCut.Store(false)
	if _, ok := eventually(10*time.Second, func() bool { return status() == 200 }); !ok {
		t.Fatal("tokens still refused 10 s after the feed came back")
	}
}

func TestRunRefuses(t *testing.T) {
	g := startGatehouse(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no server", []string{"--service-key-file", writeKey(t, serviceKey, 0o600)}, "required"},
		{"no service key", []string{"--gatehouse", g.url}, "required"},
		{"a service key readable by others", []string{"--gatehouse", g.url, "--service-key-file", writeKey(t, serviceKey, 0o644)}, "chmod 600"},
		{"an empty service key file", []string{"--gatehouse", g.url, "--service-key-file", writeKey(t, "", 0o600)}, "empty"},
		{"a wrong service key", []string{"--gatehouse", g.url, "--service-key-file", writeKey(t, "wrong-service-key-0123456789abcdef0123", 0o600)}, "trust"},
		{"a wrong issuer", []string{"--gatehouse", g.url + "/", "--service-key-file", writeKey(t, serviceKey, 0o600)}, "trust"},
		{"a stray argument", []string{"--gatehouse", g.url, "serve"}, "unexpected argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"--addr", "127.0.0.1:0"}, c.args...), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// FuzzBearer: the Authorization parser never panics, and what it accepts
// is a b64token that it gets back from a canonical header.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer ", "Bearer  x", "Basic x", "Bearer a=b", "Bearer ===", "Bearer a==", "Bearer\tx", "Bearer é", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := bearer(http.Header{"Authorization": {v}})
		if err != nil {
			return
		}
		if !b64token(tok) || strings.ContainsAny(tok, " \t\r\n,") {
			t.Fatalf("accepted %q from %q", tok, v)
		}
		again, err := bearer(http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil || again != tok {
			t.Fatalf("canonical header of %q: %q, %v", tok, again, err)
		}
	})
}
