// Package testbin runs the real gatehouse binary for end-to-end and
// integration tests, and only for tests: it imports testing, and no
// production code may import it.
//
// Build compiles ./cmd/gatehouse once per test binary; Start runs
// `gatehouse serve` on it as a child process, waits until it listens and
// /readyz answers 200, and kills it when the test ends. A package that
// calls Build removes the binary from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }
//
// RequireTool and Missing apply the rule for what a test needs from the
// machine: without it the test is skipped, except in CI (CI=true), where
// it fails, because CI must install it.
package testbin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the waits. Generous: the machine may be busy with -race.
const (
	buildTimeout = 5 * time.Minute  // go build of the binary
	startTimeout = 30 * time.Second // from exec to "gatehouse listening" (RS256 key generation included)
	readyTimeout = 20 * time.Second // from "listening" to /readyz 200
	stopTimeout  = 30 * time.Second // from Stop's signal to the exit (the default shutdown timeout is 15s)
	killTimeout  = 10 * time.Second // from SIGKILL to the exit
	pollInterval = 25 * time.Millisecond
)

// mainPackage is the package Build compiles.
const mainPackage = "github.com/gatehouse-auth/gatehouse/cmd/gatehouse"

var (
	build    sync.Once
	binDir   string // the temporary directory of the binary, removed by Main
	binPath  string
	buildErr error
)

// Main runs the tests of m and then removes the binary Build made, if any.
// It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// Build compiles the gatehouse command (without -race) once per test
// binary and returns the path of the executable. It fails the test when
// the build fails.
func Build(t testing.TB) string {
	t.Helper()
	build.Do(func() { binPath, buildErr = compile() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// compile runs go build from the module root into a new temporary
// directory.
func compile() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("testbin: find the module root: go env GOMOD = %q, %v", gomod, err)
	}
	dir, err := os.MkdirTemp("", "gatehouse-testbin-")
	if err != nil {
		return "", fmt.Errorf("testbin: temporary directory: %w", err)
	}
	binDir = dir
	bin := filepath.Join(dir, "gatehouse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, mainPackage)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testbin: go build %s: %w\n%s", mainPackage, err, out)
	}
	return bin, nil
}

// Env is the test process's environment without any GATEHOUSE_ variable,
// plus extra: only the flags and extra configure a child.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Buffer collects a child's output; it is safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Server is a running `gatehouse serve`.
type Server struct {
	// URL is the base URL the server logged, e.g. http://127.0.0.1:41234.
	URL string

	t       testing.TB
	cmd     *exec.Cmd
	stderr  *Buffer
	done    chan struct{} // closed when the process has exited
	exitErr error         // the result of Wait, valid after done
}

// listeningURL finds the URL in the "gatehouse listening" line, in text
// (url=...) or JSON ("url":"...") logs.
var listeningURL = regexp.MustCompile(`url=(\S+)|"url":"([^"]+)"`)

// Start runs `gatehouse serve args...` with the binary of Build, in its
// own process group and with the environment of Env, and returns once it
// has logged "gatehouse listening" and /readyz answers 200. Its stderr is
// drained all along into Stderr. The process group is killed when the test
// ends. Start fails the test when the server exits first or is not ready
// in time.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	args = append([]string{"serve"}, args...)
	cmd := exec.Command(Build(t), args...)
	cmd.Env = Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("testbin: stderr pipe: %v", err)
	}
	s := &Server{t: t, cmd: cmd, stderr: &Buffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testbin: start gatehouse %v: %v", args, err)
	}
	// Registered before anything can fail: the process never outlives its
	// test.
	t.Cleanup(s.kill)

	urlc := make(chan string, 1)
	go s.drain(pipe, urlc)

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case s.URL = <-urlc:
	case <-s.done:
		t.Fatalf("gatehouse %v exited before listening (%v); stderr:\n%s", args, s.exitErr, s.stderr)
	case <-timer.C:
		t.Fatalf("gatehouse %v did not log \"gatehouse listening\" within %s; stderr:\n%s", args, startTimeout, s.stderr)
	}
	s.waitReady()
	return s
}

// drain copies the process's stderr into s.stderr line by line, sends the
// URL of the "gatehouse listening" line on urlc, and then waits for the
// process.
func (s *Server) drain(pipe io.Reader, urlc chan<- string) {
	br := bufio.NewReader(pipe)
	found := false
	for {
		line, err := br.ReadString('\n')
		s.stderr.Write([]byte(line))
		if !found && strings.Contains(line, "gatehouse listening") {
			if m := listeningURL.FindStringSubmatch(line); m != nil {
				found = true
				urlc <- m[1] + m[2]
			}
		}
		if err != nil {
			break
		}
	}
	// Every read of the pipe is done: Wait may close it now.
	s.exitErr = s.cmd.Wait()
	close(s.done)
}

// waitReady polls /readyz until it answers 200, within readyTimeout.
func (s *Server) waitReady() {
	s.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	last := "no answer yet"
	for {
		resp, err := client.Get(s.URL + "/readyz")
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
			s.t.Fatalf("gatehouse exited while waiting for /readyz (%v); stderr:\n%s", s.exitErr, s.stderr)
		case <-deadline.C:
			s.t.Fatalf("/readyz not 200 within %s (last: %s); stderr:\n%s", readyTimeout, last, s.stderr)
		}
	}
}

// Stderr returns what the server has written to its stderr so far.
func (s *Server) Stderr() string { return s.stderr.String() }

// Stop sends sig to the server, waits for it to exit and returns its exit
// code: 0, the code it exited with, or -1 when a signal ended it. It fails
// the test when the server does not exit within 30 seconds.
func (s *Server) Stop(sig os.Signal) int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("testbin: signal %v to gatehouse: %v", sig, err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Fatalf("gatehouse did not exit within %s of %v; stderr:\n%s", stopTimeout, sig, s.stderr)
	}
	code, err := exitCode(s.exitErr)
	if err != nil {
		s.t.Fatalf("testbin: wait for gatehouse: %v", err)
	}
	return code
}

// kill ends the process group if the server still runs, and waits for it.
func (s *Server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	timer := time.NewTimer(killTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.t.Errorf("gatehouse (pid %d) did not exit within %s of SIGKILL", s.cmd.Process.Pid, killTimeout)
	}
}

// exitCode is the exit code in the result of Wait: 0, the process's code,
// or -1 when a signal ended it. Another error of Wait is returned.
func exitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// sbinDirs are searched after PATH: Debian installs nginx in /usr/sbin,
// which a normal user's PATH lacks.
var sbinDirs = []string{"/usr/sbin", "/usr/local/sbin"}

// FindTool returns the path of the program name, looked up on PATH and
// then in /usr/sbin and /usr/local/sbin. When it is missing, it returns
// instead why the test fails (in CI) or is skipped (elsewhere).
func FindTool(name string) (path, fail, skip string) {
	return toolDecision(lookTool, os.Getenv, name)
}

// RequireTool returns the path of the program name (see FindTool). When it
// is missing, it skips the test, or fails it in CI.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, fail, skip := FindTool(name)
	end(t, fail, skip)
	return path
}

// Missing ends the test because what it needs is missing: what says what
// and how to install it. It skips the test, or fails it in CI.
func Missing(t testing.TB, what string) {
	t.Helper()
	fail, skip := absent(os.Getenv, what)
	end(t, fail, skip)
}

func end(t testing.TB, fail, skip string) {
	t.Helper()
	switch {
	case fail != "":
		t.Fatal(fail)
	case skip != "":
		t.Skip(skip)
	}
}

// toolDecision returns the path of the program name found by find, or why
// the test fails (in CI) or is skipped (elsewhere) without it.
func toolDecision(find func(string) (string, bool), getenv func(string) string, name string) (path, fail, skip string) {
	if p, ok := find(name); ok {
		return p, "", ""
	}
	fail, skip = absent(getenv, name+" is not installed: not on PATH nor in "+strings.Join(sbinDirs, ", "))
	return "", fail, skip
}

// absent is the rule for a missing requirement: in CI (CI parses as true
// with strconv.ParseBool) the test fails, elsewhere it is skipped.
func absent(getenv func(string) string, what string) (fail, skip string) {
	if ci, err := strconv.ParseBool(getenv("CI")); err == nil && ci {
		return what + " (CI=true: CI must install it)", ""
	}
	return "", what + " (skipping; with CI=true this fails)"
}

// lookTool looks for name on PATH, then in sbinDirs.
func lookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
