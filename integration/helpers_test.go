package integration

// Helpers of the gateway tests: build and run the gatehouse binary, run
// nginx and Caddy with their own configuration in a temporary directory,
// and a demo upstream that echoes the identity it was given.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/testbin"
)

// Bounds of the waits. Generous: the machine may be busy with -race.
// testbin bounds gatehouse's start and stop.
const (
	startTimeout = 20 * time.Second // from exec to listening
	stopTimeout  = 10 * time.Second // from SIGTERM (then SIGKILL) to exit
	pollInterval = 20 * time.Millisecond
)

// testAdminKey is the admin key of the gatehouse processes (40 characters).
const testAdminKey = "integration-admin-key-0123456789abcdefgh"

// The identity headers of forward-auth (spec: "Any credential").
var identityHeaders = []string{
	"X-Gatehouse-User-Id",
	"X-Gatehouse-Username",
	"X-Gatehouse-Auth-Mode",
	"X-Gatehouse-Token",
}

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// proc is a child process of a test, in its own process group.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	output *testbin.Buffer // stdout and stderr
	logs   func() string   // more diagnostics (log files), may be nil
	done   chan struct{}   // closed when the process has exited
	err    error           // the result of Wait, valid after done
}

// startProc starts cmd and registers its end in t.Cleanup.
func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, output: &testbin.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	// Its own group: nginx's workers can be ended with their master.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// diagnostics is what the process wrote, for failure messages.
func (p *proc) diagnostics() string {
	s := p.output.String()
	if p.logs != nil {
		s += p.logs()
	}
	return s
}

// stop ends the process: SIGTERM, then SIGKILL to its whole group when it
// does not exit in time. It waits for the exit either way.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return
	case <-timer.C:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	timer.Reset(stopTimeout)
	select {
	case <-p.done:
	case <-timer.C:
		p.t.Errorf("%s (pid %d) did not exit within %s of SIGKILL", p.name, p.cmd.Process.Pid, stopTimeout)
	}
}

// waitFor polls cond every pollInterval until it is true, the process
// exits, or timeout passes.
func (p *proc) waitFor(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before %s; output:\n%s", p.name, p.err, what, p.diagnostics())
		case <-deadline.C:
			return fmt.Errorf("%s: no %s within %s; output:\n%s", p.name, what, timeout, p.diagnostics())
		case <-tick.C:
		}
	}
}

// waitTCP waits until addr accepts connections.
func (p *proc) waitTCP(addr string) error {
	return p.waitFor("listener on "+addr, startTimeout, func() bool {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Another process may take it before the gateway binds it: the
// starters retry on "address already in use".
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func addrInUse(s string) bool {
	return strings.Contains(strings.ToLower(s), "address already in use")
}

// renderTemplate renders the text/template file at path with data.
func renderTemplate(t *testing.T, path string, data any) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New(filepath.Base(path)).Option("missingkey=error").Parse(string(src))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatalf("render %s: %v", path, err)
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gatehouse is a running `gatehouse serve --dev`.
type gatehouse struct {
	srv  *testbin.Server
	url  string // http://127.0.0.1:port
	addr string // 127.0.0.1:port
	// forwardToken is true when it adds X-Gatehouse-Token to its answers.
	forwardToken bool
}

// startGatehouse starts gatehouse serve on a free loopback port, trusting
// loopback proxies, with extra flags; it returns once /readyz answers 200.
func startGatehouse(t *testing.T, extra ...string) *gatehouse {
	t.Helper()
	args := append([]string{
		"--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--admin-key", testAdminKey, "--trusted-proxies", "127.0.0.1/32",
	}, extra...)
	srv := testbin.Start(t, args...)
	g := &gatehouse{srv: srv, url: srv.URL, forwardToken: slices.Contains(extra, "--forward-token-audience")}
	u, err := url.Parse(g.url)
	if err != nil {
		t.Fatalf("listening URL %q: %v", g.url, err)
	}
	g.addr = u.Host
	return g
}

// echoed is what the demo upstream answers: the identity it received.
type echoed struct {
	Method string `json:"method"`
	URI    string `json:"uri"`
	Body   string `json:"body"`
	// Identity holds every request header whose name starts with
	// X-Gatehouse- or X_Gatehouse_ (any case), under the name received.
	Identity      map[string][]string `json:"identity"`
	Authorization bool                `json:"authorization"`
	Cookie        bool                `json:"cookie"`
}

// upstream is the demo application behind a gateway.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		e := echoed{
			Method: r.Method, URI: r.RequestURI, Body: string(body),
			Identity:      map[string][]string{},
			Authorization: r.Header.Get("Authorization") != "",
			Cookie:        r.Header.Get("Cookie") != "",
		}
		for k, v := range r.Header {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "x-gatehouse-") || strings.HasPrefix(lk, "x_gatehouse_") {
				e.Identity[k] = v
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return u.srv.Listener.Addr().String() }

// newClient is an HTTP client without cookie jar or redirects, bounded.
func newClient(t *testing.T) *http.Client {
	c := &http.Client{
		Timeout:       15 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	body         string
	contentType  string      // default application/json when body != ""
	header       http.Header // sent as is: several values, any case
	cookies      []*http.Cookie
	bearer       string
}

// response is an HTTP response, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

func (r response) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	return nil
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not the JSON expected: %v\n%s", r.status, err, r.body)
	}
}

// send sends rq to base and reads the whole answer.
func send(t *testing.T, c *http.Client, base string, rq request) response {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, base+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.body != "" {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, vs := range rq.header {
		// Not canonicalised: the name goes on the wire as written.
		req.Header[k] = append(req.Header[k], vs...)
	}
	for _, ck := range rq.cookies {
		req.AddCookie(ck)
	}
	if rq.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", rq.method, base, rq.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: read body: %v", rq.method, base, rq.path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// account is a user created for a test, with its credentials.
type account struct {
	id, username, password string
}

// signup creates a user through base (a gateway or gatehouse itself).
func signup(t *testing.T, c *http.Client, base, username string) account {
	t.Helper()
	a := account{username: username, password: "correct horse battery " + username}
	r := send(t, c, base, request{method: "POST", path: "/v1/users", body: jsonBody(map[string]string{"username": a.username, "password": a.password})})
	if r.status != http.StatusCreated {
		t.Fatalf("sign-up %s: %s", username, r)
	}
	var u struct{ ID string }
	r.json(t, &u)
	a.id = u.ID
	return a
}

// session is a logged-in session: its cookie and CSRF token.
type session struct {
	cookie *http.Cookie
	csrf   string
}

// login logs in with POST /v1/sessions through base; header is added to
// the request (an Origin, for example).
func login(t *testing.T, c *http.Client, base string, a account, header http.Header) session {
	t.Helper()
	r := send(t, c, base, request{method: "POST", path: "/v1/sessions", header: header,
		body: jsonBody(map[string]string{"username": a.username, "password": a.password})})
	if r.status != http.StatusCreated {
		t.Fatalf("login %s: %s", a.username, r)
	}
	var b struct {
		CSRF string `json:"csrf_token"`
	}
	r.json(t, &b)
	ck := r.cookie("gh_session")
	if ck == nil || b.CSRF == "" {
		t.Fatalf("login %s: no gh_session cookie or csrf_token: %v %s", a.username, r.header.Values("Set-Cookie"), r.body)
	}
	return session{cookie: ck, csrf: b.CSRF}
}

// passwordGrant gets an access token with POST /v1/token through base.
func passwordGrant(t *testing.T, c *http.Client, base string, a account) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {a.username}, "password": {a.password}}
	r := send(t, c, base, request{method: "POST", path: "/v1/token", body: form.Encode(), contentType: "application/x-www-form-urlencoded"})
	if r.status != http.StatusOK {
		t.Fatalf("password grant %s: %s", a.username, r)
	}
	var b struct {
		AccessToken string `json:"access_token"`
	}
	r.json(t, &b)
	if b.AccessToken == "" {
		t.Fatalf("password grant %s: no access_token: %s", a.username, r.body)
	}
	return b.AccessToken
}

// hybridLogin gets the hybrid-mode cookies (delivery=cookie) through base:
// the access cookie and the CSRF token of its family.
func hybridLogin(t *testing.T, c *http.Client, base string, a account) session {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {a.username}, "password": {a.password}, "delivery": {"cookie"}}
	r := send(t, c, base, request{method: "POST", path: "/v1/token", body: form.Encode(), contentType: "application/x-www-form-urlencoded"})
	if r.status != http.StatusOK {
		t.Fatalf("cookie grant %s: %s", a.username, r)
	}
	var b struct {
		CSRF string `json:"csrf_token"`
	}
	r.json(t, &b)
	ck := r.cookie("gh_access")
	if ck == nil || b.CSRF == "" {
		t.Fatalf("cookie grant %s: no gh_access cookie or csrf_token: %v %s", a.username, r.header.Values("Set-Cookie"), r.body)
	}
	return session{cookie: ck, csrf: b.CSRF}
}

// jwtParts decodes the header and the claims of a compact JWS, without
// verifying it.
func jwtParts(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", raw)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWS part %q: %v", s, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("JWS part %q: %v", b, err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

// audiences is the aud claim as a list.
func audiences(claims map[string]any) []string {
	switch v := claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
