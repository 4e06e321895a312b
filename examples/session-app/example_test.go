package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/examples/internal/exampletest"
)

const password = "correct horse battery staple"

// browser is a client with a cookie jar that does not follow redirects, so
// that the test sees each answer.
type browser struct {
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{base: base, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request; a non-nil form is sent as a form post.
func (b *browser) do(t *testing.T, method, path string, form url.Values, header map[string]string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequestWithContext(context.Background(), method, b.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	res, err := b.c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: string(data)}
}

func (b *browser) want(t *testing.T, a answer, status int, location string) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if location != "" && a.header.Get("Location") != location {
		t.Fatalf("Location %q, want %q", a.header.Get("Location"), location)
	}
	return a
}

// cookie is the value of the named cookie the jar would send to path.
func (b *browser) cookie(t *testing.T, name string) string {
	u, err := url.Parse(b.base + "/notes")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// notes opens the notes page and returns it and the CSRF token it embeds.
func (b *browser) notes(t *testing.T) (page, token string) {
	t.Helper()
	a := b.want(t, b.do(t, "GET", "/notes", nil, nil), http.StatusOK, "")
	m := csrfField.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("the notes page has no CSRF field:\n%s", a.body)
	}
	return a.body, m[1]
}

func creds(username, pw string) url.Values {
	return url.Values{"username": {username}, "password": {pw}}
}

func start(t *testing.T) (base, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	base = exampletest.Start(t, run, "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	return base, dataDir
}

// TestSessionApp drives the application as a browser would: sign up, add
// notes with the form's CSRF token, log out; and checks every refusal.
func TestSessionApp(t *testing.T) {
	base, dataDir := start(t)
	if _, err := os.Stat(filepath.Join(dataDir, "gatehouse.db")); err != nil {
		t.Fatalf("Gatehouse's SQLite file: %v", err)
	}
	alice := newBrowser(t, base)

	// The login page: HTML, no script, strict headers.
	login := alice.want(t, alice.do(t, "GET", "/login", nil, nil), http.StatusOK, "")
	if !strings.Contains(login.body, `action="/login"`) || strings.Contains(login.body, "<script") {
		t.Fatalf("login page:\n%s", login.body)
	}
	if csp := login.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	alice.want(t, alice.do(t, "GET", "/static/style.css", nil, nil), http.StatusOK, "")
	alice.want(t, alice.do(t, "GET", "/", nil, nil), http.StatusSeeOther, "/notes")
	alice.want(t, alice.do(t, "GET", "/notes", nil, nil), http.StatusSeeOther, "/login")

	// Sign up: the API creates the account and the session; the app hands
	// the browser the session cookie.
	signup := alice.want(t, alice.do(t, "POST", "/signup", creds("alice", password), nil), http.StatusSeeOther, "/notes")
	line := signup.header.Get("Set-Cookie")
	for _, attr := range []string{"gh_session=", "Path=/", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(line, attr) {
			t.Fatalf("session cookie %q lacks %s", line, attr)
		}
	}
	page, token := alice.notes(t)
	if !strings.Contains(page, "<strong>alice</strong>") || strings.Contains(page, "<script") {
		t.Fatalf("notes page:\n%s", page)
	}
	// The token in the page is the session's, as the API tells it.
	cur := alice.want(t, alice.do(t, "GET", "/auth/v1/sessions/current", nil, nil), http.StatusOK, "")
	if !strings.Contains(cur.body, `"csrf_token":"`+token+`"`) {
		t.Fatalf("the page's CSRF token is not the session's: %s", cur.body)
	}

	bob := newBrowser(t, base)
	bob.want(t, bob.do(t, "POST", "/signup", creds("bob", password), nil), http.StatusSeeOther, "/notes")
	_, bobToken := bob.notes(t)
	stranger := newBrowser(t, base)

	t.Run("add a note", func(t *testing.T) {
		cases := []struct {
			name     string
			b        *browser
			form     url.Values
			header   map[string]string
			status   int
			location string
		}{
			{"the form's token", alice, url.Values{"text": {"first"}, "csrf_token": {token}}, nil, 303, "/notes"},
			{"the token in the header", alice, url.Values{"text": {"second"}}, map[string]string{"X-CSRF-Token": token}, 303, "/notes"},
			{"no token", alice, url.Values{"text": {"x"}}, nil, 403, ""},
			{"a wrong token", alice, url.Values{"text": {"x"}, "csrf_token": {"AAAA" + token[4:]}}, nil, 403, ""},
			{"another session's token", alice, url.Values{"text": {"x"}, "csrf_token": {bobToken}}, nil, 403, ""},
			{"from another site", alice, url.Values{"text": {"x"}, "csrf_token": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, ""},
			{"from another origin", alice, url.Values{"text": {"x"}, "csrf_token": {token}}, map[string]string{"Origin": "https://evil.example"}, 403, ""},
			{"no session", stranger, url.Values{"text": {"x"}, "csrf_token": {token}}, nil, 303, "/login"},
			{"an empty note", alice, url.Values{"text": {"  "}, "csrf_token": {token}}, nil, 400, ""},
			{"a long note", alice, url.Values{"text": {strings.Repeat("é", maxNoteLen+1)}, "csrf_token": {token}}, nil, 400, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				a := c.b.want(t, c.b.do(t, "POST", "/notes", c.form, c.header), c.status, c.location)
				if c.status == 403 && !strings.Contains(a.body, "Reload the page") {
					t.Fatalf("CSRF refusal page:\n%s", a.body)
				}
			})
		}
		page, _ := alice.notes(t)
		if !strings.Contains(page, "first") || !strings.Contains(page, "second") || strings.Contains(page, ">x<") {
			t.Fatalf("alice's notes:\n%s", page)
		}
	})

	t.Run("notes are escaped and private", func(t *testing.T) {
		alice.want(t, alice.do(t, "POST", "/notes", url.Values{"text": {"<script>alert(1)</script>"}, "csrf_token": {token}}, nil), 303, "/notes")
		page, _ := alice.notes(t)
		if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
			t.Fatalf("note not escaped:\n%s", page)
		}
		if page, _ := bob.notes(t); strings.Contains(page, "first") {
			t.Fatalf("bob sees alice's notes:\n%s", page)
		}
	})

	t.Run("log in", func(t *testing.T) {
		cases := []struct {
			name    string
			form    url.Values
			header  map[string]string
			status  int
			message string
		}{
			{"right password", creds("alice", password), nil, 303, ""},
			{"username in another case", creds("ALICE", password), nil, 303, ""},
			{"wrong password", creds("alice", password+"!"), nil, 401, "Wrong username or password."},
			{"unknown user", creds("nobody", password), nil, 401, "Wrong username or password."},
			{"no password", url.Values{"username": {"alice"}}, nil, 400, "Enter a username and a password."},
			{"from another site", creds("alice", password), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "another site"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := newBrowser(t, base)
				a := b.want(t, b.do(t, "POST", "/login", c.form, c.header), c.status, "")
				if c.status == 303 {
					if a.header.Get("Location") != "/notes" || b.cookie(t, "gh_session") == "" {
						t.Fatalf("login: Location %q, cookie %q", a.header.Get("Location"), b.cookie(t, "gh_session"))
					}
					return
				}
				if b.cookie(t, "gh_session") != "" || !strings.Contains(a.body, c.message) {
					t.Fatalf("refused login set a cookie or lacks %q:\n%s", c.message, a.body)
				}
			})
		}
	})

	t.Run("sign up", func(t *testing.T) {
		cases := []struct {
			name    string
			form    url.Values
			status  int
			message string
		}{
			{"a taken username", creds("Alice", password), 409, "taken"},
			{"a short password", creds("carol", "short"), 400, "8"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := newBrowser(t, base)
				a := b.want(t, b.do(t, "POST", "/signup", c.form, nil), c.status, "")
				if b.cookie(t, "gh_session") != "" || !strings.Contains(a.body, c.message) {
					t.Fatalf("refused sign-up set a cookie or lacks %q:\n%s", c.message, a.body)
				}
			})
		}
	})

	t.Run("log out", func(t *testing.T) {
		old := alice.cookie(t, "gh_session")
		alice.want(t, alice.do(t, "POST", "/logout", url.Values{}, nil), 403, "")
		alice.want(t, alice.do(t, "POST", "/logout", url.Values{"csrf_token": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}), 403, "")
		alice.want(t, alice.do(t, "POST", "/logout", url.Values{"csrf_token": {token}}, nil), 303, "/login")
		if alice.cookie(t, "gh_session") != "" {
			t.Fatal("logout left the session cookie in the jar")
		}
		alice.want(t, alice.do(t, "GET", "/notes", nil, nil), 303, "/login")
		// A copy of the cookie kept past the logout opens nothing.
		replay := newBrowser(t, base)
		replay.want(t, replay.do(t, "GET", "/notes", nil, map[string]string{"Cookie": "gh_session=" + old}), 303, "/login")
	})

	t.Run("a logout through the API ends the app's session", func(t *testing.T) {
		_, tok := bob.notes(t)
		bob.want(t, bob.do(t, "DELETE", "/auth/v1/sessions/current", nil, map[string]string{"X-CSRF-Token": tok}), 204, "")
		bob.want(t, bob.do(t, "GET", "/notes", nil, nil), 303, "/login")
	})

	alice.want(t, alice.do(t, "GET", "/auth/healthz", nil, nil), 200, "")
}

// TestTemporaryDataDir: without --data-dir the database lives in a
// temporary directory that is removed when the application stops.
func TestTemporaryDataDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(context.Background())
	out, in := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, in, io.Discard) }()
	buf := make([]byte, 256)
	n, err := out.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), exampletest.ListeningPrefix) {
		t.Fatalf("first output %q, %v", buf[:n], err)
	}
	dirs, _ := filepath.Glob(filepath.Join(tmp, "session-app-*", "gatehouse.db"))
	if len(dirs) != 1 {
		t.Fatalf("database files in TMPDIR: %v", dirs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "session-app-*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"dev on a public address", []string{"--addr", "0.0.0.0:8081"}, "non-loopback"},
		{"an unknown flag", []string{"--nope"}, "not defined"},
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
