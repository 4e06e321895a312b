// Package integration tests Gatehouse behind real gateways: nginx
// (auth_request) and Caddy (forward_auth) run with the configurations of
// docs/gateways.md in front of a demo upstream, and the documented Traefik
// and Envoy configurations are checked against a running Gatehouse.
//
// nginx and caddy are skipped when missing, except with CI=true.
package integration

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/testbin"
)

// forwardAudience is the audience of X-Gatehouse-Token in these tests.
const forwardAudience = "upstream"

// siteData fills the site templates of testdata/nginx and testdata/caddy.
type siteData struct {
	Listen    string // nginx: the listen directive's address
	Site      string // Caddy: the site address
	Gatehouse string // host:port of Gatehouse
	App       string // host:port of the application
	// ForwardToken: Gatehouse runs with --forward-token-audience (Caddy
	// copies X-Gatehouse-Token only then).
	ForwardToken bool
}

// gatewayKind is one real gateway under test.
type gatewayKind struct {
	name, tool string
	start      func(t *testing.T, bin string, gh *gatehouse, app *upstream) string
	// badRequest is what the client gets when Gatehouse answers 400 (two
	// credentials): nginx's auth_request turns any status other than 2xx,
	// 401 and 403 into 500; Caddy passes Gatehouse's answer through.
	badRequest int
	// down is the answer when Gatehouse cannot be reached.
	down int
	// problemBody: Gatehouse's refusals reach the client with their
	// problem+json body (Caddy); nginx answers with its own error page.
	problemBody bool
}

var gatewayKinds = []gatewayKind{
	{name: "nginx", tool: "nginx", start: startNginx, badRequest: http.StatusInternalServerError, down: http.StatusInternalServerError},
	{name: "caddy", tool: "caddy", start: startCaddy, badRequest: http.StatusBadRequest, down: http.StatusBadGateway, problemBody: true},
}

// startNginx runs nginx with testdata/nginx and returns its base URL.
func startNginx(t *testing.T, bin string, gh *gatehouse, app *upstream) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		listen := freeAddr(t)
		writeFile(t, filepath.Join(dir, "site.conf"), renderTemplate(t, "testdata/nginx/site.conf.tmpl",
			siteData{Listen: listen, Gatehouse: gh.addr, App: app.addr()}))
		writeFile(t, filepath.Join(dir, "nginx.conf"), renderTemplate(t, "testdata/nginx/nginx.conf.tmpl",
			struct{ Dir string }{dir}))
		errorLog := filepath.Join(dir, "error.log")
		p := startProc(t, "nginx", exec.Command(bin, "-e", errorLog, "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf")))
		p.logs = func() string {
			b, _ := os.ReadFile(errorLog)
			return "\nerror.log:\n" + string(b)
		}
		err := p.waitTCP(listen)
		if err == nil {
			return "http://" + listen
		}
		p.stop()
		if attempt < 3 && addrInUse(p.diagnostics()) {
			continue
		}
		t.Fatal(err)
	}
}

// startCaddy runs caddy with testdata/caddy and returns its base URL.
func startCaddy(t *testing.T, bin string, gh *gatehouse, app *upstream) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		listen := freeAddr(t)
		writeFile(t, filepath.Join(dir, "site.caddyfile"), renderTemplate(t, "testdata/caddy/site.caddyfile.tmpl",
			siteData{Site: "http://" + listen, Gatehouse: gh.addr, App: app.addr(), ForwardToken: gh.forwardToken}))
		writeFile(t, filepath.Join(dir, "Caddyfile"), renderTemplate(t, "testdata/caddy/Caddyfile.tmpl",
			struct{ Dir string }{dir}))
		cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(),
			"HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		p := startProc(t, "caddy", cmd)
		err := p.waitTCP(listen)
		if err == nil {
			return "http://" + listen
		}
		p.stop()
		if attempt < 3 && addrInUse(p.diagnostics()) {
			continue
		}
		t.Fatal(err)
	}
}

// credential kinds of the access table.
type credKind int

const (
	credNone credKind = iota
	credSession
	credBearer
	credHybrid // the hybrid-mode access cookie
	credSessionAndBearer
	credMalformedBearer
	credUnknownSession
)

// fixture is what a gateway's subtests share.
type fixture struct {
	c       *http.Client
	gh      *gatehouse
	app     *upstream
	base    string // the gateway
	kind    gatewayKind
	user    account
	session session
	hybrid  session
	token   string
}

// credentialed adds the credential of kind k (and the CSRF token when csrf
// is "valid" or "wrong") to rq.
func (f *fixture) credentialed(t *testing.T, rq request, k credKind, csrf string) request {
	if rq.header == nil {
		rq.header = http.Header{}
	}
	var token string
	switch k {
	case credSession, credSessionAndBearer:
		rq.cookies = append(rq.cookies, f.session.cookie)
		token = f.session.csrf
		if k == credSessionAndBearer {
			rq.bearer = f.token
		}
	case credBearer:
		rq.bearer = f.token
	case credHybrid:
		rq.cookies = append(rq.cookies, f.hybrid.cookie)
		token = f.hybrid.csrf
	case credMalformedBearer:
		rq.bearer = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
	case credUnknownSession:
		rq.cookies = append(rq.cookies, &http.Cookie{Name: "gh_session", Value: randomSecret(t)})
	}
	switch csrf {
	case "valid":
		rq.header.Set("X-CSRF-Token", token)
	case "wrong":
		rq.header.Set("X-CSRF-Token", randomSecret(t))
	}
	return rq
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// through sends rq through the gateway and checks that the upstream was
// reached exactly when the answer is 2xx; it returns the answer and, when
// reached, what the upstream received.
func (f *fixture) through(t *testing.T, rq request) (response, *echoed) {
	t.Helper()
	before := f.app.hits.Load()
	r := send(t, f.c, f.base, rq)
	hits := f.app.hits.Load() - before
	if r.status < 200 || r.status > 299 {
		if hits != 0 {
			t.Fatalf("%s %s answered %d, yet the upstream was called %d times", rq.method, rq.path, r.status, hits)
		}
		return r, nil
	}
	if hits != 1 {
		t.Fatalf("%s %s answered %d, and the upstream was called %d times, want 1", rq.method, rq.path, r.status, hits)
	}
	var e echoed
	r.json(t, &e)
	return r, &e
}

// wantIdentity checks that the upstream received exactly the identity
// headers of f.user in mode, one value each, and nothing else under an
// X-Gatehouse- or X_Gatehouse_ name.
func (f *fixture) wantIdentity(t *testing.T, e *echoed, mode string) {
	t.Helper()
	want := map[string]string{
		"X-Gatehouse-User-Id":   f.user.id,
		"X-Gatehouse-Username":  f.user.username,
		"X-Gatehouse-Auth-Mode": mode,
	}
	for name, vs := range e.Identity {
		if name == "X-Gatehouse-Token" {
			continue
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("the upstream received %s: %q; only Gatehouse's identity headers may reach it", name, vs)
			continue
		}
		if len(vs) != 1 || vs[0] != w {
			t.Errorf("the upstream received %s: %q, want exactly [%q]", name, vs, w)
		}
	}
	for name := range want {
		if _, ok := e.Identity[name]; !ok {
			t.Errorf("the upstream did not receive %s (received %v)", name, e.Identity)
		}
	}
	tok := e.Identity["X-Gatehouse-Token"]
	if len(tok) != 1 {
		t.Fatalf("the upstream received X-Gatehouse-Token %q, want exactly one", tok)
	}
	verifyForwardToken(t, f.c, f.gh, tok[0], f.user.id)
}

// verifyForwardToken checks raw as Gatehouse's forward token for sub: an
// at+jwt signed by a key of the JWKS, from the discovery's issuer, for
// forwardAudience, not expired.
func verifyForwardToken(t *testing.T, c *http.Client, gh *gatehouse, raw, sub string) {
	t.Helper()
	header, claims := jwtParts(t, raw)
	if header["typ"] != "at+jwt" || header["alg"] != "EdDSA" {
		t.Fatalf("forward token header %v, want typ at+jwt and alg EdDSA", header)
	}
	var jwks struct {
		Keys []struct {
			Kid, Kty, Crv, X, Alg string
		}
	}
	send(t, c, gh.url, request{method: "GET", path: "/.well-known/jwks.json"}).json(t, &jwks)
	var pub ed25519.PublicKey
	for _, k := range jwks.Keys {
		if k.Kid == header["kid"] && k.Kty == "OKP" && k.Crv == "Ed25519" && k.Alg == "EdDSA" {
			b, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || len(b) != ed25519.PublicKeySize {
				t.Fatalf("JWKS key %s: bad x", k.Kid)
			}
			pub = b
		}
	}
	if pub == nil {
		t.Fatalf("forward token kid %v is not an Ed25519 key of the JWKS", header["kid"])
	}
	i := strings.LastIndexByte(raw, '.')
	sig, err := base64.RawURLEncoding.DecodeString(raw[i+1:])
	if err != nil || !ed25519.Verify(pub, []byte(raw[:i]), sig) {
		t.Fatalf("forward token signature does not verify with the JWKS key %v", header["kid"])
	}
	var disc struct{ Issuer string }
	send(t, c, gh.url, request{method: "GET", path: "/.well-known/openid-configuration"}).json(t, &disc)
	if claims["iss"] != disc.Issuer || claims["sub"] != sub || !slices.Contains(audiences(claims), forwardAudience) {
		t.Fatalf("forward token claims %v, want iss %q, sub %q, aud %q", claims, disc.Issuer, sub, forwardAudience)
	}
	exp, _ := claims["exp"].(float64)
	if time.Unix(int64(exp), 0).Before(time.Now()) {
		t.Fatalf("forward token expired at %v", exp)
	}
}

// TestGateways runs nginx and Caddy with the configurations of
// docs/gateways.md between a client and a demo upstream, with Gatehouse
// as the forward-auth server.
func TestGateways(t *testing.T) {
	gh := startGatehouse(t, "--forward-token-audience", forwardAudience)
	for _, kind := range gatewayKinds {
		t.Run(kind.name, func(t *testing.T) {
			bin := testbin.RequireTool(t, kind.tool)
			t.Parallel()
			app := newUpstream(t)
			f := &fixture{c: newClient(t), gh: gh, app: app, kind: kind}
			f.base = kind.start(t, bin, gh, app)
			// Everything about the user goes through the gateway too.
			f.user = signup(t, f.c, f.base, "alice-"+kind.name)
			f.session = login(t, f.c, f.base, f.user, nil)
			f.token = passwordGrant(t, f.c, f.base, f.user)
			f.hybrid = hybridLogin(t, f.c, f.base, f.user)

			t.Run("access", f.testAccess)
			t.Run("login through the gateway", f.testLogin)
			t.Run("spoofed identity headers", f.testSpoofing)
			t.Run("revocation", f.testRevocation)
		})
	}
}

// testAccess is the allow/deny table of requests through the gateway.
func (f *fixture) testAccess(t *testing.T) {
	cases := []struct {
		name   string
		method string
		cred   credKind
		csrf   string      // "", "valid" or "wrong"
		header http.Header // more request headers
		want   int         // 0: the gateway's answer to Gatehouse's 400
		mode   string      // X-Gatehouse-Auth-Mode when allowed
		// challenge is the WWW-Authenticate of a 401.
		challenge string
	}{
		{name: "no credential", method: "GET", cred: credNone, want: 401, challenge: `Bearer`},
		{name: "malformed bearer token", method: "GET", cred: credMalformedBearer, want: 401, challenge: `Bearer error="invalid_token"`},
		{name: "unknown session cookie", method: "GET", cred: credUnknownSession, want: 401, challenge: `Bearer error="invalid_token"`},
		{name: "session GET", method: "GET", cred: credSession, want: 200, mode: "session"},
		{name: "bearer GET", method: "GET", cred: credBearer, want: 200, mode: "token"},
		{name: "hybrid cookie GET", method: "GET", cred: credHybrid, want: 200, mode: "cookie-token"},
		{name: "session and bearer together", method: "GET", cred: credSessionAndBearer, want: 0},
		{name: "no credential POST", method: "POST", cred: credNone, want: 401, challenge: `Bearer`},
		{name: "session POST without CSRF token", method: "POST", cred: credSession, want: 403},
		{name: "session POST with a wrong CSRF token", method: "POST", cred: credSession, csrf: "wrong", want: 403},
		{name: "session POST claiming X-Forwarded-Method GET", method: "POST", cred: credSession,
			header: http.Header{"X-Forwarded-Method": {"GET"}}, want: 403},
		{name: "session PUT without CSRF token", method: "PUT", cred: credSession, want: 403},
		{name: "session DELETE without CSRF token", method: "DELETE", cred: credSession, want: 403},
		{name: "session POST with the CSRF token", method: "POST", cred: credSession, csrf: "valid", want: 200, mode: "session"},
		{name: "session PUT with the CSRF token", method: "PUT", cred: credSession, csrf: "valid", want: 200, mode: "session"},
		{name: "session DELETE with the CSRF token", method: "DELETE", cred: credSession, csrf: "valid", want: 200, mode: "session"},
		{name: "hybrid cookie POST without CSRF token", method: "POST", cred: credHybrid, want: 403},
		{name: "hybrid cookie POST with the session's CSRF token", method: "POST", cred: credHybrid, want: 403,
			header: http.Header{"X-Csrf-Token": {f.session.csrf}}},
		{name: "hybrid cookie POST with the CSRF token", method: "POST", cred: credHybrid, csrf: "valid", want: 200, mode: "cookie-token"},
		{name: "bearer POST without CSRF token", method: "POST", cred: credBearer, want: 200, mode: "token"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rq := request{method: tc.method, path: fmt.Sprintf("/app/case-%d?q=%d", i, i), header: tc.header.Clone()}
			if tc.method != "GET" {
				rq.body, rq.contentType = fmt.Sprintf("payload-%d", i), "text/plain"
			}
			rq = f.credentialed(t, rq, tc.cred, tc.csrf)
			r, e := f.through(t, rq)
			want := tc.want
			if want == 0 {
				want = f.kind.badRequest
			}
			if r.status != want {
				t.Fatalf("%s: %s, want %d", tc.name, r, want)
			}
			if r.status == http.StatusUnauthorized {
				if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
			}
			if r.status >= 400 && r.status != http.StatusInternalServerError {
				ct := r.header.Get("Content-Type")
				if isProblem := strings.HasPrefix(ct, "application/problem+json"); isProblem != f.kind.problemBody {
					t.Errorf("a %d with Content-Type %q; Gatehouse's problem body passed through: %v, want %v", r.status, ct, isProblem, f.kind.problemBody)
				}
			}
			if e == nil {
				return
			}
			if e.Method != tc.method || e.URI != rq.path || e.Body != rq.body {
				t.Errorf("the upstream received %s %s with body %q, want %s %s with %q", e.Method, e.URI, e.Body, tc.method, rq.path, rq.body)
			}
			// The gateways pass the client's credential on unchanged.
			if e.Authorization != (rq.bearer != "") || e.Cookie != (len(rq.cookies) > 0) {
				t.Errorf("the upstream received Authorization %v and Cookie %v; the client sent %v and %v", e.Authorization, e.Cookie, rq.bearer != "", len(rq.cookies) > 0)
			}
			f.wantIdentity(t, e, tc.mode)
		})
	}
}

// testLogin logs in through the gateway the way a browser without Fetch
// Metadata does: Gatehouse compares Origin with the Host the gateway
// passed on.
func (f *fixture) testLogin(t *testing.T) {
	u, err := url.Parse(f.base)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		origin string
		want   int
	}{
		{name: "same origin", origin: f.base, want: http.StatusCreated},
		{name: "cross origin", origin: "http://evil.example", want: http.StatusForbidden},
		{name: "same host, other port", origin: "http://" + u.Hostname() + ":1", want: http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, f.c, f.base, request{method: "POST", path: "/v1/sessions",
				header: http.Header{"Origin": {tc.origin}},
				body:   jsonBody(map[string]string{"username": f.user.username, "password": f.user.password})})
			if r.status != tc.want {
				t.Fatalf("login with Origin %s: %s, want %d", tc.origin, r, tc.want)
			}
			if r.status != http.StatusCreated {
				return
			}
			ck := r.cookie("gh_session")
			if ck == nil {
				t.Fatalf("no gh_session cookie: %v", r.header.Values("Set-Cookie"))
			}
			_, e := f.through(t, request{method: "GET", path: "/app/after-login", cookies: []*http.Cookie{ck}})
			if e == nil {
				t.Fatal("the new session was refused by the gateway")
			}
			f.wantIdentity(t, e, "session")
		})
	}
}

// spoofHeaders are identity headers a client forges: the canonical names,
// other cases on separate lines, and underscore variants (which some
// frameworks, CGI and WSGI among them, read as the same name).
func spoofHeaders() http.Header {
	return http.Header{
		"X-Gatehouse-User-Id":   {"admin"},
		"x-gatehouse-user-id":   {"root"},
		"X-Gatehouse-Username":  {"admin"},
		"X-GATEHOUSE-AUTH-MODE": {"session"},
		"X-Gatehouse-Token":     {"forged.forged.forged"},
		"X_Gatehouse_User_Id":   {"admin"},
		"X_Gatehouse_Username":  {"admin"},
		"X_Gatehouse_Auth_Mode": {"session"},
		"X_Gatehouse_Token":     {"forged.forged.forged"},
	}
}

// testSpoofing sends forged identity headers: with a credential, the
// upstream sees only Gatehouse's values; without one, it is not reached.
func (f *fixture) testSpoofing(t *testing.T) {
	cases := []struct {
		name string
		cred credKind
		want int
		mode string
	}{
		{name: "with a session", cred: credSession, want: 200, mode: "session"},
		{name: "with a bearer token", cred: credBearer, want: 200, mode: "token"},
		{name: "with a hybrid cookie", cred: credHybrid, want: 200, mode: "cookie-token"},
		{name: "without a credential", cred: credNone, want: 401},
		{name: "with a malformed bearer token", cred: credMalformedBearer, want: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rq := f.credentialed(t, request{method: "GET", path: "/app/spoof", header: spoofHeaders()}, tc.cred, "")
			r, e := f.through(t, rq)
			if r.status != tc.want {
				t.Fatalf("%s", r)
			}
			if e != nil {
				f.wantIdentity(t, e, tc.mode)
			}
		})
	}
}

// testRevocation: a revoked token and a logged-out session are refused by
// the gateway at once.
func (f *fixture) testRevocation(t *testing.T) {
	t.Run("revoked access token", func(t *testing.T) {
		tok := passwordGrant(t, f.c, f.base, f.user)
		if r, _ := f.through(t, request{method: "GET", path: "/app/before-revoke", bearer: tok}); r.status != 200 {
			t.Fatalf("before revocation: %s", r)
		}
		form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
		r := send(t, f.c, f.base, request{method: "POST", path: "/v1/token/revoke", body: form.Encode(), contentType: "application/x-www-form-urlencoded"})
		if r.status != http.StatusOK {
			t.Fatalf("revoke: %s", r)
		}
		r, _ = f.through(t, request{method: "GET", path: "/app/after-revoke", bearer: tok})
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Fatalf("revoked token: %s, WWW-Authenticate %q; want 401 invalid_token", r, r.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("logged-out session", func(t *testing.T) {
		s := login(t, f.c, f.base, f.user, nil)
		if r, _ := f.through(t, request{method: "GET", path: "/app/before-logout", cookies: []*http.Cookie{s.cookie}}); r.status != 200 {
			t.Fatalf("before logout: %s", r)
		}
		r := send(t, f.c, f.base, request{method: "DELETE", path: "/v1/sessions/current", cookies: []*http.Cookie{s.cookie},
			header: http.Header{"X-Csrf-Token": {s.csrf}}})
		if r.status != http.StatusNoContent {
			t.Fatalf("logout: %s", r)
		}
		r, _ = f.through(t, request{method: "GET", path: "/app/after-logout", cookies: []*http.Cookie{s.cookie}})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("logged-out session: %s, want 401", r)
		}
	})
}

// TestGatewaysWithoutForwardToken: with no X-Gatehouse-Token in
// Gatehouse's answer, a client's forged one must still not reach the
// upstream; and with Gatehouse down, the gateways fail closed.
func TestGatewaysWithoutForwardToken(t *testing.T) {
	gh := startGatehouse(t)
	type running struct {
		kind    gatewayKind
		app     *upstream
		base    string
		session session
		user    account
	}
	c := newClient(t)
	var gws []running
	for _, kind := range gatewayKinds {
		bin, fail, skip := testbin.FindTool(kind.tool)
		if fail != "" {
			t.Fatal(fail)
		}
		if skip != "" {
			t.Log(skip)
			continue
		}
		app := newUpstream(t)
		base := kind.start(t, bin, gh, app)
		user := signup(t, c, base, "bob-"+kind.name)
		gws = append(gws, running{kind: kind, app: app, base: base, user: user, session: login(t, c, base, user, nil)})
	}
	for _, g := range gws {
		t.Run(g.kind.name+"/forged token", func(t *testing.T) {
			before := g.app.hits.Load()
			r := send(t, c, g.base, request{method: "GET", path: "/app/spoof", header: spoofHeaders(), cookies: []*http.Cookie{g.session.cookie}})
			if r.status != http.StatusOK || g.app.hits.Load() != before+1 {
				t.Fatalf("%s (upstream calls %d)", r, g.app.hits.Load()-before)
			}
			var e echoed
			r.json(t, &e)
			want := map[string][]string{
				"X-Gatehouse-User-Id":   {g.user.id},
				"X-Gatehouse-Username":  {g.user.username},
				"X-Gatehouse-Auth-Mode": {"session"},
			}
			if fmt.Sprint(e.Identity) != fmt.Sprint(want) {
				t.Fatalf("the upstream received identity headers %v, want exactly %v", e.Identity, want)
			}
		})
	}
	if len(gws) == 0 {
		t.Skip("neither nginx nor caddy is installed")
	}
	gh.srv.Stop(syscall.SIGTERM)
	for _, g := range gws {
		t.Run(g.kind.name+"/gatehouse down", func(t *testing.T) {
			before := g.app.hits.Load()
			r := send(t, c, g.base, request{method: "GET", path: "/app/down", cookies: []*http.Cookie{g.session.cookie}})
			if r.status != g.kind.down || g.app.hits.Load() != before {
				t.Fatalf("with Gatehouse down: %s (upstream calls %d), want %d and none", r, g.app.hits.Load()-before, g.kind.down)
			}
		})
	}
}
