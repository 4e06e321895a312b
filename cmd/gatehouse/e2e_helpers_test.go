package main

// Helpers of the end-to-end tests: they build the real gatehouse binary
// once, run it as a child process on a free loopback port, and talk to it
// over real HTTP.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the waits. Generous: the machine may be busy with -race.
const (
	startTimeout = 30 * time.Second // from exec to "gatehouse listening"
	readyTimeout = 10 * time.Second // from "listening" to /readyz 200
	exitTimeout  = 20 * time.Second // from a signal to the process's exit
	cliTimeout   = 60 * time.Second // one CLI command
)

// e2eAdminKey is the admin key of the servers started by the tests.
const e2eAdminKey = "e2e-admin-key-0123456789abcdef-0123456789"

var (
	binDir   string // set by TestMain, removed after the tests
	build    sync.Once
	binPath  string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gatehouseBinary builds the binary (once per test run, without -race) and
// returns its path.
func gatehouseBinary(t *testing.T) string {
	t.Helper()
	build.Do(func() {
		p := filepath.Join(binDir, "gatehouse")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", p, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		binPath = p
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// cleanEnv is the test process's environment without any GATEHOUSE_
// variable, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// syncBuffer collects a child's output; safe for concurrent use.
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

// server is a running gatehouse serve process.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string // e.g. http://127.0.0.1:41234
	stderr  *syncBuffer
	done    chan struct{} // closed when the process has exited
	exitErr error         // the result of Wait, valid after done
	client  *http.Client
}

// listeningRE finds the URL in the "gatehouse listening" line, in text or
// JSON logs.
var listeningRE = regexp.MustCompile(`url=(\S+)|"url":"([^"]+)"`)

// startServer starts `gatehouse serve --dev --addr 127.0.0.1:0 --data-dir
// dataDir` plus extra flags, and returns once /readyz answers 200.
func startServer(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	s, err := launch(t, cleanEnv(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// launch starts the binary with args and env and waits until it is ready.
// It returns an error (with the process's stderr) when the process exits
// first or does not get ready in time.
func launch(t *testing.T, env []string, args ...string) (*server, error) {
	t.Helper()
	cmd := exec.Command(gatehouseBinary(t), args...)
	cmd.Env = env
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	s := &server{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %v: %w", args, err)
	}
	// Registered before anything can fail: the process never outlives its
	// test.
	t.Cleanup(s.kill)

	urlc := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pipe)
		found := false
		for {
			line, err := br.ReadString('\n')
			s.stderr.Write([]byte(line))
			if !found && strings.Contains(line, "gatehouse listening") {
				if m := listeningRE.FindStringSubmatch(line); m != nil {
					found = true
					urlc <- m[1] + m[2]
				}
			}
			if err != nil {
				break
			}
		}
		// Every read of the pipe is done: Wait may close it now.
		s.exitErr = cmd.Wait()
		close(s.done)
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case s.url = <-urlc:
	case <-s.done:
		return nil, fmt.Errorf("gatehouse %v exited before listening (%v); stderr:\n%s", args, s.exitErr, s.stderr)
	case <-deadline.C:
		return nil, fmt.Errorf("gatehouse %v did not log \"gatehouse listening\" within %s; stderr:\n%s", args, startTimeout, s.stderr)
	}
	s.client = newClient()
	t.Cleanup(s.client.CloseIdleConnections)
	if err := s.waitReady(); err != nil {
		return nil, err
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200, within readyTimeout.
func (s *server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		resp, err := s.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not 200 within %s (last: %v); stderr:\n%s", readyTimeout, describe(resp, err), s.stderr)
		}
		wait := time.NewTimer(20 * time.Millisecond)
		select {
		case <-wait.C:
		case <-s.done:
			wait.Stop()
			return fmt.Errorf("gatehouse exited while waiting for /readyz (%v); stderr:\n%s", s.exitErr, s.stderr)
		}
	}
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// kill ends the process if it still runs and waits for it.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	timer := time.NewTimer(exitTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Errorf("gatehouse (pid %d) did not exit after SIGKILL within %s", s.cmd.Process.Pid, exitTimeout)
	}
}

// signal sends sig and waits for the process to exit, within timeout. It
// returns the exit code (-1 when killed by a signal) and how long the exit
// took.
func (s *server) signal(sig os.Signal, timeout time.Duration) (int, time.Duration) {
	s.t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Fatalf("gatehouse did not exit within %s of %v; stderr:\n%s", timeout, sig, s.stderr)
	}
	return exitCodeOf(s.exitErr), time.Since(start)
}

// exitCodeOf is the exit code in the result of Wait: 0, the process's
// code, or -1 when a signal ended it.
func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	return -2
}

// newClient is an HTTP client with its own connection pool, no cookie jar
// (the tests handle cookies themselves) and a bound on every request.
func newClient() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// call is one HTTP request of a test.
type call struct {
	method, path string
	body         string            // sent as is
	contentType  string            // default application/json when body != ""
	headers      map[string]string // extra headers
	cookie       *http.Cookie      // sent when not nil
}

// result is an HTTP response, read in full.
type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v\n%s", r.status, err, r.body)
	}
	return m
}

// try sends c and returns the response or the transport error.
func (s *server) try(ctx context.Context, c call) (result, error) {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, s.url+c.path, body)
	if err != nil {
		return result{}, err
	}
	if c.body != "" {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	if c.cookie != nil {
		req.AddCookie(&http.Cookie{Name: c.cookie.Name, Value: c.cookie.Value})
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// do sends c and fails the test on a transport error.
func (s *server) do(c call) result {
	s.t.Helper()
	r, err := s.try(context.Background(), c)
	if err != nil {
		s.t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	return r
}

// wantStatus fails the test unless r has the status want.
func wantStatus(t *testing.T, what string, r result, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: status %d, want %d; body: %s", what, r.status, want, r.body)
	}
}

// wantProblem fails the test unless r is a problem+json with the status
// want and a type whose last segment is class.
func wantProblem(t *testing.T, what string, r result, want int, class string) {
	t.Helper()
	wantStatus(t, what, r, want)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s: Content-Type %q, want application/problem+json; body: %s", what, ct, r.body)
	}
	p := r.json(t)
	typ, _ := p["type"].(string)
	if class != "" && !strings.HasSuffix(typ, "/"+class) {
		t.Fatalf("%s: problem type %q, want …/%s", what, typ, class)
	}
	if st, _ := p["status"].(float64); int(st) != want {
		t.Fatalf("%s: problem status member %v, want %d", what, p["status"], want)
	}
}

func credJSON(username, password string) string {
	b, _ := json.Marshal(map[string]string{"username": username, "password": password})
	return string(b)
}

// login is a logged-in session: the cookie and its CSRF token.
type login struct {
	cookie    *http.Cookie
	csrf      string
	sessionID string
	userID    string
}

// signup creates a user through the API and returns its id.
func (s *server) signup(username, password string) string {
	s.t.Helper()
	r := s.do(call{method: "POST", path: "/v1/users", body: credJSON(username, password)})
	wantStatus(s.t, "signup "+username, r, http.StatusCreated)
	return r.json(s.t)["id"].(string)
}

// login logs in through the API and fails the test unless it succeeds.
func (s *server) login(username, password string) login {
	s.t.Helper()
	r := s.do(call{method: "POST", path: "/v1/sessions", body: credJSON(username, password)})
	wantStatus(s.t, "login "+username, r, http.StatusCreated)
	return loginFrom(s.t, r)
}

func loginFrom(t *testing.T, r result) login {
	t.Helper()
	c := r.cookie("gh_session")
	if c == nil {
		t.Fatalf("login response without a gh_session cookie: %v", r.header.Values("Set-Cookie"))
	}
	body := r.json(t)
	sess, _ := body["session"].(map[string]any)
	user, _ := body["user"].(map[string]any)
	csrf, _ := body["csrf_token"].(string)
	if sess == nil || user == nil || csrf == "" {
		t.Fatalf("login body lacks session, user or csrf_token: %s", r.body)
	}
	return login{
		cookie:    &http.Cookie{Name: c.Name, Value: c.Value},
		csrf:      csrf,
		sessionID: sess["id"].(string),
		userID:    user["id"].(string),
	}
}

// as sends c with l's cookie, and with its CSRF token when withCSRF.
func (s *server) as(l login, c call, withCSRF bool) result {
	s.t.Helper()
	c.cookie = l.cookie
	if withCSRF {
		h := map[string]string{"X-CSRF-Token": l.csrf}
		for k, v := range c.headers {
			h[k] = v
		}
		c.headers = h
	}
	return s.do(c)
}

// adminCall adds the admin key to c.
func adminCall(c call) call {
	h := map[string]string{"Authorization": "Bearer " + e2eAdminKey}
	for k, v := range c.headers {
		h[k] = v
	}
	c.headers = h
	return c
}

// cliResult is what a CLI command did.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the binary with args, stdin and a clean environment plus env,
// bounded by cliTimeout.
func runCLI(t *testing.T, stdin string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatehouseBinary(t), args...)
	cmd.Env = cleanEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %v did not finish within %s; stderr:\n%s", args, cliTimeout, errb.String())
	}
	code := exitCodeOf(err)
	if code == -2 {
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}
