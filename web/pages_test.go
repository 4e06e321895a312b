package web

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/httpapi"
)

const firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"

func wantPage(t *testing.T, p page, status int, path string, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d at %s, want %d\n%s", p.status, p.url, status, p.body)
	}
	if path != "" && p.url != path {
		t.Fatalf("landed on %s, want %s", p.url, path)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Fatalf("page %s does not contain %q:\n%s", p.url, c, p.body)
		}
	}
}

// login logs b in through the login form.
func (b *browser) login(username, password string) page {
	b.e.t.Helper()
	p := b.post("/login", "username", username, "password", password)
	wantPage(b.e.t, p, http.StatusOK, "/account", "Your account")
	return p
}

// sessionID asks the API (through the pages' handler) for b's session id.
func (b *browser) sessionID() string {
	b.e.t.Helper()
	p := b.get("/v1/sessions/current")
	if p.status != http.StatusOK {
		b.e.t.Fatalf("current session: %d %s", p.status, p.body)
	}
	var cur currentSession
	if err := json.Unmarshal([]byte(p.body), &cur); err != nil {
		b.e.t.Fatal(err)
	}
	return cur.Session.ID
}

func TestPagesWithoutJavaScript(t *testing.T) {
	e := newEnv(t)
	b := e.browser()

	wantPage(t, b.get("/"), http.StatusOK, "/login", "Log in", "Sign up")
	p := b.post("/signup", "username", "alice", "password", testPassword, "confirm_password", testPassword)
	wantPage(t, p, http.StatusOK, "/login?m=created", "Your account was created")
	p = b.login("alice", testPassword)
	wantPage(t, p, http.StatusOK, "/account", "alice", "this device", "Devices")
	if b.cookie("gh_session") == "" {
		t.Fatal("no session cookie after the login form")
	}
	wantPage(t, b.get("/"), http.StatusOK, "/account")

	// A second device: another browser, another user agent.
	other := e.browser()
	other.headers["User-Agent"] = firefoxUA
	other.login("alice", testPassword)
	otherID := other.sessionID()

	p = b.get("/account")
	wantPage(t, p, http.StatusOK, "/account", "Firefox on Linux", "Log out everywhere else (1)", "/account/sessions/"+otherID+"/revoke")
	if strings.Count(p.body, `<li class="device`) != 2 {
		t.Fatalf("want two devices:\n%s", p.body)
	}

	// End the other device's session from this one.
	token := csrfField(t, p.body)
	p = b.post("/account/sessions/"+otherID+"/revoke", "csrf_token", token)
	wantPage(t, p, http.StatusOK, "/account?m=revoked", "That session was ended")
	if strings.Contains(p.body, otherID) {
		t.Fatal("the ended session is still listed")
	}
	wantPage(t, other.get("/account"), http.StatusOK, "/login?m=expired", "Your session has ended")

	// Change the password: every other session ends, this one stays.
	third := e.browser()
	third.login("alice", testPassword)
	p = b.get("/account/password")
	wantPage(t, p, http.StatusOK, "/account/password", "Change password")
	p = b.post("/account/password", "csrf_token", csrfField(t, p.body), "current_password", "not the password",
		"new_password", "a brand new passphrase", "confirm_password", "a brand new passphrase")
	wantPage(t, p, http.StatusForbidden, "/account/password", "The current password is wrong.")
	p = b.post("/account/password", "csrf_token", csrfField(t, p.body), "current_password", testPassword,
		"new_password", "a brand new passphrase", "confirm_password", "another passphrase")
	wantPage(t, p, http.StatusBadRequest, "/account/password", "The two new passwords differ.")
	p = b.post("/account/password", "csrf_token", csrfField(t, p.body), "current_password", testPassword,
		"new_password", "a brand new passphrase", "confirm_password", "a brand new passphrase")
	wantPage(t, p, http.StatusOK, "/account?m=password", "Your password was changed")
	wantPage(t, third.get("/account"), http.StatusOK, "/login?m=expired")
	fresh := e.browser()
	wantPage(t, fresh.post("/login", "username", "alice", "password", testPassword), http.StatusUnauthorized, "/login", "The username or password is wrong.")
	fresh.login("alice", "a brand new passphrase")

	// Log out.
	p = b.get("/account")
	p = b.post("/logout", "csrf_token", csrfField(t, p.body))
	wantPage(t, p, http.StatusOK, "/login?m=logged_out", "You are logged out.")
	if b.cookie("gh_session") != "" {
		t.Fatal("the session cookie survived the logout")
	}
	wantPage(t, b.get("/account"), http.StatusOK, "/login")
}

func TestPagesRefuseForgedPosts(t *testing.T) {
	e := newEnv(t)
	setup := e.browser()
	setup.post("/signup", "username", "bob", "password", testPassword, "confirm_password", testPassword)

	cases := []struct {
		name    string
		path    string
		form    []string // "csrf" stands for the session's token
		headers map[string]string
	}{
		{"logout without the token", "/logout", nil, nil},
		{"logout with another token", "/logout", []string{"csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, nil},
		{"logout cross-site", "/logout", []string{"csrf_token", "csrf"}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"logout from another origin (old browser)", "/logout", []string{"csrf_token", "csrf"}, map[string]string{"Origin": "https://evil.example"}},
		{"revoke others without the token", "/account/sessions/revoke-others", nil, nil},
		{"revoke others cross-site", "/account/sessions/revoke-others", []string{"csrf_token", "csrf"}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"password without the token", "/account/password", []string{"current_password", testPassword, "new_password", "x new password", "confirm_password", "x new password"}, nil},
		{"password cross-site", "/account/password", []string{"csrf_token", "csrf", "current_password", testPassword, "new_password", "x new password", "confirm_password", "x new password"}, map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"login cross-site", "/login", []string{"username", "bob", "password", testPassword}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"signup cross-site", "/signup", []string{"username", "mallory", "password", testPassword, "confirm_password", testPassword}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			p := b.login("bob", testPassword)
			token := csrfField(t, p.body)
			sid := b.sessionID()
			form := map[string][]string{}
			for i := 0; i+1 < len(tc.form); i += 2 {
				v := tc.form[i+1]
				if v == "csrf" {
					v = token
				}
				form[tc.form[i]] = []string{v}
			}
			b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			got := b.do(http.MethodPost, tc.path, form, tc.headers)
			if got.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403:\n%s", got.status, got.body)
			}
			if !strings.Contains(got.body, "Cross-origin request refused") && !strings.Contains(got.body, "X-CSRF-Token") {
				t.Fatalf("refusal does not say why:\n%s", got.body)
			}
			b.client.CheckRedirect = nil
			// Nothing happened: the session is alive, the password unchanged.
			if b.sessionID() != sid {
				t.Fatal("the session changed")
			}
			e.browser().login("bob", testPassword)
		})
	}
	t.Run("the same forms with the token, same-origin, pass", func(t *testing.T) {
		b := e.browser()
		p := b.login("bob", testPassword)
		got := b.do(http.MethodPost, "/logout", map[string][]string{"csrf_token": {csrfField(t, p.body)}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
		wantPage(t, got, http.StatusOK, "/login?m=logged_out")
	})
}

func TestLoginPageErrors(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.post("/signup", "username", "carol", "password", testPassword, "confirm_password", testPassword)

	p := b.post("/login", "username", `<script>alert(1)</script>`, "password", "wrong password here")
	wantPage(t, p, http.StatusUnauthorized, "/login", "The username or password is wrong.", "&lt;script&gt;alert(1)&lt;/script&gt;")
	if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "wrong password here") {
		t.Fatal("the page echoes the username unescaped or the password")
	}
	p = b.post("/signup", "username", "carol", "password", testPassword, "confirm_password", testPassword)
	wantPage(t, p, http.StatusConflict, "/signup", "That username is taken.")
	p = b.post("/signup", "username", "dave", "password", "short", "confirm_password", "short")
	wantPage(t, p, http.StatusBadRequest, "/signup")

	// The API's throttle applies to the form: enough failures give 429.
	var last page
	for range 30 {
		last = b.post("/login", "username", "carol", "password", "wrong password here")
		if last.status == http.StatusTooManyRequests {
			break
		}
	}
	wantPage(t, last, http.StatusTooManyRequests, "/login", "wait")
}

func TestSignupHiddenWhenDisabled(t *testing.T) {
	e := newEnv(t, func(a *httpapi.Config, w *Config) { a.Signup, w.Signup = false, false })
	b := e.browser()
	p := b.get("/login")
	wantPage(t, p, http.StatusOK, "/login")
	if strings.Contains(p.body, "/signup") {
		t.Fatal("the login page links to a disabled sign-up")
	}
	if p := b.get("/signup"); p.status != http.StatusNotFound {
		t.Fatalf("GET /signup: %d", p.status)
	}
	if p := b.post("/signup", "username", "x", "password", testPassword); p.status == http.StatusOK || p.status == http.StatusSeeOther {
		t.Fatalf("POST /signup: %d", p.status)
	}
}

var (
	inlineScript = regexp.MustCompile(`(?i)<script\b[^>]*>`)
	inlineStyle  = regexp.MustCompile(`(?i)(<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:)`)
)

// checkNoInline fails when html has a script without src, a style element
// or attribute, an event-handler attribute or a javascript: URL.
func checkNoInline(t *testing.T, name, html string) {
	t.Helper()
	for _, tag := range inlineScript.FindAllString(html, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("%s: inline script %s", name, tag)
		}
	}
	if m := inlineStyle.FindString(html); m != "" {
		t.Errorf("%s: inline style or handler %q", name, m)
	}
}

func TestEveryPageHasTheSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.post("/signup", "username", "erin", "password", testPassword, "confirm_password", testPassword)
	pages := map[string]page{
		"login":   b.get("/login"),
		"signup":  b.get("/signup"),
		"refused": b.post("/login", "username", "erin", "password", "wrong password here"),
	}
	b.login("erin", testPassword)
	pages["account"] = b.get("/account")
	pages["password"] = b.get("/account/password")
	pages["lab"] = b.get("/lab")
	pages["compare"] = b.get("/lab/compare?decide=1&domains=no&services=yes&instant=no&browser=yes")
	pages["error"] = b.post("/logout")
	for name, p := range pages {
		t.Run(name, func(t *testing.T) {
			h := p.header
			want := contentSecurityPolicy
			if name == "lab" {
				want = labContentSecurityPolicy
			}
			if got := h.Get("Content-Security-Policy"); got != want {
				t.Fatalf("CSP %q", got)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("headers %v", h)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(p.body, `name="viewport"`) {
				t.Fatalf("not a page: %v", h)
			}
			checkNoInline(t, name, p.body)
		})
	}
	if !strings.Contains(contentSecurityPolicy, "script-src 'self'") || strings.Contains(contentSecurityPolicy, "unsafe") {
		t.Fatal("the CSP allows inline code")
	}
	// The templates themselves, whatever a page renders.
	err := fs.WalkDir(assets, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		checkNoInline(t, p, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Static assets: served with their type and nosniff; lab.js only
	// under /lab/static/.
	for path, ct := range map[string]string{"/static/style.css": "text/css", "/lab/static/lab.js": "text/javascript"} {
		p := b.get(path)
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), ct) || p.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: %d %v", path, p.status, p.header)
		}
	}
	if p := b.get("/static/lab.js"); p.status != http.StatusNotFound {
		t.Fatalf("/static/lab.js: %d", p.status)
	}
	if js, _ := assets.ReadFile("static/lab.js"); strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), "eval(") {
		t.Fatal("lab.js writes HTML or evaluates code")
	}
}

func TestOtherRequestsReachTheAPI(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/.well-known/jwks.json")
	if p.status != http.StatusOK || !strings.Contains(p.body, `"keys"`) {
		t.Fatalf("JWKS through the pages' handler: %d %s", p.status, p.body)
	}
	p = b.get("/no/such/thing")
	if p.status != http.StatusNotFound || p.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown path: %d %v", p.status, p.header)
	}
}

func TestLabOffWithoutLabConfig(t *testing.T) {
	e := newEnv(t, func(_ *httpapi.Config, w *Config) { w.Lab = nil })
	b := e.browser()
	for _, path := range []string{"/lab", "/lab/compare", "/lab/static/lab.js", "/lab/api/state"} {
		if p := b.get(path); p.status != http.StatusNotFound {
			t.Fatalf("%s: %d", path, p.status)
		}
	}
	if p := b.get("/login"); strings.Contains(p.body, `href="/lab"`) {
		t.Fatal("the navigation links to a lab that is off")
	}
}

func TestDeviceName(t *testing.T) {
	cases := []struct{ ua, want string }{
		{firefoxUA, "Firefox on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0", "Edge on Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"curl/8.5.0", "curl"},
		{"", "Unknown device"},
		{strings.Repeat("é", 50), strings.Repeat("é", 40) + "…"},
	}
	for _, tc := range cases {
		if got := deviceName(tc.ua); got != tc.want {
			t.Errorf("deviceName(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

// TestAccountListsTokenLogins: the device list shows logins in token mode
// too, and ending one from the page refuses its tokens at once.
func TestAccountListsTokenLogins(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.post("/signup", "username", "tess", "password", testPassword, "confirm_password", testPassword)
	b.login("tess", testPassword)
	// An API client logs in in token mode (a separate client, no cookies).
	api := e.browser()
	tok := api.raw(http.MethodPost, "/v1/token", "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"password"}, "username": {"tess"}, "password": {testPassword}}.Encode(), map[string]string{"User-Agent": "curl/8.0"})
	if tok.status != http.StatusOK {
		t.Fatalf("token: %d %s", tok.status, tok.body)
	}
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(tok.body), &pair); err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + pair.AccessToken}
	if me := api.do(http.MethodGet, "/v1/me", nil, bearer); me.status != http.StatusOK {
		t.Fatalf("me: %d", me.status)
	}
	p := b.get("/account")
	wantPage(t, p, http.StatusOK, "/account", "Apps and API clients", "curl/8.0")
	i := strings.Index(p.body, `action="/account/families/`)
	if i < 0 {
		t.Fatal("no end-login form")
	}
	action := p.body[i+len(`action="`):]
	action = action[:strings.IndexByte(action, '"')]
	p = b.post(action, "csrf_token", csrfField(t, p.body))
	wantPage(t, p, http.StatusOK, "/account?m=family", "That app login was ended")
	if me := api.do(http.MethodGet, "/v1/me", nil, bearer); me.status != http.StatusUnauthorized {
		t.Fatalf("the ended login's token still works: %d", me.status)
	}
}
