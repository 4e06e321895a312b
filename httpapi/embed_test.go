package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/gate"
	"github.com/gatehouse-auth/gatehouse/token"
)

// embedIssuer is the issuer of an API mounted under /auth of an app.
const embedIssuer = "http://app.test/auth"

// embedded is an application that mounts the API under /auth of its own
// mux, next to its own routes behind the gate middleware, served over real
// HTTP to a client with a cookie jar (which applies cookie paths as a
// browser does).
type embedded struct {
	t      *testing.T
	h      *harness
	app    *httptest.Server
	client *http.Client
	// refreshSeen records whether an app route received the refresh
	// cookie (it must not: the cookie is scoped to the token endpoint).
	refreshSeen bool
}

func newEmbedded(t *testing.T, prefix string) *embedded {
	t.Helper()
	var shell = &harness{t: t}
	h := newTokenHarness(t, func(c *Config) {
		iss, err := token.NewIssuer(c.Tokens.Ring, token.IssuerConfig{Issuer: embedIssuer, Audience: embedIssuer, Clock: c.Clock})
		if err != nil {
			shell.t.Fatal(err)
		}
		ver, err := token.NewVerifier(c.Tokens.Ring, token.VerifierConfig{Issuer: embedIssuer, Audience: embedIssuer, Clock: c.Clock, Revocation: c.Tokens.Revocations})
		if err != nil {
			shell.t.Fatal(err)
		}
		c.Tokens.Issuer, c.Tokens.Verifier, c.Tokens.IssuerURL = iss, ver, embedIssuer
		c.PathPrefix = prefix
	})
	cfg := h.api.cfg
	g, err := gate.New(gate.Config{
		Sessions: cfg.Sessions, Users: cfg.Accounts, Tokens: cfg.Tokens.Verifier,
		HybridCSRFKey: cfg.Tokens.CSRFKey, Dev: cfg.Dev,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &embedded{t: t, h: h}
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range r.Cookies() {
			if c.Name == "gh_refresh" {
				e.refreshSeen = true
			}
		}
		p, _ := gate.PrincipalFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"username": p.Username, "mode": p.Mode})
	})
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", h.api.Handler()))
	mux.Handle("GET /app/me", g.RequireAny(me))
	mux.Handle("POST /app/notes", g.RequireAny(me))
	mux.Handle("GET /app/admin", g.RequireAny(g.RequireRole("admin")(me)))
	e.app = httptest.NewServer(mux)
	t.Cleanup(e.app.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.client = &http.Client{Transport: e.app.Client().Transport, Jar: jar}
	return e
}

// send makes a request with the jar's cookies; body is JSON unless it is
// a form (contains "=" and no "{").
func (e *embedded) send(method, path, body string, headers map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, e.app.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		if strings.HasPrefix(body, "{") {
			r.Header.Set("Content-Type", "application/json")
		} else {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	res, err := e.client.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{Response: res, body: b}
}

func (e *embedded) want(r resp, status int) map[string]any {
	e.t.Helper()
	if r.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(e.t)
}

// jarHas reports whether the jar would send the named cookie to path.
func (e *embedded) jarHas(path, name string) bool {
	u, err := url.Parse(e.app.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range e.client.Jar.Cookies(u) {
		if c.Name == name {
			return true
		}
	}
	return false
}

func setCookieLine(r resp, name string) string {
	for _, line := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	return ""
}

// TestEmbeddedSession: log in through the mounted API, then use the app's
// own routes behind the gate with the same cookie; logging out through the
// API ends the app's access too.
func TestEmbeddedSession(t *testing.T) {
	e := newEmbedded(t, "/auth")
	e.want(e.send("POST", "/auth/v1/users", credJSON("alice", pw), nil), 201)
	login := e.send("POST", "/auth/v1/sessions", credJSON("alice", pw), nil)
	m := e.want(login, 201)
	if line := setCookieLine(login, "gh_session"); !strings.Contains(line, "Path=/;") && !strings.HasSuffix(line, "Path=/") {
		t.Fatalf("session cookie %q: want Path=/", line)
	}
	csrfTok := m["csrf_token"].(string)
	oldCookie := "gh_session=" + login.cookie("gh_session").Value

	if me := e.want(e.send("GET", "/app/me", "", nil), 200); me["username"] != "alice" || me["mode"] != "session" {
		t.Fatalf("app route: %v", me)
	}
	wantProblem(t, e.send("POST", "/app/notes", "", nil), 403, classCSRF)
	e.want(e.send("POST", "/app/notes", "", map[string]string{"X-CSRF-Token": csrfTok}), 200)
	wantProblem(t, e.send("GET", "/app/admin", "", nil), 403, classForbidden)
	if cur := e.want(e.send("GET", "/auth/v1/sessions/current", "", nil), 200); cur["csrf_token"] != csrfTok {
		t.Fatalf("current session under the prefix: %v", cur)
	}
	// The API's own rules hold under the prefix: a logout needs the token.
	wantProblem(t, e.send("DELETE", "/auth/v1/sessions/current", "", nil), 403, classCSRF)
	e.want(e.send("DELETE", "/auth/v1/sessions/current", "", map[string]string{"X-CSRF-Token": csrfTok}), 204)
	if e.jarHas("/app/me", "gh_session") {
		t.Fatal("logout did not clear the session cookie")
	}
	wantProblem(t, e.send("GET", "/app/me", "", nil), 401, classUnauthorized)
	// A copy of the cookie kept past the logout is refused at once.
	r := e.send("GET", "/app/me", "", map[string]string{"Cookie": oldCookie})
	wantProblem(t, r, 401, classUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); got != challengeInvalidToken {
		t.Fatalf("WWW-Authenticate %q after logout", got)
	}
	wantProblem(t, e.send("GET", "/auth/nope", "", nil), 404, classNotFound)
}

// TestEmbeddedHybridRefresh: in hybrid mode the refresh cookie must reach
// the mounted token endpoint. With PathPrefix its Path is /auth/v1/token and
// the refresh works; without it (a mounted API that was not told) the
// browser never sends the cookie there.
func TestEmbeddedHybridRefresh(t *testing.T) {
	cases := []struct {
		name        string
		prefix      string
		cookiePath  string
		refreshWant int
	}{
		{"with PathPrefix", "/auth", "Path=/auth/v1/token", 200},
		{"without PathPrefix", "", "Path=/v1/token", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEmbedded(t, c.prefix)
			e.want(e.send("POST", "/auth/v1/users", credJSON("hana", pw), nil), 201)
			login := e.send("POST", "/auth/v1/token", form("grant_type", "password", "username", "hana", "password", pw, "delivery", "cookie"), nil)
			m := e.want(login, 200)
			if line := setCookieLine(login, "gh_refresh"); !strings.Contains(line, c.cookiePath+";") {
				t.Fatalf("refresh cookie %q: want %s", line, c.cookiePath)
			}
			csrfTok := m["csrf_token"].(string)

			if me := e.want(e.send("GET", "/app/me", "", nil), 200); me["mode"] != "cookie-token" || me["username"] != "hana" {
				t.Fatalf("app route: %v", me)
			}
			if e.refreshSeen {
				t.Fatal("the app route received the refresh cookie")
			}
			e.want(e.send("POST", "/app/notes", "", map[string]string{"X-CSRF-Token": csrfTok}), 200)

			r := e.send("POST", "/auth/v1/token", form("grant_type", "refresh_token", "delivery", "cookie"), map[string]string{"X-CSRF-Token": csrfTok})
			if r.StatusCode != c.refreshWant {
				t.Fatalf("cookie refresh: status %d, want %d: %s", r.StatusCode, c.refreshWant, r.body)
			}
			if c.refreshWant != 200 {
				wantOAuthError(t, r, 400, "invalid_grant")
				return
			}
			if line := setCookieLine(r, "gh_refresh"); !strings.Contains(line, c.cookiePath+";") {
				t.Fatalf("rotated refresh cookie %q: want %s", line, c.cookiePath)
			}
			newTok := r.json(t)["csrf_token"].(string)
			oldAccess := "gh_access=" + r.cookie("gh_access").Value
			e.want(e.send("GET", "/app/me", "", nil), 200)
			e.want(e.send("POST", "/app/notes", "", map[string]string{"X-CSRF-Token": newTok}), 200)
			if e.refreshSeen {
				t.Fatal("an app route received the refresh cookie")
			}

			// Logout: the refresh cookie reaches the revocation endpoint
			// (under /auth/v1/token), and clearing it matches its path.
			e.want(e.send("POST", "/auth/v1/token/revoke", "", map[string]string{"X-CSRF-Token": newTok, "Content-Type": "application/x-www-form-urlencoded"}), 200)
			if e.jarHas("/auth/v1/token", "gh_refresh") || e.jarHas("/app/me", "gh_access") {
				t.Fatal("logout left a cookie in the jar")
			}
			wantProblem(t, e.send("GET", "/app/me", "", nil), 401, classUnauthorized)
			// A copy of the access cookie kept past the logout is refused
			// at once: its family is revoked.
			old := e.send("GET", "/app/me", "", map[string]string{"Cookie": oldAccess})
			wantProblem(t, old, 401, classUnauthorized)
			if got := old.Header.Get("WWW-Authenticate"); got != challengeInvalidToken {
				t.Fatalf("WWW-Authenticate %q after logout", got)
			}
		})
	}
}

// TestEmbeddedDiscovery: the discovery document of a mounted API points at
// the mounted endpoints, because IssuerURL includes the prefix.
func TestEmbeddedDiscovery(t *testing.T) {
	e := newEmbedded(t, "/auth")
	doc := e.want(e.send("GET", "/auth/.well-known/openid-configuration", "", nil), 200)
	want := map[string]string{
		"issuer":                 embedIssuer,
		"jwks_uri":               embedIssuer + "/.well-known/jwks.json",
		"token_endpoint":         embedIssuer + "/v1/token",
		"revocation_endpoint":    embedIssuer + "/v1/token/revoke",
		"introspection_endpoint": embedIssuer + "/v1/token/introspect",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %s", k, doc[k], v)
		}
	}
	e.want(e.send("GET", "/auth/.well-known/jwks.json", "", nil), 200)
}

func TestPathPrefixValidation(t *testing.T) {
	base := newEmbedded(t, "/auth").h.api.cfg
	cases := []struct {
		name, prefix, issuer string
		ok                   bool
	}{
		{"empty", "", embedIssuer, true},
		{"one segment", "/auth", embedIssuer, true},
		{"two segments", "/svc/auth", "https://example.com/svc/auth", true},
		{"issuer with a trailing slash", "/auth", "https://example.com/auth/", true},
		{"unreserved characters", "/a-b.c_d~e", "https://example.com/a-b.c_d~e", true},
		{"no leading slash", "auth", "https://example.com/auth", false},
		{"trailing slash", "/auth/", "https://example.com/auth/", false},
		{"root", "/", "https://example.com/", false},
		{"double slash", "/a//b", "https://example.com/a//b", false},
		{"dot segment", "/a/./b", "https://example.com/a/b", false},
		{"dot-dot segment", "/a/../b", "https://example.com/b", false},
		{"query", "/auth?x=1", embedIssuer, false},
		{"fragment", "/auth#x", embedIssuer, false},
		{"semicolon", "/auth;x", embedIssuer, false},
		{"space", "/a b", embedIssuer, false},
		{"percent", "/a%20b", embedIssuer, false},
		{"control character", "/a\nb", embedIssuer, false},
		{"non-ASCII", "/authé", embedIssuer, false},
		{"issuer without the prefix", "/auth", "https://example.com", false},
		{"issuer with another prefix", "/auth", "https://example.com/login", false},
		{"issuer where the prefix is not a whole segment", "/auth", "https://example.com/oauth", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			tc := *cfg.Tokens
			tc.IssuerURL = c.issuer
			cfg.Tokens = &tc
			cfg.PathPrefix = c.prefix
			_, err := New(cfg)
			if (err == nil) != c.ok {
				t.Fatalf("New with prefix %q, issuer %q: %v; want ok=%v", c.prefix, c.issuer, err, c.ok)
			}
		})
	}
	t.Run("session mode needs no issuer", func(t *testing.T) {
		cfg := base
		cfg.Tokens = nil
		cfg.PathPrefix = "/auth"
		if _, err := New(cfg); err != nil {
			t.Fatal(err)
		}
	})
}
