package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/token"
)

const (
	issuerURL  = "http://gatehouse.test"
	serviceKey = "test-service-key-0123456789abcdef012345"
)

// withTokens turns on token mode on the memory backend and the harness clock.
func withTokens(h *harness) func(*Config) {
	return func(c *Config) {
		ctx := h.t.Context()
		kek := bytes.Repeat([]byte{7}, 32)
		ring, err := keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{KEK: kek, Alg: keys.EdDSA, Clock: c.Clock})
		if err != nil {
			h.t.Fatal(err)
		}
		idx, err := revocation.New(ctx, memory.NewRevocations(c.Clock), c.Clock)
		if err != nil {
			h.t.Fatal(err)
		}
		iss, err := token.NewIssuer(ring, token.IssuerConfig{Issuer: issuerURL, Audience: issuerURL, Clock: c.Clock})
		if err != nil {
			h.t.Fatal(err)
		}
		ver, err := token.NewVerifier(ring, token.VerifierConfig{Issuer: issuerURL, Audience: issuerURL, Clock: c.Clock, Revocation: idx})
		if err != nil {
			h.t.Fatal(err)
		}
		fwd, err := token.NewIssuer(ring, token.IssuerConfig{Issuer: issuerURL, Audience: "upstream", Lifetime: time.Minute, Clock: c.Clock})
		if err != nil {
			h.t.Fatal(err)
		}
		rcfg := refresh.DefaultConfig()
		rcfg.Clock = c.Clock
		rm, err := refresh.NewManager(memory.NewRefresh(c.Clock), rcfg)
		if err != nil {
			h.t.Fatal(err)
		}
		c.Tokens = &TokenConfig{Ring: ring, Issuer: iss, Verifier: ver, Refresh: rm, Revocations: idx,
			IssuerURL: issuerURL, AccessLifetime: 10 * time.Minute, RefreshLifetime: 30 * 24 * time.Hour,
			CSRFKey: bytes.Repeat([]byte{9}, 32), ServiceKey: serviceKey, Forward: fwd}
	}
}

func newTokenHarness(t *testing.T, mutate ...func(*Config)) *harness {
	t.Helper()
	var h *harness
	shell := &harness{t: t}
	h = newHarness(t, append([]func(*Config){func(c *Config) { withTokens(shell)(c) }}, mutate...)...)
	return h
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func (h *harness) token(body string, headers map[string]string, cookies ...*http.Cookie) resp {
	h.t.Helper()
	return h.do(req{method: "POST", path: "/v1/token", body: body, contentType: "application/x-www-form-urlencoded", headers: headers, cookies: cookies})
}

type pair struct{ access, refresh string }

func (h *harness) passwordGrant(username, password string) pair {
	h.t.Helper()
	r := h.token(form("grant_type", "password", "username", username, "password", password), nil)
	if r.StatusCode != 200 {
		h.t.Fatalf("password grant: %d %s", r.StatusCode, r.body)
	}
	m := r.json(h.t)
	if m["token_type"] != "Bearer" || m["expires_in"].(float64) != 600 || r.Header.Get("Cache-Control") != "no-store" {
		h.t.Fatalf("token response: %s %v", r.body, r.Header)
	}
	return pair{m["access_token"].(string), m["refresh_token"].(string)}
}

func (h *harness) bearer(access, method, path string) resp {
	h.t.Helper()
	return h.do(req{method: method, path: path, headers: map[string]string{"Authorization": "Bearer " + access}})
}

func wantOAuthError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.body)
	}
	var m map[string]string
	if err := json.Unmarshal(r.body, &m); err != nil || m["error"] != code || m["error_description"] == "" {
		t.Fatalf("body %s, want error %q", r.body, code)
	}
}

func TestTokenFlow(t *testing.T) {
	h := newTokenHarness(t)
	uid := h.signup("tina", pw)
	p := h.passwordGrant("tina", pw)
	me := h.bearer(p.access, "GET", "/v1/me")
	if me.StatusCode != 200 || me.json(t)["auth"].(map[string]any)["mode"] != "token" || me.json(t)["id"] != uid {
		t.Fatalf("me: %d %s", me.StatusCode, me.body)
	}
	// Unsafe bearer requests need no CSRF token.
	if r := h.bearer(p.access, "GET", "/v1/sessions"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("session endpoint with a bearer: %d", r.StatusCode)
	}

	// Rotation: a new pair; the old refresh token is now rotated.
	r := h.token(form("grant_type", "refresh_token", "refresh_token", p.refresh), nil)
	if r.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
	}
	p2 := pair{r.json(t)["access_token"].(string), r.json(t)["refresh_token"].(string)}
	if p2.refresh == p.refresh || p2.access == p.access {
		t.Fatal("refresh did not rotate")
	}
	// Past the grace period, presenting the old one is reuse: the family
	// dies, with its access tokens.
	h.clock.Advance(11 * time.Second)
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "refresh_token", p.refresh), nil), 400, "invalid_grant")
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "refresh_token", p2.refresh), nil), 400, "invalid_grant")
	for _, a := range []string{p.access, p2.access} {
		r := h.bearer(a, "GET", "/v1/me")
		wantProblem(t, r, 401, classUnauthorized)
		if r.Header.Get("WWW-Authenticate") != challengeInvalidToken {
			t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
	}
	ev := h.do(req{method: "GET", path: "/v1/admin/audit?type=token.reuse_detected", headers: map[string]string{"Authorization": "Bearer " + adminKey}})
	if e := ev.json(t)["events"].([]any); len(e) != 1 || e[0].(map[string]any)["severity"] != "high" {
		t.Fatalf("reuse audit: %s", ev.body)
	}
}

func TestPasswordGrantFailures(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("uma", pw)
	wrong := h.token(form("grant_type", "password", "username", "uma", "password", "wrong password!"), nil)
	unknown := h.token(form("grant_type", "password", "username", "nobody", "password", "wrong password!"), nil)
	wantOAuthError(t, wrong, 400, "invalid_grant")
	if string(wrong.body) != string(unknown.body) || unknown.StatusCode != 400 {
		t.Fatalf("failures differ: %s vs %s", wrong.body, unknown.body)
	}
	cases := []struct {
		name, body, ct string
		status         int
		code           string
	}{
		{"no grant type", form("username", "uma"), "", 400, "invalid_request"},
		{"unknown grant", form("grant_type", "client_credentials"), "", 400, "unsupported_grant_type"},
		{"repeated parameter", "grant_type=password&grant_type=password&username=uma&password=x", "", 400, "invalid_request"},
		{"unknown parameter", form("grant_type", "password", "username", "uma", "password", pw, "foo", "1"), "", 400, "invalid_request"},
		{"scope", form("grant_type", "password", "username", "uma", "password", pw, "scope", "admin"), "", 400, "invalid_scope"},
		{"bad delivery", form("grant_type", "password", "username", "uma", "password", pw, "delivery", "pigeon"), "", 400, "invalid_request"},
		{"text/plain", "grant_type=password", "text/plain", 415, "invalid_request"},
		{"json accepted", `{"grant_type":"password","username":"uma","password":"` + pw + `"}`, "application/json", 200, ""},
		{"json duplicate", `{"grant_type":"password","grant_type":"password"}`, "application/json", 400, "invalid_request"},
		{"malformed refresh token", form("grant_type", "refresh_token", "refresh_token", "x"), "", 400, "invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ct
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			r := h.do(req{method: "POST", path: "/v1/token", body: tc.body, contentType: ct})
			if tc.code == "" {
				if r.StatusCode != tc.status {
					t.Fatalf("status %d: %s", r.StatusCode, r.body)
				}
				return
			}
			wantOAuthError(t, r, tc.status, tc.code)
		})
	}
	t.Run("token in the query is refused", func(t *testing.T) {
		r := h.do(req{method: "POST", path: "/v1/token?grant_type=password", body: form("grant_type", "password", "username", "uma", "password", pw), contentType: "application/x-www-form-urlencoded"})
		wantOAuthError(t, r, 400, "invalid_request")
	})
}

// TestParallelRefresh: 20 tabs refresh the same token at once; all get a
// valid pair of the same family and nobody is logged out.
func TestParallelRefresh(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("vera", pw)
	p := h.passwordGrant("vera", pw)
	var wg sync.WaitGroup
	results := make([]resp, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.token(form("grant_type", "refresh_token", "refresh_token", p.refresh), nil)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		if r.StatusCode != 200 {
			t.Fatalf("refresh %d: %d %s", i, r.StatusCode, r.body)
		}
		m := r.json(t)
		rt := m["refresh_token"].(string)
		if seen[rt] {
			t.Fatal("two refreshes got the same refresh token")
		}
		seen[rt] = true
		if h.bearer(m["access_token"].(string), "GET", "/v1/me").StatusCode != 200 {
			t.Fatal("an access token from a parallel refresh is refused")
		}
	}
	for rt := range seen {
		if r := h.token(form("grant_type", "refresh_token", "refresh_token", rt), nil); r.StatusCode != 200 {
			t.Fatalf("a sibling does not rotate: %d %s", r.StatusCode, r.body)
		}
	}
}

func TestRevokeAndIntrospect(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("wendy", pw)
	p := h.passwordGrant("wendy", pw)
	introspect := func(tok string, key string) resp {
		hd := map[string]string{}
		if key != "" {
			hd["Authorization"] = "Bearer " + key
		}
		return h.do(req{method: "POST", path: "/v1/token/introspect", body: form("token", tok), contentType: "application/x-www-form-urlencoded", headers: hd})
	}
	wantOAuthError(t, introspect(p.access, ""), 401, "invalid_client")
	wantOAuthError(t, introspect(p.access, adminKey), 401, "invalid_client")
	r := introspect(p.access, serviceKey)
	m := r.json(t)
	if m["active"] != true || m["iss"] != issuerURL || m["token_type"] != "Bearer" || m["jti"] == "" {
		t.Fatalf("introspect: %s", r.body)
	}
	for _, bad := range []string{"garbage", p.refresh, p.access + "x"} {
		if r := introspect(bad, serviceKey); strings.TrimSpace(string(r.body)) != `{"active":false}` {
			t.Fatalf("introspect(%q) = %s", bad, r.body)
		}
	}
	// Revoke the access token: denylisted at once.
	rv := h.do(req{method: "POST", path: "/v1/token/revoke", body: form("token", p.access, "token_type_hint", "access_token"), contentType: "application/x-www-form-urlencoded"})
	if rv.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", rv.StatusCode, rv.body)
	}
	wantProblem(t, h.bearer(p.access, "GET", "/v1/me"), 401, classUnauthorized)
	if r := introspect(p.access, serviceKey); strings.TrimSpace(string(r.body)) != `{"active":false}` {
		t.Fatalf("revoked token introspects as %s", r.body)
	}
	// The refresh token still works (only the access token was revoked).
	r = h.token(form("grant_type", "refresh_token", "refresh_token", p.refresh), nil)
	if r.StatusCode != 200 {
		t.Fatalf("refresh after access revoke: %d", r.StatusCode)
	}
	p2 := pair{r.json(t)["access_token"].(string), r.json(t)["refresh_token"].(string)}
	// Revoke the refresh token: the family and its access tokens end.
	h.do(req{method: "POST", path: "/v1/token/revoke", body: form("token", p2.refresh), contentType: "application/x-www-form-urlencoded"})
	wantProblem(t, h.bearer(p2.access, "GET", "/v1/me"), 401, classUnauthorized)
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "refresh_token", p2.refresh), nil), 400, "invalid_grant")
	// Unknown tokens: 200 all the same.
	for _, tok := range []string{"unknown", strings.Repeat("A", 43), "a.b.c"} {
		if r := h.do(req{method: "POST", path: "/v1/token/revoke", body: form("token", tok), contentType: "application/x-www-form-urlencoded"}); r.StatusCode != 200 {
			t.Fatalf("revoke(%q): %d", tok, r.StatusCode)
		}
	}
}

func TestHybridMode(t *testing.T) {
	h := newTokenHarness(t, func(c *Config) { c.Dev = false })
	h.signup("xena", pw)
	r := h.token(form("grant_type", "password", "username", "xena", "password", pw, "delivery", "cookie"), nil)
	if r.StatusCode != 200 {
		t.Fatalf("hybrid login: %d %s", r.StatusCode, r.body)
	}
	m := r.json(t)
	if _, ok := m["access_token"]; ok || m["csrf_token"] == nil || m["refresh_token"] != nil {
		t.Fatalf("hybrid body carries a token: %s", r.body)
	}
	var access, refreshC *http.Cookie
	for _, line := range r.Header.Values("Set-Cookie") {
		switch {
		case strings.HasPrefix(line, "__Host-gh_access="):
			for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
				if !strings.Contains(line, want) {
					t.Fatalf("access cookie %q lacks %s", line, want)
				}
			}
			if len(line) >= 4096 {
				t.Fatalf("access cookie is %d bytes", len(line))
			}
		case strings.HasPrefix(line, "__Secure-gh_refresh="):
			for _, want := range []string{"Path=/v1/token", "HttpOnly", "Secure", "SameSite=Strict"} {
				if !strings.Contains(line, want) {
					t.Fatalf("refresh cookie %q lacks %s", line, want)
				}
			}
		default:
			t.Fatalf("unexpected cookie %q", line)
		}
	}
	access, refreshC = r.cookie("__Host-gh_access"), r.cookie("__Secure-gh_refresh")
	csrfTok := m["csrf_token"].(string)
	ac := &http.Cookie{Name: access.Name, Value: access.Value}
	rc := &http.Cookie{Name: refreshC.Name, Value: refreshC.Value}

	me := h.do(req{method: "GET", path: "/v1/me", cookies: []*http.Cookie{ac}})
	if me.StatusCode != 200 || me.json(t)["auth"].(map[string]any)["mode"] != "cookie-token" {
		t.Fatalf("hybrid me: %d %s", me.StatusCode, me.body)
	}
	// Unsafe requests need the CSRF token.
	body := `{"current_password":"wrong password!","new_password":"whatever123"}`
	wantProblem(t, h.do(req{method: "POST", path: "/v1/me/password", body: body, cookies: []*http.Cookie{ac}}), 403, classCSRF)
	wantProblem(t, h.do(req{method: "POST", path: "/v1/me/password", body: body, cookies: []*http.Cookie{ac}, headers: map[string]string{"X-CSRF-Token": csrfTok}}), 403, classForbidden)

	// Cookie refresh: CSRF required.
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "delivery", "cookie"), nil, rc), 403, "invalid_request")
	r = h.token(form("grant_type", "refresh_token", "delivery", "cookie"), map[string]string{"X-CSRF-Token": csrfTok}, rc)
	if r.StatusCode != 200 || r.cookie("__Host-gh_access") == nil || r.cookie("__Secure-gh_refresh") == nil || r.json(t)["csrf_token"] == nil {
		t.Fatalf("cookie refresh: %d %s", r.StatusCode, r.body)
	}
	// A refresh_token field is refused in cookie mode.
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "delivery", "cookie", "refresh_token", refreshC.Value), map[string]string{"X-CSRF-Token": csrfTok}, rc), 400, "invalid_request")

	// Logout in hybrid mode: revoke with the refresh cookie.
	rc2 := &http.Cookie{Name: "__Secure-gh_refresh", Value: r.cookie("__Secure-gh_refresh").Value}
	// An app that lost its CSRF token gets it back from the refresh cookie.
	if got := h.do(req{method: "GET", path: "/v1/token/csrf", cookies: []*http.Cookie{rc2}}).json(t)["csrf_token"]; got != csrfTok {
		t.Fatalf("GET /v1/token/csrf = %v", got)
	}
	ac2 := &http.Cookie{Name: "__Host-gh_access", Value: r.cookie("__Host-gh_access").Value}
	out := h.do(req{method: "POST", path: "/v1/token/revoke", body: "", contentType: "application/x-www-form-urlencoded", cookies: []*http.Cookie{rc2}, headers: map[string]string{"X-CSRF-Token": csrfTok, "Content-Type": "application/x-www-form-urlencoded"}})
	if out.StatusCode != 200 {
		t.Fatalf("hybrid logout: %d %s", out.StatusCode, out.body)
	}
	wantProblem(t, h.do(req{method: "GET", path: "/v1/me", cookies: []*http.Cookie{ac2}}), 401, classUnauthorized)
	// After logout the refresh cookie yields no CSRF token.
	wantProblem(t, h.do(req{method: "GET", path: "/v1/token/csrf", cookies: []*http.Cookie{rc2}}), 401, classUnauthorized)
}

func TestForwardAuth(t *testing.T) {
	h := newTokenHarness(t)
	uid := h.signup("yuri", pw)
	sess := h.login("yuri", pw)
	p := h.passwordGrant("yuri", pw)
	hy := h.token(form("grant_type", "password", "username", "yuri", "password", pw, "delivery", "cookie"), nil)
	ac := &http.Cookie{Name: "gh_access", Value: hy.cookie("gh_access").Value}
	spoof := map[string]string{"X-Gatehouse-User-Id": "admin", "X-Gatehouse-Username": "root", "X-Gatehouse-Auth-Mode": "god"}
	cases := []struct {
		name string
		rq   req
		want int
		mode string
	}{
		{"session cookie", req{method: "GET", path: "/v1/verify", cookies: []*http.Cookie{sess.cookie}, headers: spoof}, 200, "session"},
		{"bearer", req{method: "GET", path: "/v1/verify", headers: map[string]string{"Authorization": "Bearer " + p.access, "X-Gatehouse-User-Id": "admin"}}, 200, "token"},
		{"hybrid cookie", req{method: "HEAD", path: "/v1/verify", cookies: []*http.Cookie{ac}}, 200, "cookie-token"},
		{"nothing", req{method: "GET", path: "/v1/verify", headers: spoof}, 401, ""},
		{"bad bearer", req{method: "GET", path: "/v1/verify", headers: map[string]string{"Authorization": "Bearer x.y.z"}}, 401, ""},
		{"unsafe original method without CSRF", req{method: "GET", path: "/v1/verify", cookies: []*http.Cookie{sess.cookie}, headers: map[string]string{"X-Forwarded-Method": "POST"}}, 403, ""},
		{"unsafe original method with CSRF", req{method: "GET", path: "/v1/verify", cookies: []*http.Cookie{sess.cookie}, headers: map[string]string{"X-Forwarded-Method": "POST", "X-CSRF-Token": sess.csrf}}, 200, "session"},
		{"unsafe X-Original-Method without CSRF", req{method: "GET", path: "/v1/verify", cookies: []*http.Cookie{sess.cookie}, headers: map[string]string{"X-Original-Method": "DELETE"}}, 403, ""},
		{"unsafe X-Original-Method hidden behind a safe X-Forwarded-Method", req{method: "GET", path: "/v1/verify", cookies: []*http.Cookie{sess.cookie}, headers: map[string]string{"X-Original-Method": "POST", "X-Forwarded-Method": "GET"}}, 403, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.rq)
			if r.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.want, r.body)
			}
			if tc.want != 200 {
				if r.Header.Get(headerUserID) != "" || r.Header.Get(headerUsername) != "" {
					t.Fatal("identity headers on a refusal")
				}
				return
			}
			if r.Header.Get(headerUserID) != uid || r.Header.Get(headerUsername) != "yuri" || r.Header.Get(headerAuthMode) != tc.mode {
				t.Fatalf("identity headers %v", r.Header)
			}
			if r.Header.Get(headerToken) == "" {
				t.Fatal("no X-Gatehouse-Token")
			}
		})
	}
}

func TestForcedLogoutEndsTokens(t *testing.T) {
	h := newTokenHarness(t)
	uid := h.signup("zoe", pw)
	p := h.passwordGrant("zoe", pw)
	sess := h.login("zoe", pw)
	if r := h.do(req{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + adminKey}}); r.StatusCode != 204 {
		t.Fatalf("forced logout: %d", r.StatusCode)
	}
	wantProblem(t, h.bearer(p.access, "GET", "/v1/me"), 401, classUnauthorized)
	wantProblem(t, h.as(sess, req{method: "GET", path: "/v1/me"}, false), 401, classUnauthorized)
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "refresh_token", p.refresh), nil), 400, "invalid_grant")
	// A new login after the forced logout works (the next second).
	h.clock.Advance(time.Second)
	p2 := h.passwordGrant("zoe", pw)
	if r := h.bearer(p2.access, "GET", "/v1/me"); r.StatusCode != 200 {
		t.Fatalf("new login after forced logout: %d", r.StatusCode)
	}
}

func TestKeysAndDiscovery(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("abe", pw)
	p := h.passwordGrant("abe", pw)
	d := h.do(req{method: "GET", path: "/.well-known/openid-configuration"}).json(t)
	for _, k := range []string{"issuer", "jwks_uri", "token_endpoint", "revocation_endpoint", "introspection_endpoint", "grant_types_supported", "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported", "token_endpoint_auth_methods_supported"} {
		if _, ok := d[k]; !ok {
			t.Fatalf("discovery lacks %s", k)
		}
	}
	if d["issuer"] != issuerURL {
		t.Fatalf("issuer %v", d["issuer"])
	}
	jwks := func() []any {
		return h.do(req{method: "GET", path: "/.well-known/jwks.json"}).json(t)["keys"].([]any)
	}
	if k := jwks(); len(k) != 1 || k[0].(map[string]any)["use"] != "sig" || k[0].(map[string]any)["alg"] != "EdDSA" || k[0].(map[string]any)["d"] != nil {
		t.Fatalf("jwks %v", k)
	}
	h.clock.Advance(time.Second)
	r := h.do(req{method: "POST", path: "/v1/admin/keys/rotate", headers: map[string]string{"Authorization": "Bearer " + adminKey}})
	if r.StatusCode != 200 || r.json(t)["kid"] == "" || r.json(t)["signs_from"] == nil {
		t.Fatalf("rotate: %d %s", r.StatusCode, r.body)
	}
	if len(jwks()) != 2 {
		t.Fatal("the new key is not published at once, or the old one left")
	}
	if h.bearer(p.access, "GET", "/v1/me").StatusCode != 200 {
		t.Fatal("a token of the old key is refused after rotation")
	}
	p2 := h.passwordGrant("abe", pw)
	if h.bearer(p2.access, "GET", "/v1/me").StatusCode != 200 {
		t.Fatal("a token of the new key is refused")
	}

	// Emergency removal of the old key: out of the JWKS and refused at once.
	oldKID := jwtKID(t, p.access)
	if oldKID == jwtKID(t, p2.access) {
		t.Fatal("the new token is signed by the old key")
	}
	wantProblem(t, h.do(req{method: "DELETE", path: "/v1/admin/keys/nope", headers: map[string]string{"Authorization": "Bearer " + adminKey}}), 404, classNotFound)
	if r := h.do(req{method: "DELETE", path: "/v1/admin/keys/" + oldKID, headers: map[string]string{"Authorization": "Bearer " + adminKey}}); r.StatusCode != 204 {
		t.Fatalf("remove key: %d %s", r.StatusCode, r.body)
	}
	wantProblem(t, h.bearer(p.access, "GET", "/v1/me"), 401, classUnauthorized)
	if h.bearer(p2.access, "GET", "/v1/me").StatusCode != 200 {
		t.Fatal("removing the old key broke the new one")
	}
	for _, k := range jwks() {
		if k.(map[string]any)["kid"] == oldKID {
			t.Fatal("the removed key is still published")
		}
	}
}

func jwtKID(t *testing.T, raw string) string {
	t.Helper()
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h["kid"].(string)
}

func TestPasswordChangeEndsOtherFamilies(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("beth", pw)
	mine, other := h.passwordGrant("beth", pw), h.passwordGrant("beth", pw)
	sess := h.login("beth", pw)
	body := `{"current_password":"` + pw + `","new_password":"a brand new one"}`
	if r := h.do(req{method: "POST", path: "/v1/me/password", body: body, headers: map[string]string{"Authorization": "Bearer " + mine.access}}); r.StatusCode != 204 {
		t.Fatalf("change password by bearer: %d %s", r.StatusCode, r.body)
	}
	// The caller's own login stays; every other family and session ends.
	if h.bearer(mine.access, "GET", "/v1/me").StatusCode != 200 {
		t.Fatal("the caller's own access token was revoked")
	}
	if r := h.token(form("grant_type", "refresh_token", "refresh_token", mine.refresh), nil); r.StatusCode != 200 {
		t.Fatalf("the caller's own refresh token was revoked: %d", r.StatusCode)
	}
	wantProblem(t, h.bearer(other.access, "GET", "/v1/me"), 401, classUnauthorized)
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "refresh_token", other.refresh), nil), 400, "invalid_grant")
	wantProblem(t, h.as(sess, req{method: "GET", path: "/v1/me"}, false), 401, classUnauthorized)
}

func TestAdminByEveryCredential(t *testing.T) {
	h := newTokenHarness(t)
	adminID := h.signup("root", pw)
	if err := h.accounts.SetRoles(t.Context(), adminID, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	h.signup("carl", pw)
	p := h.passwordGrant("root", pw)
	if r := h.bearer(p.access, "GET", "/v1/admin/audit?limit=5"); r.StatusCode != 200 {
		t.Fatalf("admin by bearer: %d %s", r.StatusCode, r.body)
	}
	hy := h.token(form("grant_type", "password", "username", "root", "password", pw, "delivery", "cookie"), nil)
	ac := &http.Cookie{Name: "gh_access", Value: hy.cookie("gh_access").Value}
	if r := h.do(req{method: "GET", path: "/v1/admin/audit?limit=5", cookies: []*http.Cookie{ac}}); r.StatusCode != 200 {
		t.Fatalf("admin by hybrid cookie: %d %s", r.StatusCode, r.body)
	}
	// Unsafe admin requests by cookie need the CSRF token.
	wantProblem(t, h.do(req{method: "POST", path: "/v1/admin/keys/rotate", cookies: []*http.Cookie{ac}}), 403, classCSRF)
	csrfTok := hy.json(t)["csrf_token"].(string)
	if r := h.do(req{method: "POST", path: "/v1/admin/keys/rotate", cookies: []*http.Cookie{ac}, headers: map[string]string{"X-CSRF-Token": csrfTok}}); r.StatusCode != 200 {
		t.Fatalf("rotate by hybrid cookie: %d %s", r.StatusCode, r.body)
	}
	// A non-admin token is refused.
	q := h.passwordGrant("carl", pw)
	wantProblem(t, h.bearer(q.access, "GET", "/v1/admin/audit"), 403, classForbidden)
}

func TestFamiliesDeviceList(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("dora", pw)
	h.signup("eve", pw)
	a, b := h.passwordGrant("dora", pw), h.passwordGrant("dora", pw)
	other := h.passwordGrant("eve", pw)
	r := h.bearer(a.access, "GET", "/v1/token/families")
	fams := r.json(t)["families"].([]any)
	if r.StatusCode != 200 || len(fams) != 2 {
		t.Fatalf("families: %d %s", r.StatusCode, r.body)
	}
	var current, otherID string
	for _, f := range fams {
		m := f.(map[string]any)
		if m["current"] == true {
			current = m["id"].(string)
		} else {
			otherID = m["id"].(string)
		}
		if m["delivery"] != "body" || m["expires_at"] == nil {
			t.Fatalf("family view %v", m)
		}
	}
	if current == "" || otherID == "" {
		t.Fatalf("current not marked: %s", r.body)
	}
	// Someone else's family is 404 and untouched.
	eveFams := h.bearer(other.access, "GET", "/v1/token/families").json(t)["families"].([]any)
	eveID := eveFams[0].(map[string]any)["id"].(string)
	wantProblem(t, h.bearer(a.access, "DELETE", "/v1/token/families/"+eveID), 404, classNotFound)
	if h.bearer(other.access, "GET", "/v1/me").StatusCode != 200 {
		t.Fatal("another user's login was affected")
	}
	// Ending the other login: its tokens are refused at once.
	if r := h.bearer(a.access, "DELETE", "/v1/token/families/"+otherID); r.StatusCode != 204 {
		t.Fatalf("revoke family: %d %s", r.StatusCode, r.body)
	}
	wantProblem(t, h.bearer(b.access, "GET", "/v1/me"), 401, classUnauthorized)
	wantOAuthError(t, h.token(form("grant_type", "refresh_token", "refresh_token", b.refresh), nil), 400, "invalid_grant")
	if h.bearer(a.access, "GET", "/v1/me").StatusCode != 200 {
		t.Fatal("the caller's own login ended")
	}
	// A session user sees the token logins too (CSRF needed to end one).
	sess := h.login("dora", pw)
	if n := len(h.as(sess, req{method: "GET", path: "/v1/token/families"}, false).json(t)["families"].([]any)); n != 1 {
		t.Fatalf("session user sees %d families, want 1", n)
	}
	wantProblem(t, h.as(sess, req{method: "DELETE", path: "/v1/token/families/" + current}, false), 403, classCSRF)
}
