// Package browser_test runs the browser tests of the Gatehouse pages and
// lab: Node's built-in test runner with playwright-core drives Debian's
// chromium (/usr/bin/chromium, never a downloaded browser) against the real
// gatehouse binary, built and started by this test.
//
// It needs `node` on PATH, /usr/bin/chromium and `npm ci` run in this
// directory; without them the test skips, except under CI=true, where it
// fails. Screenshots go to $GATEHOUSE_ARTIFACTS (default: a temporary
// directory removed after the test).
package browser_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
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

// Bounds of every wait.
const (
	buildTimeout = 3 * time.Minute  // go build of the server binary
	startTimeout = 30 * time.Second // from exec to "gatehouse listening"
	readyTimeout = 10 * time.Second // from "listening" to /readyz 200
	nodeTimeout  = 3 * time.Minute  // the whole node --test run
	exitTimeout  = 10 * time.Second // from SIGKILL to a process's exit
)

// chromiumPath is Debian's chromium; the tests never download a browser.
const chromiumPath = "/usr/bin/chromium"

// adminKey is the admin key of the servers: the lab acts with it, and the
// cross-site test reads the audit log with it.
const adminKey = "browser-e2e-admin-key-0123456789abcdefghij"

// testFiles are the node test files, run by one `node --test`.
var testFiles = []string{"pages.test.mjs", "crosssite.test.mjs", "lab.test.mjs"}

func TestBrowser(t *testing.T) {
	node := requireTools(t)
	artifacts := artifactsDir(t)
	bin := buildGatehouse(t)

	// Two servers: the lab's "let time pass" moves the clock of its whole
	// server, which would end the sessions of the other tests running at
	// the same time.
	site := startServer(t, bin, "--admin-key", adminKey)
	labSite := startServer(t, bin, "--admin-key", adminKey)
	other := startAttacker(t, site.url)

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec"}, testFiles...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = envWithoutGatehouse(
		"GATEHOUSE_URL="+site.url,
		"GATEHOUSE_URL_OTHER="+other,
		"GATEHOUSE_LAB_URL="+labSite.url,
		"GATEHOUSE_ADMIN_KEY="+adminKey,
		"GATEHOUSE_ARTIFACTS="+artifacts,
		"GATEHOUSE_CHROMIUM="+chromiumPath,
	)
	// Node runs each file in a child process, and each file its chromium:
	// on timeout, kill the whole process group, not only node.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = exitTimeout
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(100 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish within %s; output:\n%s\nserver stderr:\n%s\nlab server stderr:\n%s",
			nodeTimeout, out.String(), site.stderr, labSite.stderr)
	}
	if err != nil {
		t.Fatalf("node --test failed (%v) after %s; output:\n%s\nserver stderr:\n%s\nlab server stderr:\n%s",
			err, took, out.String(), site.stderr, labSite.stderr)
	}
	t.Logf("node --test passed in %s; output:\n%s", took, out.String())
	shots, _ := filepath.Glob(filepath.Join(artifacts, "*.png"))
	t.Logf("screenshots in %s: %d", artifacts, len(shots))
}

// requireTools returns the path of node, or ends the test when node,
// chromium or the installed playwright-core is missing: a skip on a
// developer's machine, a failure under CI=true, where the tools are
// required.
func requireTools(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + "; install Node and Debian's chromium (apt-get install chromium) and run `npm ci` in e2e/browser"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: the tools are required in CI)", msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	if fi, err := os.Stat(chromiumPath); err != nil || fi.IsDir() {
		missing(chromiumPath + " is missing")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		missing("e2e/browser/node_modules/playwright-core is missing")
	}
	return node
}

// artifactsDir is $GATEHOUSE_ARTIFACTS (created, made absolute), or a
// temporary directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GATEHOUSE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("GATEHOUSE_ARTIFACTS %q: %v", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		t.Fatalf("create GATEHOUSE_ARTIFACTS: %v", err)
	}
	return abs
}

// buildGatehouse builds the server binary into a temporary directory and
// returns its path.
func buildGatehouse(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("find the module root: go env GOMOD = %q, %v", gomod, err)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/gatehouse-auth/gatehouse/cmd/gatehouse")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// envWithoutGatehouse is the test's environment less every GATEHOUSE_
// variable, plus extra.
func envWithoutGatehouse(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// lockedBuffer collects a child's stderr; safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is a running `gatehouse serve --dev`.
type server struct {
	url    string
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
}

// listeningURL finds the URL in the slog text line "gatehouse listening".
var listeningURL = regexp.MustCompile(`\burl=(http://127\.0\.0\.1:\d+)`)

// startServer starts the binary in dev mode on a free port of 127.0.0.1
// (and nowhere else) with a fresh data directory, and returns once /readyz
// answers 200. The process is killed when the test ends; its stderr is
// drained all along.
func startServer(t *testing.T, bin string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = envWithoutGatehouse()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("stderr pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gatehouse: %v", err)
	}
	s := &server{stderr: &lockedBuffer{}, done: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		timer := time.NewTimer(exitTimeout)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
			t.Errorf("gatehouse (pid %d) did not exit within %s of SIGKILL", cmd.Process.Pid, exitTimeout)
		}
	})

	urlc := make(chan string, 1)
	go func() {
		defer close(s.done)
		br := bufio.NewReader(pipe)
		found := false
		for {
			line, err := br.ReadString('\n')
			s.stderr.Write([]byte(line))
			if !found && strings.Contains(line, "gatehouse listening") {
				if m := listeningURL.FindStringSubmatch(line); m != nil {
					found = true
					urlc <- m[1]
				}
			}
			if err != nil {
				break
			}
		}
		_ = cmd.Wait() // every read of the pipe is done
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case s.url = <-urlc:
	case <-s.done:
		t.Fatalf("gatehouse exited before listening; stderr:\n%s", s.stderr)
	case <-timer.C:
		t.Fatalf("gatehouse did not log \"gatehouse listening\" within %s; stderr:\n%s", startTimeout, s.stderr)
	}
	s.waitReady(t)
	return s
}

// waitReady polls /readyz until it answers 200, within readyTimeout.
func (s *server) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	last := "no answer yet"
	for {
		resp, err := client.Get(s.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-tick.C:
		case <-s.done:
			t.Fatalf("gatehouse exited while waiting for /readyz; stderr:\n%s", s.stderr)
		case <-deadline.C:
			t.Fatalf("/readyz not 200 within %s (last: %s); stderr:\n%s", readyTimeout, last, s.stderr)
		}
	}
}

// attackPages are the pages of the attacker's site. Each reports what it
// did in its <output id=result>; the browser tests read it and the
// server's answers.
var attackPages = template.Must(template.New("").Parse(`
{{define "form"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
<h1>Win a prize</h1>
<form id="f" method="POST" action="{{.Target}}/logout">
<input type="hidden" name="csrf_token" value="guessed">
</form>
<script>document.getElementById('f').submit();</script>
</body></html>
{{end}}
{{define "fetch"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
<h1>Win a prize</h1>
<output id="result">running</output>
<script>
(async function () {
  const target = {{.Target}};
  const attacks = [
    // Login CSRF: log the victim's browser in as the attacker.
    [target + '/v1/sessions', JSON.stringify({username: {{.AttackerUser}}, password: {{.AttackerPassword}}})],
    // Change the victim's password.
    [target + '/v1/me/password', JSON.stringify({current_password: 'guess-guess-guess', new_password: 'attacker-chosen-password'})],
  ];
  const out = [];
  for (const [url, body] of attacks) {
    try {
      // text/plain keeps it a "simple" request: no preflight, the browser
      // sends it as it is, with the cookies credentials: 'include' allows.
      const res = await fetch(url, {method: 'POST', credentials: 'include', headers: {'Content-Type': 'text/plain'}, body});
      out.push(url + ' read ' + res.status);
    } catch (e) {
      out.push(url + ' unreadable: ' + e.name);
    }
  }
  document.getElementById('result').textContent = 'done: ' + out.join('; ');
})();
</script>
</body></html>
{{end}}`))

// Attacker credentials: the login-CSRF page tries to log the victim in as
// this user (the browser test creates it on the target).
const (
	attackerUser     = "attacker-user"
	attackerPassword = "attacker-password-0123"
)

// startAttacker serves the attacker's pages on 127.0.0.2, a loopback
// address the browser treats as another site than 127.0.0.1, and returns
// its base URL.
func startAttacker(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2 (the attacker's origin, a loopback address on Linux): %v", err)
	}
	data := map[string]string{"Target": target, "AttackerUser": attackerUser, "AttackerPassword": attackerPassword}
	mux := http.NewServeMux()
	for _, name := range []string{"form", "fetch"} {
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			if err := attackPages.ExecuteTemplate(w, name, data); err != nil {
				t.Errorf("attack page %s: %v", name, err)
			}
		})
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("attacker server shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("attacker server: %v", err)
		}
	})
	return fmt.Sprintf("http://%s", ln.Addr())
}
