package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-auth/gatehouse/examples/internal/exampletest"
)

const password = "correct horse battery staple"

// formType is what fetch sends with a URLSearchParams body.
const formType = "application/x-www-form-urlencoded;charset=UTF-8"

// expiringJar is a cookie jar that can forget the access cookie, as a
// browser does once the cookie's Max-Age (the token's lifetime) has passed;
// the next access cookie the server sets is kept again.
type expiringJar struct {
	http.CookieJar
	mu      sync.Mutex
	expired bool
}

func (j *expiringJar) expireAccess() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.expired = true
}

func (j *expiringJar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	cs := j.CookieJar.Cookies(u)
	if !j.expired {
		return cs
	}
	var out []*http.Cookie
	for _, c := range cs {
		if c.Name != "gh_access" {
			out = append(out, c)
		}
	}
	return out
}

func (j *expiringJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.Name == "gh_access" {
			j.expired = false
		}
	}
	j.CookieJar.SetCookies(u, cs)
}

// page is the browser tab: a client with the jar, doing what app.js does.
type page struct {
	base string
	jar  *expiringJar
	c    *http.Client
}

func newPage(t *testing.T, base string) *page {
	t.Helper()
	inner, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	jar := &expiringJar{CookieJar: inner}
	return &page{base: base, jar: jar, c: &http.Client{Jar: jar}}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a.body)
	}
	return m
}

func (p *page) do(t *testing.T, method, path, contentType, body string, header map[string]string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" || contentType != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, p.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	res, err := p.c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

func want(t *testing.T, a answer, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	return a
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

// cookieValue is the value of the named cookie the jar holds for path
// (expired or not).
func (p *page) cookieValue(t *testing.T, path, name string) string {
	t.Helper()
	u, err := url.Parse(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.jar.CookieJar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestStaticFiles: the SPA's files are served, with a CSP that allows no
// inline script, and index.html has none.
func TestStaticFiles(t *testing.T) {
	base := exampletest.Start(t, run, "--addr", "127.0.0.1:0")
	p := newPage(t, base)
	files := []struct {
		name, path, contentType string
	}{
		{"index.html", "/", "text/html"},
		{"app.js", "/app.js", "text/javascript"},
		{"style.css", "/style.css", "text/css"},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			a := want(t, p.do(t, "GET", f.path, "", "", nil), 200)
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, f.contentType) {
				t.Fatalf("Content-Type %q, want %s", ct, f.contentType)
			}
			csp := a.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Fatalf("Content-Security-Policy %q", csp)
			}
		})
	}

	html := string(want(t, p.do(t, "GET", "/", "", "", nil), 200).body)
	scripts := regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`).FindAllStringSubmatch(html, -1)
	if len(scripts) != 1 || strings.Count(strings.ToLower(html), "<script") != 1 {
		t.Fatalf("want exactly one script element, found %d:\n%s", len(scripts), html)
	}
	if !regexp.MustCompile(`\bsrc="/app\.js"`).MatchString(scripts[0][1]) || strings.TrimSpace(scripts[0][2]) != "" {
		t.Fatalf("the script element is not an empty <script src=\"/app.js\">: %q", scripts[0][0])
	}
	inline := []struct {
		name string
		re   string
	}{
		{"event handler attribute", `(?i)\son[a-z]+\s*=`},
		{"javascript: URL", `(?i)javascript:`},
		{"style element or attribute", `(?i)<style\b|\sstyle\s*=`},
		{"another origin", `(?i)(src|href)\s*=\s*"(https?:)?//`},
	}
	for _, c := range inline {
		if loc := regexp.MustCompile(c.re).FindStringIndex(html); loc != nil {
			t.Errorf("index.html has an inline %s: %q", c.name, html[loc[0]:min(loc[1]+20, len(html))])
		}
	}

	// app.js speaks the protocol that TestHybridFlow drives.
	js := string(want(t, p.do(t, "GET", "/app.js", "", "", nil), 200).body)
	for _, s := range []string{
		"fetch('/auth/v1/token'",
		"grant_type: 'password', username, password, delivery: 'cookie'",
		"grant_type: 'refresh_token', delivery: 'cookie' }, { 'X-CSRF-Token': csrfToken }",
		"res.status === 401 && (await refresh())",
		"fetch('/auth/v1/me'",
		"csrfToken = me.csrf_token",
		"fetch('/auth/v1/token/revoke'",
		"headers.set('X-CSRF-Token', csrfToken)",
		"'/api/notes'",
		"new URLSearchParams(",
	} {
		if !strings.Contains(js, s) {
			t.Errorf("app.js lacks %q", s)
		}
	}
	for _, s := range []string{"localStorage", "sessionStorage", "innerHTML", "eval("} {
		if strings.Contains(js, s) {
			t.Errorf("app.js uses %s", s)
		}
	}
}

// TestHybridFlow makes the HTTP requests app.js makes, with a cookie jar:
// sign-up, login with delivery=cookie, the API with the CSRF token, a
// reload, an expired access cookie and the refresh, and the logout.
func TestHybridFlow(t *testing.T) {
	base := exampletest.Start(t, run, "--addr", "127.0.0.1:0")
	p := newPage(t, base)

	want(t, p.do(t, "GET", "/api/notes", "", "", nil), 401)
	want(t, p.do(t, "POST", "/auth/v1/users", "application/json", `{"username":"hana","password":"`+password+`"}`, nil), 201)

	// Login: both cookies, and no token in the body.
	login := want(t, p.do(t, "POST", "/auth/v1/token", formType, form("grant_type", "password", "username", "hana", "password", password, "delivery", "cookie"), nil), 200)
	m := login.json(t)
	csrf, _ := m["csrf_token"].(string)
	if csrf == "" || m["access_token"] != nil || m["refresh_token"] != nil {
		t.Fatalf("cookie login body: %s", login.body)
	}
	var sawAccess, sawRefresh bool
	for _, line := range login.header.Values("Set-Cookie") {
		switch {
		case strings.HasPrefix(line, "gh_access="):
			sawAccess = strings.Contains(line, "Path=/;") && strings.Contains(line, "HttpOnly")
		case strings.HasPrefix(line, "gh_refresh="):
			sawRefresh = strings.Contains(line, "Path=/auth/v1/token;") && strings.Contains(line, "HttpOnly") && strings.Contains(line, "SameSite=Strict")
		}
	}
	if !sawAccess || !sawRefresh {
		t.Fatalf("cookies: %q", login.header.Values("Set-Cookie"))
	}

	// A reload: the page reads its CSRF token from GET /auth/v1/me.
	me := want(t, p.do(t, "GET", "/auth/v1/me", "", "", nil), 200).json(t)
	if me["csrf_token"] != csrf || me["username"] != "hana" || me["auth"].(map[string]any)["mode"] != "cookie-token" {
		t.Fatalf("me: %v", me)
	}
	// A reload after the access cookie expired: the refresh cookie still
	// yields the CSRF token.
	if got := want(t, p.do(t, "GET", "/auth/v1/token/csrf", "", "", nil), 200).json(t)["csrf_token"]; got != csrf {
		t.Fatalf("GET /auth/v1/token/csrf = %v, want the login's CSRF token", got)
	}

	t.Run("API decisions", func(t *testing.T) {
		stranger := newPage(t, base)
		session := newPage(t, base)
		want(t, session.do(t, "POST", "/auth/v1/sessions", "application/json", `{"username":"hana","password":"`+password+`"}`, nil), 201)
		note := `{"text":"hello"}`
		cases := []struct {
			name        string
			p           *page
			method      string
			contentType string
			body        string
			header      map[string]string
			status      int
		}{
			{"list with the cookie", p, "GET", "", "", nil, 200},
			{"add with the cookie and the CSRF token", p, "POST", "application/json", note, map[string]string{"X-CSRF-Token": csrf}, 201},
			{"add without the CSRF token", p, "POST", "application/json", note, nil, 403},
			{"add with a wrong CSRF token", p, "POST", "application/json", note, map[string]string{"X-CSRF-Token": "AAAA" + csrf[4:]}, 403},
			{"add from another site", p, "POST", "application/json", note, map[string]string{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}, 403},
			{"add with unknown fields", p, "POST", "application/json", `{"text":"x","admin":true}`, map[string]string{"X-CSRF-Token": csrf}, 400},
			{"add an empty note", p, "POST", "application/json", `{"text":" "}`, map[string]string{"X-CSRF-Token": csrf}, 400},
			{"add as a form", p, "POST", formType, "text=x", map[string]string{"X-CSRF-Token": csrf}, 415},
			{"list without a credential", stranger, "GET", "", "", nil, 401},
			{"list with a session cookie (session mode is not accepted here)", session, "GET", "", "", nil, 401},
			{"list with a forged access cookie", stranger, "GET", "", "", map[string]string{"Cookie": "gh_access=eyJhbGciOiJub25lIn0.e30."}, 401},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				a := want(t, c.p.do(t, c.method, "/api/notes", c.contentType, c.body, c.header), c.status)
				if c.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without a Bearer challenge: %v", a.header)
				}
			})
		}
		notes := want(t, p.do(t, "GET", "/api/notes", "", "", nil), 200).json(t)["notes"].([]any)
		if len(notes) != 1 || notes[0].(map[string]any)["text"] != "hello" {
			t.Fatalf("notes: %v", notes)
		}
	})

	t.Run("refresh after the access cookie expired", func(t *testing.T) {
		p.jar.expireAccess()
		// app.js: the call answers 401, so it refreshes and calls again.
		want(t, p.do(t, "GET", "/api/notes", "", "", nil), 401)
		want(t, p.do(t, "POST", "/auth/v1/token", formType, form("grant_type", "refresh_token", "delivery", "cookie"), nil), 403)
		r := want(t, p.do(t, "POST", "/auth/v1/token", formType, form("grant_type", "refresh_token", "delivery", "cookie"), map[string]string{"X-CSRF-Token": csrf}), 200)
		next, _ := r.json(t)["csrf_token"].(string)
		if next == "" || r.json(t)["access_token"] != nil {
			t.Fatalf("cookie refresh body: %s", r.body)
		}
		csrf = next
		want(t, p.do(t, "GET", "/api/notes", "", "", nil), 200)
		want(t, p.do(t, "POST", "/api/notes", "application/json", `{"text":"after refresh"}`, map[string]string{"X-CSRF-Token": csrf}), 201)
	})

	t.Run("logout", func(t *testing.T) {
		oldAccess := p.cookieValue(t, "/", "gh_access")
		want(t, p.do(t, "POST", "/auth/v1/token/revoke", formType, "", nil), 403)
		want(t, p.do(t, "POST", "/auth/v1/token/revoke", formType, "", map[string]string{"X-CSRF-Token": csrf}), 200)
		if p.cookieValue(t, "/", "gh_access") != "" || p.cookieValue(t, "/auth/v1/token", "gh_refresh") != "" {
			t.Fatal("logout left a cookie in the jar")
		}
		want(t, p.do(t, "GET", "/api/notes", "", "", nil), 401)
		want(t, p.do(t, "GET", "/auth/v1/me", "", "", nil), 401)
		want(t, p.do(t, "POST", "/auth/v1/token", formType, form("grant_type", "refresh_token", "delivery", "cookie"), map[string]string{"X-CSRF-Token": csrf}), 400)
		// A copy of the access cookie kept past the logout is refused at
		// once: its refresh family is revoked.
		replay := newPage(t, base)
		a := want(t, replay.do(t, "GET", "/api/notes", "", "", map[string]string{"Cookie": "gh_access=" + oldAccess}), 401)
		if got := a.header.Get("WWW-Authenticate"); !strings.Contains(got, "invalid_token") {
			t.Fatalf("WWW-Authenticate %q", got)
		}
	})
}

// TestBearerClient: the same API serves a client that holds its tokens
// (a mobile app): a Bearer token, no cookie, no CSRF token.
func TestBearerClient(t *testing.T) {
	base := exampletest.Start(t, run, "--addr", "127.0.0.1:0")
	p := newPage(t, base)
	want(t, p.do(t, "POST", "/auth/v1/users", "application/json", `{"username":"mo","password":"`+password+`"}`, nil), 201)
	tok := want(t, p.do(t, "POST", "/auth/v1/token", formType, form("grant_type", "password", "username", "mo", "password", password), nil), 200).json(t)
	access, _ := tok["access_token"].(string)
	if access == "" {
		t.Fatalf("password grant: %v", tok)
	}
	auth := map[string]string{"Authorization": "Bearer " + access}
	want(t, p.do(t, "POST", "/api/notes", "application/json", `{"text":"from the phone"}`, auth), 201)
	got := want(t, p.do(t, "GET", "/api/notes", "", "", auth), 200).json(t)
	if got["username"] != "mo" || len(got["notes"].([]any)) != 1 {
		t.Fatalf("notes: %v", got)
	}
	// The discovery document names the mounted endpoints.
	doc := want(t, p.do(t, "GET", "/auth/.well-known/openid-configuration", "", "", nil), 200).json(t)
	if doc["issuer"] != base+"/auth" || doc["token_endpoint"] != base+"/auth/v1/token" {
		t.Fatalf("discovery: %v", doc)
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"dev on a public address", []string{"--addr", "0.0.0.0:0"}, "non-loopback"},
		{"a public URL with a path", []string{"--addr", "127.0.0.1:0", "--public-url", "http://127.0.0.1/app"}, "no path"},
		{"a public URL without a scheme", []string{"--addr", "127.0.0.1:0", "--public-url", "example.com"}, "scheme"},
		{"a stray argument", []string{"serve"}, "unexpected argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := run(context.Background(), c.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", c.args, err, c.want)
			}
		})
	}
}
