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
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/testbin"
)

// Bounds of every wait (testbin bounds the servers' start and stop).
const (
	nodeTimeout = 3 * time.Minute  // the whole node --test run
	exitTimeout = 10 * time.Second // from SIGKILL to a process's exit
)

// chromiumPath is Debian's chromium; the tests never download a browser.
const chromiumPath = "/usr/bin/chromium"

// adminKey is the admin key of the servers: the lab acts with it, and the
// cross-site test reads the audit log with it.
const adminKey = "browser-e2e-admin-key-0123456789abcdefghij"

// testFiles are the node test files, run by one `node --test`.
var testFiles = []string{"pages.test.mjs", "crosssite.test.mjs", "lab.test.mjs"}

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

func TestBrowser(t *testing.T) {
	node := requireTools(t)
	artifacts := artifactsDir(t)

	// Two servers: the lab's "let time pass" moves the clock of its whole
	// server, which would end the sessions of the other tests running at
	// the same time.
	site := startServer(t, "--admin-key", adminKey)
	labSite := startServer(t, "--admin-key", adminKey)
	other := startAttacker(t, site.URL)

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec"}, testFiles...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = testbin.Env(
		"GATEHOUSE_URL="+site.URL,
		"GATEHOUSE_URL_OTHER="+other,
		"GATEHOUSE_LAB_URL="+labSite.URL,
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
			nodeTimeout, out.String(), site.Stderr(), labSite.Stderr())
	}
	if err != nil {
		t.Fatalf("node --test failed (%v) after %s; output:\n%s\nserver stderr:\n%s\nlab server stderr:\n%s",
			err, took, out.String(), site.Stderr(), labSite.Stderr())
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
	node := testbin.RequireTool(t, "node")
	if fi, err := os.Stat(chromiumPath); err != nil || fi.IsDir() {
		testbin.Missing(t, chromiumPath+" is missing; install Debian's chromium (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		testbin.Missing(t, "e2e/browser/node_modules/playwright-core is missing; run `npm ci` in e2e/browser")
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

// startServer starts the binary in dev mode on a free port of 127.0.0.1
// (and nowhere else) with a fresh data directory, and returns once /readyz
// answers 200. The process is killed when the test ends; its stderr is
// drained all along.
func startServer(t *testing.T, extra ...string) *testbin.Server {
	t.Helper()
	return testbin.Start(t, append([]string{"--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, extra...)...)
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
