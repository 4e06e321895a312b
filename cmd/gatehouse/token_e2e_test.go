package main

// End-to-end tests of token and hybrid mode: the real gatehouse binary,
// driven over real HTTP (the password and refresh grants, reuse detection,
// RFC 7009 revocation, RFC 7662 introspection, hybrid cookies and their
// CSRF, forward-auth, forced logout, key rotation by the API and by the CLI,
// discovery). See e2e_helpers_test.go for the process helpers.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokServiceKey is the introspection credential of the servers started by
// these tests; it differs from e2eAdminKey, as the configuration requires.
const tokServiceKey = "e2e-service-key-abcdef0123456789-abcdef01"

// tokForwardAudience is the audience of X-Gatehouse-Token.
const tokForwardAudience = "upstream"

// tokStart starts a token-mode server: admin key, service key and the
// forward token, plus extra flags.
func tokStart(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	args := []string{"--admin-key", e2eAdminKey, "--service-key", tokServiceKey, "--forward-token-audience", tokForwardAudience}
	return startServer(t, dataDir, append(args, extra...)...)
}

// tokForm encodes key/value pairs as a form body.
func tokForm(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

// tokFormCall is a form POST to path.
func tokFormCall(path, body string, headers map[string]string) call {
	return call{method: "POST", path: path, body: body, contentType: "application/x-www-form-urlencoded", headers: headers}
}

// tokPair is the body of a successful grant.
type tokPair struct{ access, refresh string }

// tokPairFrom checks r is a successful body-delivery grant and returns its
// pair.
func tokPairFrom(t *testing.T, what string, r result) tokPair {
	t.Helper()
	wantStatus(t, what, r, http.StatusOK)
	m := r.json(t)
	access, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	if access == "" || rt == "" {
		t.Fatalf("%s: body lacks access_token or refresh_token: %s", what, r.body)
	}
	if m["token_type"] != "Bearer" {
		t.Fatalf("%s: token_type %v, want Bearer", what, m["token_type"])
	}
	if e, _ := m["expires_in"].(float64); e != 600 {
		t.Fatalf("%s: expires_in %v, want 600", what, m["expires_in"])
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("%s: Cache-Control %q, want no-store", what, cc)
	}
	return tokPair{access: access, refresh: rt}
}

// tokPassword runs the password grant (body delivery) and fails the test
// unless it succeeds.
func (s *server) tokPassword(username, password string) tokPair {
	s.t.Helper()
	r := s.do(tokFormCall("/v1/token", tokForm("grant_type", "password", "username", username, "password", password), nil))
	return tokPairFrom(s.t, "password grant for "+username, r)
}

// tokRefresh presents rt to the refresh_token grant (body delivery).
func (s *server) tokRefresh(rt string) result {
	s.t.Helper()
	return s.do(tokFormCall("/v1/token", tokForm("grant_type", "refresh_token", "refresh_token", rt), nil))
}

// tokBearer sends a request with an access token in the Authorization
// header.
func (s *server) tokBearer(access, method, path string) result {
	s.t.Helper()
	return s.do(call{method: method, path: path, headers: map[string]string{"Authorization": "Bearer " + access}})
}

// tokIntrospect asks the introspection endpoint about tok, presenting key
// (none when empty).
func (s *server) tokIntrospect(tok, key string) result {
	s.t.Helper()
	h := map[string]string{}
	if key != "" {
		h["Authorization"] = "Bearer " + key
	}
	return s.do(tokFormCall("/v1/token/introspect", tokForm("token", tok), h))
}

// tokRevoke revokes tok (RFC 7009) and wants 200.
func (s *server) tokRevoke(what, tok, hint string) {
	s.t.Helper()
	kv := []string{"token", tok}
	if hint != "" {
		kv = append(kv, "token_type_hint", hint)
	}
	wantStatus(s.t, what, s.do(tokFormCall("/v1/token/revoke", tokForm(kv...), nil)), http.StatusOK)
}

// tokWantOAuthError fails the test unless r is an RFC 6749 §5.2 error with
// the status and error code wanted.
func tokWantOAuthError(t *testing.T, what string, r result, status int, code string) {
	t.Helper()
	wantStatus(t, what, r, status)
	var m map[string]string
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: body is not an OAuth error: %v\n%s", what, err, r.body)
	}
	if m["error"] != code || m["error_description"] == "" {
		t.Fatalf("%s: body %s, want error %q with a description", what, r.body, code)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("%s: Cache-Control %q, want no-store", what, cc)
	}
}

// tokWantInvalidToken fails the test unless r refuses a bad or revoked
// access token: 401 with Bearer error="invalid_token".
func tokWantInvalidToken(t *testing.T, what string, r result) {
	t.Helper()
	wantProblem(t, what, r, http.StatusUnauthorized, "unauthorized")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("%s: WWW-Authenticate %q, want Bearer error=\"invalid_token\"", what, got)
	}
}

// tokWantInactive fails the test unless r is exactly {"active":false}.
func tokWantInactive(t *testing.T, what string, r result) {
	t.Helper()
	wantStatus(t, what, r, http.StatusOK)
	if got := strings.TrimSpace(string(r.body)); got != `{"active":false}` {
		t.Fatalf("%s: introspection %s, want exactly {\"active\":false}", what, got)
	}
}

// tokJWTPart decodes segment i (0 header, 1 payload) of a compact JWT.
func tokJWTPart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		t.Fatalf("%q is not a compact JWS (%d segments)", raw, len(segs))
	}
	b, err := base64.RawURLEncoding.DecodeString(segs[i])
	if err != nil {
		t.Fatalf("JWT segment %d is not base64url: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT segment %d is not a JSON object: %v", i, err)
	}
	return m
}

func tokClaims(t *testing.T, raw string) map[string]any { t.Helper(); return tokJWTPart(t, raw, 1) }

func tokKID(t *testing.T, raw string) string {
	t.Helper()
	kid, _ := tokJWTPart(t, raw, 0)["kid"].(string)
	if kid == "" {
		t.Fatalf("JWT header without kid: %v", tokJWTPart(t, raw, 0))
	}
	return kid
}

// tokAudHas reports whether an aud claim (a string or an array of strings)
// contains want.
func tokAudHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return slices.Contains(a, any(want))
	}
	return false
}

// tokFlip returns s with its i-th character (ASCII) replaced by another
// base64url character.
func tokFlip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// tokSetCookie is one Set-Cookie line of a response, raw and parsed.
type tokSetCookie struct {
	raw    string
	cookie *http.Cookie
}

// tokSetCookies parses every Set-Cookie line of r by cookie name, failing
// on a malformed or repeated one.
func tokSetCookies(t *testing.T, r result) map[string]tokSetCookie {
	t.Helper()
	out := map[string]tokSetCookie{}
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("malformed Set-Cookie %q: %v", line, err)
		}
		if _, dup := out[c.Name]; dup {
			t.Fatalf("cookie %s set twice: %v", c.Name, r.header.Values("Set-Cookie"))
		}
		out[c.Name] = tokSetCookie{raw: line, cookie: c}
	}
	return out
}

// tokHybrid is a hybrid-mode login: the two cookies and the CSRF token.
type tokHybrid struct {
	access, refresh string
	csrf            string
}

// tokHybridFrom reads a successful cookie-delivery grant.
func tokHybridFrom(t *testing.T, what string, r result) tokHybrid {
	t.Helper()
	wantStatus(t, what, r, http.StatusOK)
	cs := tokSetCookies(t, r)
	a, okA := cs["gh_access"]
	rf, okR := cs["gh_refresh"]
	if !okA || !okR || a.cookie.Value == "" || rf.cookie.Value == "" {
		t.Fatalf("%s: want gh_access and gh_refresh cookies, got %v", what, r.header.Values("Set-Cookie"))
	}
	csrf, _ := r.json(t)["csrf_token"].(string)
	if csrf == "" {
		t.Fatalf("%s: body without csrf_token: %s", what, r.body)
	}
	return tokHybrid{access: a.cookie.Value, refresh: rf.cookie.Value, csrf: csrf}
}

// tokHybridLogin runs the password grant with delivery=cookie.
func (s *server) tokHybridLogin(username, password string) tokHybrid {
	s.t.Helper()
	r := s.do(tokFormCall("/v1/token", tokForm("grant_type", "password", "username", username, "password", password, "delivery", "cookie"), nil))
	return tokHybridFrom(s.t, "hybrid login of "+username, r)
}

// tokWithHeaders returns a copy of h with kv added.
func tokWithHeaders(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// tokAudit returns the audit events of type typ (admin key).
func (s *server) tokAudit(typ string) []map[string]any {
	s.t.Helper()
	r := s.do(adminCall(call{method: "GET", path: "/v1/admin/audit?type=" + url.QueryEscape(typ)}))
	wantStatus(s.t, "audit "+typ, r, http.StatusOK)
	var body struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		s.t.Fatalf("audit body: %v\n%s", err, r.body)
	}
	return body.Events
}

// tokJWKS returns the kids of the published keys, checking that each is a
// public signing key.
func (s *server) tokJWKS() []string {
	s.t.Helper()
	r := s.do(call{method: "GET", path: "/.well-known/jwks.json"})
	wantStatus(s.t, "jwks", r, http.StatusOK)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		s.t.Fatalf("jwks body: %v\n%s", err, r.body)
	}
	var kids []string
	for _, k := range doc.Keys {
		kid, _ := k["kid"].(string)
		if kid == "" || k["use"] != "sig" || k["alg"] == nil {
			s.t.Fatalf("JWKS key without kid, alg or use \"sig\": %v", k)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				s.t.Fatalf("JWKS key %s publishes the private member %q", kid, private)
			}
		}
		kids = append(kids, kid)
	}
	return kids
}

// TestE2ETokenPasswordGrant: the password grant answers a pair usable as a
// Bearer, and its failures are identical whether the user exists or not.
func TestE2ETokenPasswordGrant(t *testing.T) {
	s := tokStart(t, t.TempDir())
	uid := s.signup("Alice", e2ePassword)

	p := s.tokPassword("ALICE", e2ePassword)
	if p.access == p.refresh {
		t.Fatal("the access token and the refresh token are the same")
	}
	if got := tokJWTPart(t, p.access, 0)["typ"]; got != "at+jwt" {
		t.Fatalf("access token typ %v, want at+jwt", got)
	}
	if sub := tokClaims(t, p.access)["sub"]; sub != uid {
		t.Fatalf("access token sub %v, want %s", sub, uid)
	}
	me := s.tokBearer(p.access, "GET", "/v1/me")
	wantStatus(t, "me with the bearer", me, http.StatusOK)
	m := me.json(t)
	if auth, _ := m["auth"].(map[string]any); m["id"] != uid || m["username"] != "alice" || auth["mode"] != "token" {
		t.Fatalf("me with the bearer: %s", me.body)
	}

	wrong := s.do(tokFormCall("/v1/token", tokForm("grant_type", "password", "username", "alice", "password", "not the password"), nil))
	unknown := s.do(tokFormCall("/v1/token", tokForm("grant_type", "password", "username", "nobody", "password", "not the password"), nil))
	tokWantOAuthError(t, "wrong password", wrong, http.StatusBadRequest, "invalid_grant")
	tokWantOAuthError(t, "unknown user", unknown, http.StatusBadRequest, "invalid_grant")
	if string(wrong.body) != string(unknown.body) {
		t.Fatalf("the failures differ:\nwrong password: %s\nunknown user:   %s", wrong.body, unknown.body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate", "Retry-After"} {
		if wrong.header.Get(h) != unknown.header.Get(h) {
			t.Fatalf("header %s differs: %q vs %q", h, wrong.header.Get(h), unknown.header.Get(h))
		}
	}
	if wrong.cookie("gh_access") != nil || wrong.cookie("gh_refresh") != nil {
		t.Fatal("a failed grant set a cookie")
	}
}

// TestE2ETokenRefreshReuse: rotation, then the rotated token presented
// again with the grace period off is reuse: the family and its access
// tokens die, and a high-severity event is audited.
func TestE2ETokenRefreshReuse(t *testing.T) {
	s := tokStart(t, t.TempDir(), "--refresh-grace", "0s")
	uid := s.signup("bob", e2ePassword)
	p := s.tokPassword("bob", e2ePassword)
	sid, _ := tokClaims(t, p.access)["sid"].(string)
	if sid == "" {
		t.Fatalf("access token without sid: %v", tokClaims(t, p.access))
	}

	p2 := tokPairFrom(t, "rotation", s.tokRefresh(p.refresh))
	if p2.refresh == p.refresh || p2.access == p.access {
		t.Fatal("the refresh did not rotate")
	}
	if got := tokClaims(t, p2.access)["sid"]; got != sid {
		t.Fatalf("the rotated pair is of family %v, want %s", got, sid)
	}
	wantStatus(t, "me with the rotated pair", s.tokBearer(p2.access, "GET", "/v1/me"), http.StatusOK)

	// A control: another login of the same user is a different family and
	// must survive the reuse.
	other := s.tokPassword("bob", e2ePassword)

	if n := len(s.tokAudit("token.reuse_detected")); n != 0 {
		t.Fatalf("%d reuse events before any reuse", n)
	}
	tokWantOAuthError(t, "reuse of the rotated token", s.tokRefresh(p.refresh), http.StatusBadRequest, "invalid_grant")
	tokWantOAuthError(t, "the newest token of the family after the reuse", s.tokRefresh(p2.refresh), http.StatusBadRequest, "invalid_grant")
	for name, a := range map[string]string{"first": p.access, "rotated": p2.access} {
		tokWantInvalidToken(t, "the "+name+" access token after the reuse", s.tokBearer(a, "GET", "/v1/me"))
	}
	wantStatus(t, "another family's access token after the reuse", s.tokBearer(other.access, "GET", "/v1/me"), http.StatusOK)
	tokPairFrom(t, "another family's refresh after the reuse", s.tokRefresh(other.refresh))

	ev := s.tokAudit("token.reuse_detected")
	if len(ev) != 1 {
		t.Fatalf("%d reuse events, want 1: %v", len(ev), ev)
	}
	if ev[0]["severity"] != "high" || ev[0]["user_id"] != uid || ev[0]["session_id"] != sid {
		t.Fatalf("reuse event %v, want severity high, user %s, family %s", ev[0], uid, sid)
	}
}

// TestE2ETokenParallelRefresh: 20 tabs refresh one token at once within the
// grace period: every one gets a working pair, and every new refresh token
// rotates once more.
func TestE2ETokenParallelRefresh(t *testing.T) {
	s := tokStart(t, t.TempDir())
	s.signup("carol", e2ePassword)
	p := s.tokPassword("carol", e2ePassword)
	sid := tokClaims(t, p.access)["sid"]

	const tabs = 20
	type outcome struct {
		r   result
		err error
	}
	out := make([]outcome, tabs)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := s.try(ctx, tokFormCall("/v1/token", tokForm("grant_type", "refresh_token", "refresh_token", p.refresh), nil))
			out[i] = outcome{r, err}
		}()
	}
	close(start)
	wg.Wait()

	seen := map[string]bool{}
	pairs := make([]tokPair, 0, tabs)
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("refresh %d: %v", i, o.err)
		}
		np := tokPairFrom(t, fmt.Sprintf("parallel refresh %d", i), o.r)
		if seen[np.refresh] || np.refresh == p.refresh {
			t.Fatalf("parallel refresh %d got a refresh token already handed out", i)
		}
		seen[np.refresh] = true
		if got := tokClaims(t, np.access)["sid"]; got != sid {
			t.Fatalf("parallel refresh %d is of family %v, want %v", i, got, sid)
		}
		pairs = append(pairs, np)
	}
	for i, np := range pairs {
		wantStatus(t, fmt.Sprintf("me with the access token of refresh %d", i), s.tokBearer(np.access, "GET", "/v1/me"), http.StatusOK)
	}
	for i, np := range pairs {
		tokPairFrom(t, fmt.Sprintf("second rotation of refresh %d", i), s.tokRefresh(np.refresh))
	}
	if n := len(s.tokAudit("token.reuse_detected")); n != 0 {
		t.Fatalf("%d reuse events for refreshes within the grace period", n)
	}
}

// TestE2ETokenRevokeIntrospect: RFC 7009 revocation of access and refresh
// tokens, and RFC 7662 introspection behind the service key.
func TestE2ETokenRevokeIntrospect(t *testing.T) {
	s := tokStart(t, t.TempDir())
	uid := s.signup("dave", e2ePassword)
	p := s.tokPassword("dave", e2ePassword)
	claims := tokClaims(t, p.access)

	t.Run("introspection needs the service key", func(t *testing.T) {
		cases := []struct{ name, key string }{
			{"no credential", ""},
			{"admin key", e2eAdminKey},
			{"wrong key", strings.Repeat("x", len(tokServiceKey))},
			{"the access token itself", p.access},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := s.tokIntrospect(p.access, tc.key)
				tokWantOAuthError(t, tc.name, r, http.StatusUnauthorized, "invalid_client")
				if strings.Contains(string(r.body), `"active"`) {
					t.Fatalf("a refused introspection reveals the token's state: %s", r.body)
				}
			})
		}
	})

	r := s.tokIntrospect(p.access, tokServiceKey)
	wantStatus(t, "introspection", r, http.StatusOK)
	m := r.json(t)
	if m["active"] != true || m["token_type"] != "Bearer" || m["sub"] != uid || m["iss"] != s.url ||
		!tokAudHas(m["aud"], s.url) || m["jti"] != claims["jti"] || m["jti"] == "" {
		t.Fatalf("introspection of a live token: %s (token claims %v)", r.body, claims)
	}
	exp, _ := m["exp"].(float64)
	iat, _ := m["iat"].(float64)
	if exp != claims["exp"] || iat != claims["iat"] || exp-iat != 600 {
		t.Fatalf("introspection exp %v iat %v; token exp %v iat %v; want a 600 s lifetime", m["exp"], m["iat"], claims["exp"], claims["iat"])
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("introspection Cache-Control %q, want no-store", cc)
	}
	for name, tok := range map[string]string{
		"garbage":           "garbage",
		"a refresh token":   p.refresh,
		"a tampered token":  tokFlip(p.access, len(p.access)-10),
		"three empty parts": "..",
	} {
		tokWantInactive(t, "introspection of "+name, s.tokIntrospect(tok, tokServiceKey))
	}

	// An access token is denylisted at once; its family lives on.
	s.tokRevoke("revoke the access token", p.access, "access_token")
	tokWantInvalidToken(t, "me with the revoked access token", s.tokBearer(p.access, "GET", "/v1/me"))
	tokWantInactive(t, "introspection of the revoked access token", s.tokIntrospect(p.access, tokServiceKey))
	p2 := tokPairFrom(t, "refresh after revoking the access token", s.tokRefresh(p.refresh))
	wantStatus(t, "me with the family's new access token", s.tokBearer(p2.access, "GET", "/v1/me"), http.StatusOK)

	// A refresh token's revocation ends the family and its access tokens.
	s.tokRevoke("revoke the refresh token", p2.refresh, "refresh_token")
	tokWantInvalidToken(t, "me with the revoked family's access token", s.tokBearer(p2.access, "GET", "/v1/me"))
	tokWantInactive(t, "introspection of the revoked family's access token", s.tokIntrospect(p2.access, tokServiceKey))
	tokWantOAuthError(t, "refresh of the revoked family", s.tokRefresh(p2.refresh), http.StatusBadRequest, "invalid_grant")

	// Unknown tokens: 200 all the same (RFC 7009 §2.2), with any hint.
	for _, tc := range []struct{ name, tok, hint string }{
		{"opaque garbage", "unknown", ""},
		{"refresh-shaped", strings.Repeat("A", 43), "refresh_token"},
		{"JWT-shaped", "a.b.c", "access_token"},
		{"unknown hint", "unknown", "id_token"},
		{"already revoked", p2.refresh, ""},
	} {
		s.tokRevoke("revoke "+tc.name, tc.tok, tc.hint)
	}
}

// TestE2ETokenHybridCookies: delivery=cookie, the cookies' attributes, CSRF
// on unsafe requests and on the cookie refresh, and the hybrid logout.
func TestE2ETokenHybridCookies(t *testing.T) {
	s := tokStart(t, t.TempDir())
	uid := s.signup("erin", e2ePassword)

	r := s.do(tokFormCall("/v1/token", tokForm("grant_type", "password", "username", "erin", "password", e2ePassword, "delivery", "cookie"), nil))
	wantStatus(t, "hybrid login", r, http.StatusOK)
	body := r.json(t)
	for _, k := range []string{"access_token", "refresh_token"} {
		if _, ok := body[k]; ok {
			t.Fatalf("the hybrid body carries %s: %s", k, r.body)
		}
	}
	if body["expires_in"] != float64(600) {
		t.Fatalf("hybrid body expires_in %v, want 600", body["expires_in"])
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("hybrid login Cache-Control %q, want no-store", cc)
	}
	cs := tokSetCookies(t, r)
	if len(cs) != 2 {
		t.Fatalf("hybrid login set %d cookies, want gh_access and gh_refresh: %v", len(cs), r.header.Values("Set-Cookie"))
	}
	want := map[string]struct {
		path     string
		sameSite http.SameSite
	}{
		"gh_access":  {"/", http.SameSiteLaxMode},
		"gh_refresh": {"/v1/token", http.SameSiteStrictMode},
	}
	for name, w := range want {
		c, ok := cs[name]
		if !ok {
			t.Fatalf("no %s cookie: %v", name, r.header.Values("Set-Cookie"))
		}
		if c.cookie.Path != w.path || !c.cookie.HttpOnly || c.cookie.SameSite != w.sameSite || c.cookie.Domain != "" || c.cookie.Secure {
			t.Fatalf("%s: %q; want Path=%s, HttpOnly, SameSite %v, no Domain, no Secure in --dev", name, c.raw, w.path, w.sameSite)
		}
		if c.cookie.MaxAge <= 0 {
			t.Fatalf("%s: %q; want a positive Max-Age", name, c.raw)
		}
	}
	if n := len(cs["gh_access"].raw); n >= 4096 {
		t.Fatalf("the access cookie is %d bytes, want < 4096", n)
	}
	h := tokHybridFrom(t, "hybrid login", r)
	if tokClaims(t, h.access)["sub"] != uid {
		t.Fatalf("the access cookie is not a token of %s", uid)
	}
	access := &http.Cookie{Name: "gh_access", Value: h.access}
	refresh := &http.Cookie{Name: "gh_refresh", Value: h.refresh}

	me := s.do(call{method: "GET", path: "/v1/me", cookie: access})
	wantStatus(t, "me with the access cookie", me, http.StatusOK)
	if auth, _ := me.json(t)["auth"].(map[string]any); auth["mode"] != "cookie-token" || me.json(t)["id"] != uid {
		t.Fatalf("me with the access cookie: %s", me.body)
	}

	// An unsafe request authenticated by the cookie needs the CSRF token;
	// with it, the request reaches the handler (which refuses the wrong
	// current password: 403 forbidden, not csrf).
	pwBody := `{"current_password":"not the password","new_password":"another good password"}`
	wantProblem(t, "password change without X-CSRF-Token",
		s.do(call{method: "POST", path: "/v1/me/password", body: pwBody, cookie: access}), http.StatusForbidden, "csrf")
	wantProblem(t, "password change with a wrong X-CSRF-Token",
		s.do(call{method: "POST", path: "/v1/me/password", body: pwBody, cookie: access, headers: map[string]string{"X-CSRF-Token": tokFlip(h.csrf, 3)}}), http.StatusForbidden, "csrf")
	wantProblem(t, "password change with X-CSRF-Token",
		s.do(call{method: "POST", path: "/v1/me/password", body: pwBody, cookie: access, headers: map[string]string{"X-CSRF-Token": h.csrf}}), http.StatusForbidden, "forbidden")

	// Cookie refresh: CSRF required; with it, both cookies anew.
	refreshCall := func(headers map[string]string) call {
		c := tokFormCall("/v1/token", tokForm("grant_type", "refresh_token", "delivery", "cookie"), headers)
		c.cookie = refresh
		return c
	}
	noCSRF := s.do(refreshCall(nil))
	tokWantOAuthError(t, "cookie refresh without X-CSRF-Token", noCSRF, http.StatusForbidden, "invalid_request")
	if len(noCSRF.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("a refused cookie refresh set cookies: %v", noCSRF.header.Values("Set-Cookie"))
	}
	rr := s.do(refreshCall(map[string]string{"X-CSRF-Token": h.csrf}))
	h2 := tokHybridFrom(t, "cookie refresh", rr)
	if h2.access == h.access || h2.refresh == h.refresh {
		t.Fatal("the cookie refresh did not rotate the cookies")
	}
	access2 := &http.Cookie{Name: "gh_access", Value: h2.access}
	wantStatus(t, "me with the refreshed access cookie", s.do(call{method: "GET", path: "/v1/me", cookie: access2}), http.StatusOK)

	// Hybrid logout: revoke with the refresh cookie and the CSRF token, no
	// token parameter.
	logout := func(headers map[string]string) result {
		return s.do(call{method: "POST", path: "/v1/token/revoke",
			headers: tokWithHeaders(headers, "Content-Type", "application/x-www-form-urlencoded", "Cookie", "gh_refresh="+h2.refresh)})
	}
	tokWantOAuthError(t, "hybrid logout without X-CSRF-Token", logout(nil), http.StatusForbidden, "invalid_request")
	wantStatus(t, "me after the refused logout", s.do(call{method: "GET", path: "/v1/me", cookie: access2}), http.StatusOK)
	out := logout(map[string]string{"X-CSRF-Token": h2.csrf})
	wantStatus(t, "hybrid logout", out, http.StatusOK)
	cleared := tokSetCookies(t, out)
	for _, name := range []string{"gh_access", "gh_refresh"} {
		c, ok := cleared[name]
		if !ok || c.cookie.Value != "" || c.cookie.MaxAge >= 0 {
			t.Fatalf("hybrid logout does not clear %s: %v", name, out.header.Values("Set-Cookie"))
		}
	}
	if cleared["gh_refresh"].cookie.Path != "/v1/token" || cleared["gh_access"].cookie.Path != "/" {
		t.Fatalf("the clearing cookies have other paths than the cookies: %v", out.header.Values("Set-Cookie"))
	}
	tokWantInvalidToken(t, "me with the access cookie after logout", s.do(call{method: "GET", path: "/v1/me", cookie: access2}))
	tokWantInvalidToken(t, "me with the first access cookie after logout", s.do(call{method: "GET", path: "/v1/me", cookie: access}))
	tokWantOAuthError(t, "cookie refresh after logout",
		s.do(call{method: "POST", path: "/v1/token", body: tokForm("grant_type", "refresh_token", "delivery", "cookie"),
			contentType: "application/x-www-form-urlencoded", cookie: &http.Cookie{Name: "gh_refresh", Value: h2.refresh},
			headers: map[string]string{"X-CSRF-Token": h2.csrf}}),
		http.StatusBadRequest, "invalid_grant")
}

// TestE2ETokenForwardAuth: /v1/verify with each kind of credential, GET and
// HEAD, its identity headers and the minted upstream token.
func TestE2ETokenForwardAuth(t *testing.T) {
	s := tokStart(t, t.TempDir())
	uid := s.signup("frank", e2ePassword)
	sess := s.login("frank", e2ePassword)
	p := s.tokPassword("frank", e2ePassword)
	hy := s.tokHybridLogin("frank", e2ePassword)

	spoof := map[string]string{
		"X-Gatehouse-User-Id":   "spoofed-id",
		"X-Gatehouse-Username":  "spoofed-name",
		"X-Gatehouse-Auth-Mode": "spoofed-mode",
		"X-Gatehouse-Token":     "spoofed.token.value",
	}
	identity := []string{"X-Gatehouse-User-Id", "X-Gatehouse-Username", "X-Gatehouse-Auth-Mode", "X-Gatehouse-Token"}
	type cred struct {
		cookie  *http.Cookie
		headers map[string]string
	}
	creds := map[string]cred{
		"session":      {cookie: sess.cookie},
		"token":        {headers: map[string]string{"Authorization": "Bearer " + p.access}},
		"cookie-token": {cookie: &http.Cookie{Name: "gh_access", Value: hy.access}},
	}
	cases := []struct {
		name       string
		method     string
		cred       string // key of creds, "" for none
		headers    map[string]string
		wantStatus int
	}{
		{"session cookie, GET", "GET", "session", spoof, 200},
		{"session cookie, HEAD", "HEAD", "session", spoof, 200},
		{"bearer, GET", "GET", "token", spoof, 200},
		{"bearer, HEAD", "HEAD", "token", spoof, 200},
		{"hybrid access cookie, GET", "GET", "cookie-token", spoof, 200},
		{"hybrid access cookie, HEAD", "HEAD", "cookie-token", spoof, 200},
		{"session cookie, unsafe original method without CSRF", "GET", "session", map[string]string{"X-Forwarded-Method": "POST"}, 403},
		{"session cookie, unsafe original method with CSRF", "GET", "session", map[string]string{"X-Forwarded-Method": "POST", "X-CSRF-Token": sess.csrf}, 200},
		{"hybrid cookie, unsafe original method without CSRF", "GET", "cookie-token", map[string]string{"X-Forwarded-Method": "DELETE"}, 403},
		{"hybrid cookie, unsafe original method with CSRF", "GET", "cookie-token", map[string]string{"X-Forwarded-Method": "DELETE", "X-CSRF-Token": hy.csrf}, 200},
		{"bearer, unsafe original method needs no CSRF", "GET", "token", map[string]string{"X-Forwarded-Method": "POST"}, 200},
		{"no credential, GET", "GET", "", spoof, 401},
		{"no credential, HEAD", "HEAD", "", spoof, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := call{method: tc.method, path: "/v1/verify", headers: tc.headers}
			if tc.cred != "" {
				cr := creds[tc.cred]
				c.cookie = cr.cookie
				h := map[string]string{}
				for k, v := range tc.headers {
					h[k] = v
				}
				for k, v := range cr.headers {
					h[k] = v
				}
				c.headers = h
			}
			r := s.do(c)
			wantStatus(t, tc.name, r, tc.wantStatus)
			if tc.method == "HEAD" && len(r.body) != 0 {
				t.Fatalf("HEAD answered a body: %q", r.body)
			}
			if tc.wantStatus != http.StatusOK {
				for _, h := range identity {
					if v := r.header.Get(h); v != "" {
						t.Fatalf("refusal carries %s: %q", h, v)
					}
				}
				if tc.wantStatus == http.StatusUnauthorized {
					if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
						t.Fatalf("WWW-Authenticate %q, want exactly Bearer", got)
					}
				}
				return
			}
			if got := r.header.Values("X-Gatehouse-User-Id"); len(got) != 1 || got[0] != uid {
				t.Fatalf("X-Gatehouse-User-Id %q, want only %s", got, uid)
			}
			if got := r.header.Values("X-Gatehouse-Username"); len(got) != 1 || got[0] != "frank" {
				t.Fatalf("X-Gatehouse-Username %q, want only frank", got)
			}
			if got := r.header.Values("X-Gatehouse-Auth-Mode"); len(got) != 1 || got[0] != tc.cred {
				t.Fatalf("X-Gatehouse-Auth-Mode %q, want only %s", got, tc.cred)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control %q, want no-store", cc)
			}
			toks := r.header.Values("X-Gatehouse-Token")
			if len(toks) != 1 || toks[0] == "" || toks[0] == spoof["X-Gatehouse-Token"] {
				t.Fatalf("X-Gatehouse-Token %q, want one minted token", toks)
			}
			if typ := tokJWTPart(t, toks[0], 0)["typ"]; typ != "at+jwt" {
				t.Fatalf("upstream token typ %v", typ)
			}
			cl := tokClaims(t, toks[0])
			if !tokAudHas(cl["aud"], tokForwardAudience) || tokAudHas(cl["aud"], s.url) {
				t.Fatalf("upstream token aud %v, want only %q", cl["aud"], tokForwardAudience)
			}
			if cl["sub"] != uid || cl["iss"] != s.url {
				t.Fatalf("upstream token sub %v iss %v, want %s and %s", cl["sub"], cl["iss"], uid, s.url)
			}
			exp, _ := cl["exp"].(float64)
			iat, _ := cl["iat"].(float64)
			if exp <= iat || exp-iat > 600 {
				t.Fatalf("upstream token lifetime %v s, want positive and at most the access token's", exp-iat)
			}
			// The upstream token is for upstream: Gatehouse itself refuses it.
			tokWantInvalidToken(t, "me with the upstream token", s.tokBearer(toks[0], "GET", "/v1/me"))
		})
	}
}

// TestE2ETokenForcedLogout: the admin's forced logout ends the user's
// session, access tokens and refresh families at once, and nobody else's.
func TestE2ETokenForcedLogout(t *testing.T) {
	s := tokStart(t, t.TempDir())
	uid := s.signup("grace", e2ePassword)
	s.signup("heidi", e2ePassword)
	sess := s.login("grace", e2ePassword)
	p := s.tokPassword("grace", e2ePassword)
	hy := s.tokHybridLogin("grace", e2ePassword)
	otherSess := s.login("heidi", e2ePassword)
	other := s.tokPassword("heidi", e2ePassword)
	access := &http.Cookie{Name: "gh_access", Value: hy.access}

	// Before: everything works (so the refusals below mean something).
	wantStatus(t, "session before", s.as(sess, call{method: "GET", path: "/v1/me"}, false), http.StatusOK)
	wantStatus(t, "bearer before", s.tokBearer(p.access, "GET", "/v1/me"), http.StatusOK)
	wantStatus(t, "hybrid before", s.do(call{method: "GET", path: "/v1/me", cookie: access}), http.StatusOK)

	wantProblem(t, "forced logout without the admin key",
		s.do(call{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + p.access}}),
		http.StatusForbidden, "forbidden")
	wantStatus(t, "bearer after the refused forced logout", s.tokBearer(p.access, "GET", "/v1/me"), http.StatusOK)

	wantStatus(t, "forced logout", s.do(adminCall(call{method: "POST", path: "/v1/admin/users/" + uid + "/logout"})), http.StatusNoContent)

	wantProblem(t, "session after", s.as(sess, call{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, "unauthorized")
	tokWantInvalidToken(t, "bearer after", s.tokBearer(p.access, "GET", "/v1/me"))
	tokWantInvalidToken(t, "hybrid access cookie after", s.do(call{method: "GET", path: "/v1/me", cookie: access}))
	tokWantInactive(t, "introspection after", s.tokIntrospect(p.access, tokServiceKey))
	tokWantOAuthError(t, "refresh after", s.tokRefresh(p.refresh), http.StatusBadRequest, "invalid_grant")
	tokWantOAuthError(t, "hybrid cookie refresh after",
		s.do(call{method: "POST", path: "/v1/token", body: tokForm("grant_type", "refresh_token", "delivery", "cookie"),
			contentType: "application/x-www-form-urlencoded", cookie: &http.Cookie{Name: "gh_refresh", Value: hy.refresh},
			headers: map[string]string{"X-CSRF-Token": hy.csrf}}),
		http.StatusBadRequest, "invalid_grant")
	wantProblem(t, "verify with the session after", s.do(call{method: "GET", path: "/v1/verify", cookie: sess.cookie}), http.StatusUnauthorized, "unauthorized")

	// Another user is untouched.
	wantStatus(t, "other user's session", s.as(otherSess, call{method: "GET", path: "/v1/me"}, false), http.StatusOK)
	wantStatus(t, "other user's bearer", s.tokBearer(other.access, "GET", "/v1/me"), http.StatusOK)
	tokPairFrom(t, "other user's refresh", s.tokRefresh(other.refresh))

	ev := s.tokAudit("user.forced_logout")
	if len(ev) != 1 || ev[0]["user_id"] != uid {
		t.Fatalf("forced-logout events %v, want one for %s", ev, uid)
	}
}

// TestE2ETokenKeyRotation: rotation through the API with overlapping
// validity, rotation through the CLI picked up by the running server, and
// the emergency removal of a key.
func TestE2ETokenKeyRotation(t *testing.T) {
	dir := t.TempDir()
	s := tokStart(t, dir)
	s.signup("ivan", e2ePassword)
	a := s.tokPassword("ivan", e2ePassword)
	kidA := tokKID(t, a.access)
	if kids := s.tokJWKS(); !slices.Equal(kids, []string{kidA}) {
		t.Fatalf("JWKS before rotation %v, want [%s]", kids, kidA)
	}

	wantProblem(t, "rotate without the admin key", s.do(call{method: "POST", path: "/v1/admin/keys/rotate", headers: map[string]string{"Authorization": "Bearer " + a.access}}), http.StatusForbidden, "forbidden")
	if n := len(s.tokJWKS()); n != 1 {
		t.Fatalf("a refused rotation changed the JWKS: %d keys", n)
	}

	before := time.Now()
	rot := s.do(adminCall(call{method: "POST", path: "/v1/admin/keys/rotate"}))
	wantStatus(t, "rotate", rot, http.StatusOK)
	rm := rot.json(t)
	kidB, _ := rm["kid"].(string)
	sf, _ := rm["signs_from"].(string)
	signsFrom, err := time.Parse(time.RFC3339Nano, sf)
	if kidB == "" || kidB == kidA || err != nil {
		t.Fatalf("rotate: %s (signs_from: %v)", rot.body, err)
	}
	// --dev: no publish delay, the new key signs at once.
	if signsFrom.After(time.Now().Add(time.Second)) || signsFrom.Before(before.Add(-time.Minute)) {
		t.Fatalf("signs_from %s, want about now (%s) in --dev", signsFrom, before)
	}
	if kids := s.tokJWKS(); len(kids) != 2 || !slices.Contains(kids, kidA) || !slices.Contains(kids, kidB) {
		t.Fatalf("JWKS after rotation %v, want %s and %s", kids, kidA, kidB)
	}
	b := s.tokPassword("ivan", e2ePassword)
	if got := tokKID(t, b.access); got != kidB {
		t.Fatalf("a token after the rotation has kid %s, want %s", got, kidB)
	}
	wantStatus(t, "me with token A after rotation", s.tokBearer(a.access, "GET", "/v1/me"), http.StatusOK)
	wantStatus(t, "me with token B", s.tokBearer(b.access, "GET", "/v1/me"), http.StatusOK)

	// The CLI rotates on the same database while the server runs: the
	// server publishes the key at its next reload (every 10 s).
	data := []string{"--dev", "--data-dir", dir}
	cli := runCLI(t, "", nil, append([]string{"keys", "rotate"}, data...)...)
	f := strings.Fields(cli.stdout)
	if cli.code != 0 || len(f) < 3 || f[0] != "new" || f[1] != "key" {
		t.Fatalf("keys rotate: code %d, stdout %q, stderr %q", cli.code, cli.stdout, cli.stderr)
	}
	kidC := f[2]
	if kidC == kidA || kidC == kidB {
		t.Fatalf("the CLI's new key %s is not new", kidC)
	}
	rotated := time.Now()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		kids := s.tokJWKS()
		if len(kids) == 3 {
			if !slices.Contains(kids, kidA) || !slices.Contains(kids, kidB) || !slices.Contains(kids, kidC) {
				t.Fatalf("JWKS after the CLI rotation %v, want %s, %s and %s", kids, kidA, kidB, kidC)
			}
			t.Logf("the server published the CLI's key after %s", time.Since(rotated).Round(time.Millisecond))
			break
		}
		if len(kids) != 2 {
			t.Fatalf("JWKS while waiting for the CLI's key %v, want 2 then 3 keys", kids)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("the server did not publish the CLI's key %s within 15 s; JWKS %v", kidC, kids)
		case <-s.done:
			t.Fatalf("gatehouse exited (%v); stderr:\n%s", s.exitErr, s.stderr)
		}
	}
	list := runCLI(t, "", nil, append([]string{"keys", "list"}, data...)...)
	if list.code != 0 {
		t.Fatalf("keys list: code %d, stderr %q", list.code, list.stderr)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(list.stdout), "\n")[1:] {
		if fs := strings.Fields(line); len(fs) > 0 {
			listed = append(listed, fs[0])
		}
	}
	slices.Sort(listed)
	wantKids := []string{kidA, kidB, kidC}
	slices.Sort(wantKids)
	if !slices.Equal(listed, wantKids) {
		t.Fatalf("keys list shows %v, want %v:\n%s", listed, wantKids, list.stdout)
	}
	// After the reload the CLI's key signs (no publish delay in --dev).
	c := s.tokPassword("ivan", e2ePassword)
	if got := tokKID(t, c.access); got != kidC {
		t.Fatalf("a token after the CLI rotation has kid %s, want %s", got, kidC)
	}

	// Emergency removal of key A: refused at once, out of the JWKS.
	wantProblem(t, "remove an unknown key", s.do(adminCall(call{method: "DELETE", path: "/v1/admin/keys/no-such-kid"})), http.StatusNotFound, "not_found")
	wantStatus(t, "remove key A", s.do(adminCall(call{method: "DELETE", path: "/v1/admin/keys/" + kidA})), http.StatusNoContent)
	tokWantInvalidToken(t, "me with token A after its key's removal", s.tokBearer(a.access, "GET", "/v1/me"))
	tokWantInactive(t, "introspection of token A after its key's removal", s.tokIntrospect(a.access, tokServiceKey))
	wantStatus(t, "me with token B after A's removal", s.tokBearer(b.access, "GET", "/v1/me"), http.StatusOK)
	wantStatus(t, "me with token C after A's removal", s.tokBearer(c.access, "GET", "/v1/me"), http.StatusOK)
	if kids := s.tokJWKS(); slices.Contains(kids, kidA) || !slices.Contains(kids, kidB) || !slices.Contains(kids, kidC) {
		t.Fatalf("JWKS after removing %s: %v", kidA, kids)
	}
	if ev := s.tokAudit("key.removed"); len(ev) != 1 || ev[0]["severity"] != "high" {
		t.Fatalf("key.removed events %v, want one of high severity", ev)
	}
}

// TestE2ETokenDiscovery: the discovery document names the tokens' issuer
// and absolute endpoint URLs on the server.
func TestE2ETokenDiscovery(t *testing.T) {
	s := tokStart(t, t.TempDir())
	s.signup("judy", e2ePassword)
	p := s.tokPassword("judy", e2ePassword)
	iss, _ := tokClaims(t, p.access)["iss"].(string)
	if iss != s.url {
		t.Fatalf("token iss %q, want the dev issuer %s", iss, s.url)
	}

	r := s.do(call{method: "GET", path: "/.well-known/openid-configuration"})
	wantStatus(t, "discovery", r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("discovery Content-Type %q", ct)
	}
	d := r.json(t)
	for _, k := range []string{"issuer", "jwks_uri", "token_endpoint", "revocation_endpoint", "introspection_endpoint",
		"grant_types_supported", "response_types_supported", "subject_types_supported",
		"id_token_signing_alg_values_supported", "token_endpoint_auth_methods_supported"} {
		if _, ok := d[k]; !ok {
			t.Fatalf("discovery lacks %s: %s", k, r.body)
		}
	}
	if d["issuer"] != iss {
		t.Fatalf("discovery issuer %v, want the tokens' iss %s", d["issuer"], iss)
	}
	base, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	for member, path := range map[string]string{
		"jwks_uri":               "/.well-known/jwks.json",
		"token_endpoint":         "/v1/token",
		"revocation_endpoint":    "/v1/token/revoke",
		"introspection_endpoint": "/v1/token/introspect",
	} {
		raw, _ := d[member].(string)
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || u.Scheme != base.Scheme || u.Host != base.Host || u.Path != path {
			t.Fatalf("%s %q, want %s%s", member, raw, s.url, path)
		}
	}
	strs := func(member string) []string {
		arr, ok := d[member].([]any)
		if !ok {
			t.Fatalf("%s is not an array: %v", member, d[member])
		}
		var out []string
		for _, v := range arr {
			sv, ok := v.(string)
			if !ok {
				t.Fatalf("%s has a non-string member: %v", member, d[member])
			}
			out = append(out, sv)
		}
		return out
	}
	if g := strs("grant_types_supported"); !slices.Contains(g, "password") || !slices.Contains(g, "refresh_token") {
		t.Fatalf("grant_types_supported %v, want password and refresh_token", g)
	}
	if st := strs("subject_types_supported"); !slices.Equal(st, []string{"public"}) {
		t.Fatalf("subject_types_supported %v, want [public]", st)
	}
	alg, _ := tokJWTPart(t, p.access, 0)["alg"].(string)
	if algs := strs("id_token_signing_alg_values_supported"); !slices.Contains(algs, alg) {
		t.Fatalf("id_token_signing_alg_values_supported %v lacks the tokens' alg %s", algs, alg)
	}
	// The JWKS at jwks_uri publishes the key of the tokens.
	if kids := s.tokJWKS(); !slices.Contains(kids, tokKID(t, p.access)) {
		t.Fatalf("the JWKS %v lacks the tokens' kid %s", kids, tokKID(t, p.access))
	}
}
