package main

// The fault test: two `gatehouse serve` instances on a Redis and a
// PostgreSQL of the test's own (never the machine's shared servers), under
// a bounded load of verifications, logins, refreshes, signups and password
// changes, while the test stops and restarts Redis, then PostgreSQL. It
// checks the safety properties that docs/deployment.md ("Faults") claims:
// no 200 for a revoked credential, no acknowledged write lost, failures
// answered as clean 5xx, and recovery without restarting Gatehouse.
//
// It needs redis-server, PostgreSQL's initdb and postgres binaries, and
// root (to run PostgreSQL as the postgres OS user); it is skipped without
// them, and fails without them when CI=true.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bounds of the fault test.
const (
	// faultStaleAfter is the instances' --revocation-stale-after.
	faultStaleAfter = 500 * time.Millisecond
	// faultOutage is how long each backend stays down.
	faultOutage = 2 * time.Second
	// faultSteady is how long the load runs before a cut and after the
	// recovery.
	faultSteady = time.Second
	// faultRecoverBound is the generous bound on the instances' recovery
	// once the backend answers again.
	faultRecoverBound = 15 * time.Second
	// faultFailBound bounds how long after a cut /readyz must answer 503.
	faultFailBound = 5 * time.Second
	// faultBackendStart bounds the start of redis-server and postgres.
	faultBackendStart = 30 * time.Second
	// faultRequestTimeout bounds every request of the load: an instance
	// that does not answer within it fails the test.
	faultRequestTimeout = 10 * time.Second
	// faultMaxRequests bounds the requests of each phase's load.
	faultMaxRequests = 30000
	// faultVerifyWorkers (half on tokens, half on sessions) and
	// faultVerifyEvery pace the verification load (at most 800 requests a
	// second in all); faultWriteEvery paces each writer.
	faultVerifyWorkers = 4
	faultVerifyEvery   = 5 * time.Millisecond
	faultWriteEvery    = 60 * time.Millisecond
	// faultPropagation is how long after a revocation's answer another
	// instance may still accept the credential (multiPropagationBound).
	faultPropagation = multiPropagationBound
)

// faultNeed skips the test unless ok, or fails it in CI (CI=true), where a
// skipped fault test would pass unnoticed.
func faultNeed(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if ci, err := strconv.ParseBool(os.Getenv("CI")); err == nil && ci {
		t.Fatalf("%s: CI must run the fault test", why)
	}
	t.Skipf("%s: skipping the fault test", why)
}

// faultFreePort returns a loopback TCP port that was free a moment ago.
func faultFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// faultProc is a backend process started by the test.
type faultProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // the result of Wait, valid after done
}

// faultSpawn starts bin with args, as cred's user when cred is not nil, in
// dir. The process is killed when the test ends.
func faultSpawn(t *testing.T, name string, cred *syscall.Credential, dir, bin string, args ...string) *faultProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	p := &faultProc{t: t, name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.kill)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// stop sends sig and waits for the exit within timeout; past it, it kills
// the process and fails the test.
func (p *faultProc) stop(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
	timer := time.NewTimer(exitTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.kill()
		p.t.Fatalf("%s did not exit within %v of %v; output:\n%s", p.name, exitTimeout, sig, p.out)
	}
}

// kill ends the process if it still runs and waits for it.
func (p *faultProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	timer := time.NewTimer(exitTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.t.Errorf("%s (pid %d) did not exit after SIGKILL within %v", p.name, p.cmd.Process.Pid, exitTimeout)
	}
}

// faultWaitUp calls probe every 50 ms until it succeeds, the process
// exits, or faultBackendStart passes.
func faultWaitUp(t *testing.T, p *faultProc, probe func() error) {
	t.Helper()
	deadline := time.NewTimer(faultBackendStart)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := probe()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited while starting (%v); output:\n%s", p.name, p.err, p.out)
		case <-deadline.C:
			t.Fatalf("%s not up within %v (%v); output:\n%s", p.name, faultBackendStart, err, p.out)
		case <-tick.C:
		}
	}
}

// faultRedis is a redis-server of the test's own, without persistence: it
// comes back empty after a restart.
type faultRedis struct {
	t    *testing.T
	bin  string
	port int
	url  string
	proc *faultProc
}

func faultStartRedis(t *testing.T, bin string) *faultRedis {
	t.Helper()
	r := &faultRedis{t: t, bin: bin, port: faultFreePort(t)}
	r.url = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.start()
	return r
}

// start starts redis-server on the port and waits for its PONG.
func (r *faultRedis) start() {
	r.t.Helper()
	r.proc = faultSpawn(r.t, "redis-server", nil, os.TempDir(), r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	faultWaitUp(r.t, r.proc, r.ping)
}

// ping sends PING and wants +PONG.
func (r *faultRedis) ping() error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// faultPostgres is a PostgreSQL cluster of the test's own, run as the
// postgres OS user.
type faultPostgres struct {
	t         *testing.T
	binDir    string
	dir, data string
	port      int
	cred      *syscall.Credential
	url       string
	proc      *faultProc
}

func faultStartPostgres(t *testing.T, binDir string, pgUser *user.User) *faultPostgres {
	t.Helper()
	uid, err := strconv.ParseUint(pgUser.Uid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.ParseUint(pgUser.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "gatehouse-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the process starts: removed after it is killed.
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	p := &faultPostgres{
		t: t, binDir: binDir, dir: dir, data: filepath.Join(dir, "data"), port: faultFreePort(t),
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
	}
	p.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	return p
}

// start starts the postmaster and waits until it accepts a connection.
func (p *faultPostgres) start() {
	p.t.Helper()
	p.proc = faultSpawn(p.t, "postgres", p.cred, p.dir, filepath.Join(p.binDir, "postgres"),
		"-D", p.data, "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on")
	faultWaitUp(p.t, p.proc, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.url)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		return c.Ping(ctx)
	})
}

// stop is a fast shutdown (SIGINT): open transactions are rolled back,
// committed ones are on disk.
func (p *faultPostgres) stop() { p.proc.stop(syscall.SIGINT) }

// faultReady asks an instance's /readyz every 20 ms, each probe in a
// goroutine of its own (a probe that waits on a dead backend delays no
// other), and records every answer.
type faultReady struct {
	s      *server
	mu     sync.Mutex
	probes []faultProbe
}

// faultProbe is one /readyz request.
type faultProbe struct {
	began, ended time.Time
	status       int // 0: no answer
}

// faultProbesInFlight bounds the probes of one poller waiting at once.
const faultProbesInFlight = 16

func (fr *faultReady) run(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	inFlight := make(chan struct{}, faultProbesInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case inFlight <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-inFlight }()
				rctx, cancel := context.WithTimeout(ctx, faultRequestTimeout)
				defer cancel()
				began := time.Now()
				r, err := fr.s.try(rctx, call{method: "GET", path: "/readyz"})
				if ctx.Err() != nil {
					return
				}
				pr := faultProbe{began: began, ended: time.Now(), status: r.status}
				if err != nil {
					pr.status = 0
				}
				fr.mu.Lock()
				fr.probes = append(fr.probes, pr)
				fr.mu.Unlock()
			}()
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// settled returns when, since since, /readyz settled on want: the start of
// the probe from which every probe asked later (and answered so far)
// answered want, and the slowest of these answers. ok is false until a
// probe asked after since answered want.
func (fr *faultReady) settled(since time.Time, want int) (at time.Time, slowest time.Duration, ok bool) {
	fr.mu.Lock()
	ps := slices.Clone(fr.probes)
	fr.mu.Unlock()
	ps = slices.DeleteFunc(ps, func(p faultProbe) bool { return p.began.Before(since) })
	slices.SortFunc(ps, func(a, b faultProbe) int { return a.began.Compare(b.began) })
	start := 0
	for i, p := range ps {
		if p.status != want {
			start = i + 1
		}
	}
	if start == len(ps) {
		return time.Time{}, 0, false
	}
	for _, p := range ps[start:] {
		slowest = max(slowest, p.ended.Sub(p.began))
	}
	return ps[start].began, slowest, true
}

// faultAwait waits, polling every 20 ms, until each poller's /readyz has
// settled on want since since, and has stayed so for 100 ms, within bound.
// It describes, for each, how long after since the settled answers were
// asked, and their slowest.
func faultAwait(t *testing.T, what string, pollers []*faultReady, since time.Time, want int, bound time.Duration) []string {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var out []string
		for _, fr := range pollers {
			if at, slowest, ok := fr.settled(since, want); ok && time.Since(at) > 100*time.Millisecond {
				out = append(out, fmt.Sprintf("%v (answered within %v)", at.Sub(since).Round(time.Millisecond), slowest.Round(time.Millisecond)))
			}
		}
		if len(out) == len(pollers) {
			return out
		}
		if time.Since(since) > bound {
			t.Fatalf("%s: /readyz not settled on %d on every instance within %v", what, want, bound)
		}
		<-tick.C
	}
}

// faultCred is a credential the load verifies.
type faultCred struct {
	what    string
	session *login // a session cookie, or
	access  string // an access token
	// revokedAt is when the answer of its revocation came (Unix ns); 0
	// while it is live. revoking is set while its revocation is on its
	// way: the credential may be refused before the answer comes.
	revokedAt atomic.Int64
	revoking  atomic.Bool
}

func (c *faultCred) call() call {
	if c.session != nil {
		return call{method: "GET", path: "/v1/verify", cookie: c.session.cookie}
	}
	return call{method: "GET", path: "/v1/verify", headers: map[string]string{"Authorization": "Bearer " + c.access}}
}

func (c *faultCred) kind() string {
	if c.session != nil {
		return "session"
	}
	return "token"
}

// faultLoad is the bookkeeping of one phase's load: the answers by phase,
// kind and status, and the violations of the safety properties.
type faultLoad struct {
	phase atomic.Value // string
	reqs  atomic.Int64
	// wipedAt is when Redis was restarted empty (Unix ns; 0: not yet):
	// sessions verified after it may be gone (401).
	wipedAt atomic.Int64

	mu         sync.Mutex
	order      []string                          // phases in order
	counts     map[string]map[string]*faultTally // phase → "kind status"
	violations []string
	// lastOK is, by kind, when the last request answered 2xx began;
	// firstFail when the first answered 5xx ended.
	lastOK, firstFail map[string]time.Time
}

// faultTally counts the answers of one kind and status, and their
// slowest.
type faultTally struct {
	n       int
	slowest time.Duration
}

func newFaultLoad(phase string) *faultLoad {
	fl := &faultLoad{counts: map[string]map[string]*faultTally{}, lastOK: map[string]time.Time{}, firstFail: map[string]time.Time{}}
	fl.setPhase(phase)
	return fl
}

func (fl *faultLoad) setPhase(p string) {
	fl.mu.Lock()
	fl.order = append(fl.order, p)
	fl.mu.Unlock()
	fl.phase.Store(p)
}

func (fl *faultLoad) current() string { return fl.phase.Load().(string) }

// take counts one request against the bound; false once it is reached.
func (fl *faultLoad) take() bool { return fl.reqs.Add(1) <= faultMaxRequests }

func (fl *faultLoad) record(phase, kind string, status int, began, ended time.Time) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	m := fl.counts[phase]
	if m == nil {
		m = map[string]*faultTally{}
		fl.counts[phase] = m
	}
	k := fmt.Sprintf("%s %d", kind, status)
	if m[k] == nil {
		m[k] = &faultTally{}
	}
	m[k].n++
	m[k].slowest = max(m[k].slowest, ended.Sub(began))
	pk := phase + " " + kind
	switch {
	case status >= 200 && status < 300 && began.After(fl.lastOK[pk]):
		fl.lastOK[pk] = began
	case status >= 500 && (fl.firstFail[pk].IsZero() || ended.Before(fl.firstFail[pk])):
		fl.firstFail[pk] = ended
	}
}

// failedClosed describes, for the requests of kind asked in phase, how
// long after cut the first 5xx was answered and the last 2xx was asked.
func (fl *faultLoad) failedClosed(phase, kind string, cut time.Time) string {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	pk := phase + " " + kind
	d := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return at.Sub(cut).Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%s: first 5xx answered %s after the cut, last 2xx asked %s after it", kind, d(fl.firstFail[pk]), d(fl.lastOK[pk]))
}

func (fl *faultLoad) violate(format string, args ...any) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.violations = append(fl.violations, fmt.Sprintf(format, args...))
}

// report logs the counts and fails the test for each violation.
func (fl *faultLoad) report(t *testing.T) {
	t.Helper()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, p := range fl.order {
		m := fl.counts[p]
		keys := make([]string, 0, len(m))
		total := 0
		for k, ta := range m {
			keys = append(keys, k)
			total += ta.n
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, " [%s ×%d ≤%v]", k, m[k].n, m[k].slowest.Round(time.Millisecond))
		}
		t.Logf("phase %-16s %5d answers:%s", p, total, b.String())
	}
	for i, v := range fl.violations {
		if i == 20 {
			t.Errorf("… and %d more violations", len(fl.violations)-i)
			break
		}
		t.Errorf("violation: %s", v)
	}
}

// faultCleanFailure returns why a 5xx answer is not a clean failure (a
// JSON object, as problem+json or an OAuth error), or "".
func faultCleanFailure(r result) string {
	ct := r.header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/problem+json") && !strings.HasPrefix(ct, "application/json") {
		return fmt.Sprintf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		return fmt.Sprintf("body not a JSON object: %v", err)
	}
	return ""
}

// try sends c to s, bounded by faultRequestTimeout, and records the
// answer under kind. It returns ok false (after recording a violation) on
// a transport error or an unclean 5xx.
func (fl *faultLoad) try(s *server, kind string, c call) (r result, phase string, began, ended time.Time, ok bool) {
	phase, began = fl.current(), time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), faultRequestTimeout)
	defer cancel()
	r, err := s.try(ctx, c)
	ended = time.Now()
	if err != nil {
		fl.record(phase, kind, 0, began, ended)
		fl.violate("%s: %s %s on %s (phase %s): no answer: %v", kind, c.method, c.path, s.url, phase, err)
		return r, phase, began, ended, false
	}
	fl.record(phase, kind, r.status, began, ended)
	if r.status >= 500 {
		if why := faultCleanFailure(r); why != "" {
			fl.violate("%s: %s %s (phase %s): %d is not a clean failure: %s; body %q", kind, c.method, c.path, phase, r.status, why, r.body)
			return r, phase, began, ended, false
		}
	}
	return r, phase, began, ended, true
}

// verifyWorker verifies creds in turn on the servers in turn, paced, until
// ctx ends or the request bound is reached.
func (fl *faultLoad) verifyWorker(ctx context.Context, worker int, servers []*server, creds []*faultCred) {
	tick := time.NewTicker(faultVerifyEvery)
	defer tick.Stop()
	for n := worker; ; n += faultVerifyWorkers / 2 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !fl.take() {
			return
		}
		c := creds[n%len(creds)]
		s := servers[(n/len(creds))%len(servers)]
		revokedAt := c.revokedAt.Load()
		state := "valid"
		switch {
		case revokedAt != 0 && time.Now().UnixNano() > revokedAt+int64(faultPropagation):
			state = "revoked"
		case revokedAt != 0 || c.revoking.Load():
			state = "revoking" // on its way, or within the propagation bound: anything goes
		}
		kind := "verify " + c.kind() + " " + state
		r, phase, _, ended, ok := fl.try(s, kind, c.call())
		if !ok {
			continue
		}
		switch {
		case r.status >= 500, state == "revoking":
		case state == "revoked":
			if r.status != http.StatusUnauthorized {
				fl.violate("%s (revoked) on %s, phase %s: %d, want 401 or 5xx", c.what, s.url, phase, r.status)
			}
		case r.status == http.StatusOK:
		case r.status == http.StatusUnauthorized && c.session != nil && fl.wipedAt.Load() != 0 && ended.UnixNano() > fl.wipedAt.Load():
			// The session was in the Redis that came back empty.
		default:
			fl.violate("%s (valid) on %s, phase %s: %d, want 200 or 5xx", c.what, s.url, phase, r.status)
		}
	}
}

// faultPace runs step every faultWriteEvery until ctx ends, the request
// bound is reached, or step returns false.
func (fl *faultLoad) faultPace(ctx context.Context, step func(i int) bool) {
	tick := time.NewTicker(faultWriteEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !fl.take() || !step(i) {
			return
		}
	}
}

// faultPair parses a successful grant; ok false when the body is broken.
func faultPair(r result) (tokPair, bool) {
	var m map[string]any
	if json.Unmarshal(r.body, &m) != nil {
		return tokPair{}, false
	}
	a, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	return tokPair{access: a, refresh: rt}, a != "" && rt != ""
}

// faultSession parses a successful login; ok false when it is broken.
func faultSession(r result) (login, bool) {
	c := r.cookie("gh_session")
	var m struct {
		CSRF    string `json:"csrf_token"`
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if c == nil || json.Unmarshal(r.body, &m) != nil || m.CSRF == "" || m.Session.ID == "" || m.User.ID == "" {
		return login{}, false
	}
	return login{cookie: &http.Cookie{Name: c.Name, Value: c.Value}, csrf: m.CSRF, sessionID: m.Session.ID, userID: m.User.ID}, true
}

// faultAcked is a write a server acknowledged, and when.
type faultAcked[T any] struct {
	v  T
	at time.Time
}

// chainWorker rotates one refresh token again and again; every rotation
// answered 200 is acknowledged. A failed one is retried with the same
// token (the grace period covers a rotation committed but not answered).
func (fl *faultLoad) chainWorker(ctx context.Context, servers []*server, rt string, acked *[]faultAcked[tokPair]) {
	fl.faultPace(ctx, func(i int) bool {
		s := servers[i%len(servers)]
		r, phase, _, ended, ok := fl.try(s, "refresh", tokFormCall("/v1/token", tokForm("grant_type", "refresh_token", "refresh_token", rt), nil))
		switch {
		case !ok || r.status >= 500:
		case r.status == http.StatusOK:
			p, good := faultPair(r)
			if !good {
				fl.violate("refresh on %s, phase %s: 200 with a broken body %q", s.url, phase, r.body)
				return true
			}
			*acked = append(*acked, faultAcked[tokPair]{p, ended})
			rt = p.refresh
		default:
			fl.violate("refresh on %s, phase %s: %d %s, want 200 or 5xx", s.url, phase, r.status, r.body)
			return false
		}
		return true
	})
}

// loginWorker alternates session logins and password grants of username;
// each success is acknowledged.
func (fl *faultLoad) loginWorker(ctx context.Context, servers []*server, username string, sessions *[]faultAcked[login], pairs *[]faultAcked[tokPair]) {
	fl.faultPace(ctx, func(i int) bool {
		s := servers[i%len(servers)]
		if i%2 == 0 {
			r, phase, _, ended, ok := fl.try(s, "login", call{method: "POST", path: "/v1/sessions", body: credJSON(username, e2ePassword)})
			switch {
			case !ok || r.status >= 500:
			case r.status == http.StatusCreated:
				l, good := faultSession(r)
				if !good {
					fl.violate("login on %s, phase %s: 201 with a broken body %q", s.url, phase, r.body)
					return true
				}
				*sessions = append(*sessions, faultAcked[login]{l, ended})
			default:
				fl.violate("login on %s, phase %s: %d %s, want 201 or 5xx", s.url, phase, r.status, r.body)
			}
			return true
		}
		r, phase, _, ended, ok := fl.try(s, "password grant", tokFormCall("/v1/token", tokForm("grant_type", "password", "username", username, "password", e2ePassword), nil))
		switch {
		case !ok || r.status >= 500:
		case r.status == http.StatusOK:
			p, good := faultPair(r)
			if !good {
				fl.violate("password grant on %s, phase %s: 200 with a broken body %q", s.url, phase, r.body)
				return true
			}
			*pairs = append(*pairs, faultAcked[tokPair]{p, ended})
		default:
			fl.violate("password grant on %s, phase %s: %d %s, want 200 or 5xx", s.url, phase, r.status, r.body)
		}
		return true
	})
}

// signupWorker signs up new users; each 201 is acknowledged.
func (fl *faultLoad) signupWorker(ctx context.Context, servers []*server, prefix string, acked *[]string) {
	fl.faultPace(ctx, func(i int) bool {
		s := servers[i%len(servers)]
		name := fmt.Sprintf("%s-%d", prefix, i)
		r, phase, _, _, ok := fl.try(s, "signup", call{method: "POST", path: "/v1/users", body: credJSON(name, e2ePassword)})
		switch {
		case !ok || r.status >= 500:
		case r.status == http.StatusCreated:
			var m map[string]any
			if json.Unmarshal(r.body, &m) != nil || m["id"] == nil {
				fl.violate("signup on %s, phase %s: 201 with a broken body %q", s.url, phase, r.body)
				return true
			}
			*acked = append(*acked, name)
		default:
			fl.violate("signup %s on %s, phase %s: %d %s, want 201 or 5xx", name, s.url, phase, r.status, r.body)
		}
		return true
	})
}

// faultPasswords is what passwordWorker leaves: the passwords the account
// may have now, the acknowledged first, and what the test learnt.
type faultPasswords struct {
	acked      int      // changes answered 204
	candidates []string // [0] the last known; then changes answered 5xx since
	// committedAnyway counts changes answered 5xx that had taken effect.
	committedAnyway int
}

// passwordWorker changes the password of l's user again and again through
// l. A change answered 5xx may or may not have been committed: it stays a
// candidate until a 204 or a 403 (wrong current password) decides.
func (fl *faultLoad) passwordWorker(ctx context.Context, servers []*server, l login, out *faultPasswords) {
	out.candidates = []string{e2ePassword}
	fl.faultPace(ctx, func(i int) bool {
		s := servers[i%len(servers)]
		next := fmt.Sprintf("%s %d", e2ePassword, i)
		body, _ := json.Marshal(map[string]string{"current_password": out.candidates[0], "new_password": next})
		c := call{method: "POST", path: "/v1/me/password", body: string(body), cookie: l.cookie, headers: map[string]string{"X-CSRF-Token": l.csrf}}
		r, phase, _, _, ok := fl.try(s, "password change", c)
		switch {
		case !ok:
		case r.status >= 500:
			out.candidates = append(out.candidates, next)
		case r.status == http.StatusNoContent:
			out.acked++
			out.candidates = []string{next}
		case r.status == http.StatusForbidden && len(out.candidates) > 1:
			// An earlier change answered 5xx was committed after all.
			out.candidates = out.candidates[1:]
			out.committedAnyway++
		case r.status == http.StatusTooManyRequests:
		default:
			fl.violate("password change on %s, phase %s: %d %s (candidates %d)", s.url, phase, r.status, r.body, len(out.candidates))
			return false
		}
		return true
	})
}

// TestFaultBackendRestarts stops and restarts Redis, then PostgreSQL, under
// load, and checks the safety properties of docs/deployment.md ("Faults").
func TestFaultBackendRestarts(t *testing.T) {
	faultNeed(t, os.Geteuid() == 0, "not running as root (PostgreSQL must run as the postgres user)")
	redisBin, err := exec.LookPath("redis-server")
	faultNeed(t, err == nil, "redis-server not found")
	pgDirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Sort(pgDirs)
	var pgBin string
	for _, d := range slices.Backward(pgDirs) {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			pgBin = d
			break
		}
	}
	faultNeed(t, pgBin != "", "no /usr/lib/postgresql/*/bin/initdb")
	pgUser, err := user.Lookup("postgres")
	faultNeed(t, err == nil, "no postgres OS user")

	testStart := time.Now()
	rd := faultStartRedis(t, redisBin)
	pg := faultStartPostgres(t, pgBin, pgUser)
	t.Logf("private Redis %s and PostgreSQL (%s) up in %v", rd.url, pgBin, time.Since(testStart).Round(time.Millisecond))

	kek := make([]byte, 32)
	rand.Read(kek)
	args := []string{
		"--postgres", pg.url, "--redis", rd.url,
		"--kek", base64.StdEncoding.EncodeToString(kek),
		"--issuer", "http://gatehouse.test",
		"--admin-key", e2eAdminKey, "--service-key", tokServiceKey,
		"--revocation-stale-after", faultStaleAfter.String(),
		// A rotation committed but answered 5xx is retried within it.
		"--refresh-grace", "30s",
	}
	a := startServer(t, t.TempDir(), args...)
	b := startServer(t, t.TempDir(), args...)
	servers := []*server{a, b}
	pids := []int{a.cmd.Process.Pid, b.cmd.Process.Pid}

	pollCtx, stopPolls := context.WithCancel(context.Background())
	var pollWG sync.WaitGroup
	pollers := []*faultReady{{s: a}, {s: b}}
	for _, fr := range pollers {
		pollWG.Add(1)
		go func() {
			defer pollWG.Done()
			fr.run(pollCtx)
		}()
	}
	defer func() {
		stopPolls()
		pollWG.Wait()
	}()

	// The credentials of the Redis phase.
	var valid, revoked []*faultCred
	for i := range 3 {
		name := fmt.Sprintf("valid-%d", i)
		a.signup(name, e2ePassword)
		l := a.login(name, e2ePassword)
		valid = append(valid, &faultCred{what: name + "'s session", session: &l},
			&faultCred{what: name + "'s token", access: b.tokPassword(name, e2ePassword).access})
	}
	for _, name := range []string{"rev", "forced", "pwchg", "late", "during"} {
		a.signup(name, e2ePassword)
	}
	{
		p1 := a.tokPassword("rev", e2ePassword)
		p2 := b.tokPassword("rev", e2ePassword)
		l := a.login("rev", e2ePassword)
		a.tokRevoke("revoke an access token", p1.access, "access_token")
		b.tokRevoke("revoke a refresh token", p2.refresh, "refresh_token")
		wantStatus(t, "logout", b.as(l, call{method: "DELETE", path: "/v1/sessions/current"}, true), http.StatusNoContent)
		revoked = append(revoked, &faultCred{what: "an access token revoked (RFC 7009)", access: p1.access},
			&faultCred{what: "the access token of a revoked refresh token", access: p2.access},
			&faultCred{what: "a logged-out session", session: &l})

		fp := b.tokPassword("forced", e2ePassword)
		fl := a.login("forced", e2ePassword)
		uid := fl.userID
		wantStatus(t, "forced logout", a.do(adminCall(call{method: "POST", path: "/v1/admin/users/" + uid + "/logout"})), http.StatusNoContent)
		revoked = append(revoked, &faultCred{what: "a token of a forced logout", access: fp.access},
			&faultCred{what: "a session of a forced logout", session: &fl})

		pp := a.tokPassword("pwchg", e2ePassword)
		pl := b.login("pwchg", e2ePassword)
		changer := a.login("pwchg", e2ePassword)
		body, _ := json.Marshal(map[string]string{"current_password": e2ePassword, "new_password": e2ePassword + " new"})
		wantStatus(t, "password change", a.as(changer, call{method: "POST", path: "/v1/me/password", body: string(body)}, true), http.StatusNoContent)
		revoked = append(revoked, &faultCred{what: "a token ended by a password change", access: pp.access},
			&faultCred{what: "a session ended by a password change", session: &pl})
	}
	for _, c := range revoked {
		c.revokedAt.Store(time.Now().UnixNano())
		multiUntilRefused(t, time.Now(), 2*time.Second, c.session, c.access, a, b)
	}
	late := []*faultCred{}
	{
		p := a.tokPassword("late", e2ePassword)
		l := b.login("late", e2ePassword)
		late = append(late, &faultCred{what: "a token revoked just before the cut", access: p.access},
			&faultCred{what: "a session logged out just before the cut", session: &l})
	}
	during := []*faultCred{}
	duringPair := a.tokPassword("during", e2ePassword)
	{
		l := b.login("during", e2ePassword)
		during = append(during, &faultCred{what: "a token revoked during the outage", access: duringPair.access},
			&faultCred{what: "a session logged out during the outage", session: &l})
	}
	creds := slices.Concat(valid, revoked, late, during)
	for _, c := range creds {
		if c.revokedAt.Load() == 0 {
			multiWantVerify(t, c.what, http.StatusOK, c.session, c.access, a, b)
		}
	}

	// Phase 1: Redis.
	a.signup("w-login", e2ePassword)
	chain1 := b.tokPassword("w-login", e2ePassword)
	flRedis := newFaultLoad("redis-before")
	var (
		wg          sync.WaitGroup
		chainAcked  []faultAcked[tokPair]
		loginAcked  []faultAcked[login]
		grantAcked  []faultAcked[tokPair]
		signupAcked []string
	)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	startLoad := func(ctx context.Context, fl *faultLoad, creds []*faultCred, extra ...func()) {
		// Tokens and sessions apart: a session lookup waiting on a dead
		// Redis delays no token verification.
		tokens := slices.DeleteFunc(slices.Clone(creds), func(c *faultCred) bool { return c.session != nil })
		sessions := slices.DeleteFunc(slices.Clone(creds), func(c *faultCred) bool { return c.session == nil })
		for w := range faultVerifyWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if w%2 == 0 {
					fl.verifyWorker(ctx, w/2, servers, tokens)
				} else {
					fl.verifyWorker(ctx, w/2, servers, sessions)
				}
			}()
		}
		for _, f := range extra {
			wg.Add(1)
			go func() { defer wg.Done(); f() }()
		}
	}
	startLoad(loadCtx, flRedis, creds,
		func() { flRedis.chainWorker(loadCtx, servers, chain1.refresh, &chainAcked) },
		func() { flRedis.loginWorker(loadCtx, servers, "w-login", &loginAcked, &grantAcked) },
	)
	faultWait(faultSteady)

	// Revoked under load, right before the cut.
	late[0].revoking.Store(true)
	lateTok := a.do(tokFormCall("/v1/token/revoke", tokForm("token", late[0].access), nil))
	wantStatus(t, "revoke just before the cut", lateTok, http.StatusOK)
	late[0].revokedAt.Store(time.Now().UnixNano())
	late[1].revoking.Store(true)
	lateOut := b.as(*late[1].session, call{method: "DELETE", path: "/v1/sessions/current"}, true)
	wantStatus(t, "logout just before the cut", lateOut, http.StatusNoContent)
	late[1].revokedAt.Store(time.Now().UnixNano())

	cut := time.Now()
	flRedis.setPhase("redis-down")
	rd.proc.stop(syscall.SIGTERM)
	t.Logf("Redis stopped (SIGTERM) in %v", time.Since(cut).Round(time.Millisecond))
	failed := faultAwait(t, "Redis down", pollers, cut, http.StatusServiceUnavailable, faultFailBound)
	t.Logf("Redis down: /readyz 503 on A from %s, on B from %s after the cut (bound %v)", failed[0], failed[1], faultStaleAfter)

	// Revocations attempted during the outage: if one is acknowledged, the
	// credential must be refused from then on.
	var duringStatuses []int
	for i, c := range []call{
		tokFormCall("/v1/token/revoke", tokForm("token", during[0].access), nil),
		{method: "DELETE", path: "/v1/sessions/current", cookie: during[1].session.cookie, headers: map[string]string{"X-CSRF-Token": during[1].session.csrf}},
	} {
		during[i].revoking.Store(true)
		r, _, _, _, ok := flRedis.try(servers[1-i], "revocation during the outage", c)
		if ok && r.status < 300 {
			during[i].revokedAt.Store(time.Now().UnixNano())
		}
		// A revocation answered 5xx changed nothing: the credential is
		// valid, and checked as such.
		during[i].revoking.Store(false)
		duringStatuses = append(duringStatuses, r.status)
	}
	t.Logf("revocations attempted during the Redis outage answered %v (2xx: acknowledged, then checked refused)", duringStatuses)
	faultWait(faultOutage - time.Since(cut))
	for _, k := range []string{"verify token valid", "verify session valid"} {
		t.Logf("Redis down: %s", flRedis.failedClosed("redis-down", k, cut))
	}

	restart := time.Now()
	flRedis.wipedAt.Store(restart.UnixNano())
	flRedis.setPhase("redis-recovering")
	rd.start()
	redisUp := time.Now()
	recovered := faultAwait(t, "Redis back", pollers, redisUp, http.StatusOK, faultRecoverBound)
	t.Logf("Redis back (PING) %v after its restart; /readyz 200 on A from %s, on B from %s after that",
		redisUp.Sub(restart).Round(time.Millisecond), recovered[0], recovered[1])
	flRedis.setPhase("redis-after")
	faultWait(faultSteady)
	stopLoad()
	wg.Wait()

	// After the Redis phase: revoked credentials stay refused, tokens work.
	for _, c := range creds {
		switch {
		case c.revokedAt.Load() != 0:
			multiWantVerify(t, c.what+" after the Redis restart", http.StatusUnauthorized, c.session, c.access, a, b)
		case c.session == nil:
			multiWantVerify(t, c.what+" after the Redis restart", http.StatusOK, nil, c.access, a, b)
		default:
			// Redis came back empty: the session is gone.
			multiWantVerify(t, c.what+" after the Redis restart (Redis came back empty)", http.StatusUnauthorized, c.session, "", a, b)
		}
	}
	for _, p := range slices.Concat(chainAcked, grantAcked) {
		multiWantVerify(t, "an access token granted during the Redis phase", http.StatusOK, nil, p.v.access, a, b)
	}
	newSessions := 0
	for _, l := range loginAcked {
		if l.at.After(redisUp) {
			multiWantVerify(t, "a session created after Redis came back", http.StatusOK, &l.v, "", a, b)
			newSessions++
		}
	}
	lastRT := chain1.refresh
	if len(chainAcked) > 0 {
		lastRT = chainAcked[len(chainAcked)-1].v.refresh
	}
	chain2 := tokPairFrom(t, "rotation of the last refresh token after the Redis phase", a.tokRefresh(lastRT))
	t.Logf("Redis phase: %d refreshes, %d password grants, %d session logins acknowledged (%d after the restart), all checked",
		len(chainAcked), len(grantAcked), len(loginAcked), newSessions)

	// Phase 2: PostgreSQL. Fresh sessions (Redis forgot the old ones).
	creds2 := slices.Clone(revoked)
	creds2 = append(creds2, late...)
	for _, c := range valid {
		if c.session == nil {
			creds2 = append(creds2, c)
			continue
		}
		name := strings.TrimSuffix(c.what, "'s session")
		l := b.login(name, e2ePassword)
		creds2 = append(creds2, &faultCred{what: name + "'s new session", session: &l})
	}
	a.signup("w-pw", e2ePassword)
	pwSession := a.login("w-pw", e2ePassword)
	fl2 := newFaultLoad("pg-before")
	chainAcked, loginAcked, grantAcked = nil, nil, nil
	var passwords faultPasswords
	pgCtx, stopPGLoad := context.WithCancel(context.Background())
	startLoad(pgCtx, fl2, creds2,
		func() { fl2.chainWorker(pgCtx, servers, chain2.refresh, &chainAcked) },
		func() { fl2.loginWorker(pgCtx, servers, "w-login", &loginAcked, &grantAcked) },
		func() { fl2.signupWorker(pgCtx, servers, "pg-signup", &signupAcked) },
		func() { fl2.passwordWorker(pgCtx, servers, pwSession, &passwords) },
	)
	faultWait(faultSteady)

	cut = time.Now()
	fl2.setPhase("pg-down")
	pg.stop()
	t.Logf("PostgreSQL stopped (fast shutdown) in %v", time.Since(cut).Round(time.Millisecond))
	failed = faultAwait(t, "PostgreSQL down", pollers, cut, http.StatusServiceUnavailable, faultFailBound)
	t.Logf("PostgreSQL down: /readyz 503 on A from %s, on B from %s after the cut", failed[0], failed[1])
	faultWait(faultOutage - time.Since(cut))
	for _, k := range []string{"verify token valid", "verify session valid", "signup", "refresh"} {
		t.Logf("PostgreSQL down: %s", fl2.failedClosed("pg-down", k, cut))
	}

	restart = time.Now()
	fl2.setPhase("pg-recovering")
	pg.start()
	pgUp := time.Now()
	recovered = faultAwait(t, "PostgreSQL back", pollers, pgUp, http.StatusOK, faultRecoverBound)
	t.Logf("PostgreSQL back (accepting connections) %v after its restart; /readyz 200 on A from %s, on B from %s after that",
		pgUp.Sub(restart).Round(time.Millisecond), recovered[0], recovered[1])
	fl2.setPhase("pg-after")
	faultWait(faultSteady)
	stopPGLoad()
	wg.Wait()

	// After the PostgreSQL phase: every acknowledged write is there.
	for _, c := range creds2 {
		want := http.StatusOK
		if c.revokedAt.Load() != 0 {
			want = http.StatusUnauthorized
		}
		multiWantVerify(t, c.what+" after the PostgreSQL restart", want, c.session, c.access, a, b)
	}
	for i, name := range signupAcked {
		p := servers[i%2].do(tokFormCall("/v1/token", tokForm("grant_type", "password", "username", name, "password", e2ePassword), nil))
		wantStatus(t, "password grant of "+name+", whose signup was acknowledged", p, http.StatusOK)
	}
	for _, p := range slices.Concat(chainAcked, grantAcked) {
		multiWantVerify(t, "an access token granted during the PostgreSQL phase", http.StatusOK, nil, p.v.access, a, b)
	}
	for _, l := range loginAcked {
		multiWantVerify(t, "a session created during the PostgreSQL phase", http.StatusOK, &l.v, "", a, b)
	}
	if len(chainAcked) > 0 {
		lastRT = chainAcked[len(chainAcked)-1].v.refresh
	} else {
		lastRT = chain2.refresh
	}
	tokPairFrom(t, "rotation of the last acknowledged refresh token after the PostgreSQL phase", b.tokRefresh(lastRT))
	pwOK := -1
	for i, pw := range passwords.candidates {
		r := a.do(call{method: "POST", path: "/v1/sessions", body: credJSON("w-pw", pw)})
		if r.status == http.StatusCreated {
			pwOK = i
			break
		}
		if r.status != http.StatusUnauthorized {
			t.Fatalf("login of w-pw with password candidate %d: %d %s", i, r.status, r.body)
		}
	}
	if pwOK < 0 {
		t.Errorf("no password of w-pw works: the last acknowledged change (of %d) or a later one answered 5xx was lost", passwords.acked)
	}
	if passwords.acked > 0 {
		wantStatus(t, "login of w-pw with its first password, changed since", a.do(call{method: "POST", path: "/v1/sessions", body: credJSON("w-pw", e2ePassword)}), http.StatusUnauthorized)
	}
	t.Logf("PostgreSQL phase: %d signups, %d refreshes, %d password grants, %d session logins, %d password changes acknowledged, all found after; %d changes answered 5xx found committed; the working password is candidate %d of %d",
		len(signupAcked), len(chainAcked), len(grantAcked), len(loginAcked), passwords.acked, passwords.committedAnyway, pwOK, len(passwords.candidates))

	for i, s := range servers {
		select {
		case <-s.done:
			t.Fatalf("gatehouse %d exited during the test (%v); stderr:\n%s", i, s.exitErr, s.stderr)
		default:
		}
		if s.cmd.Process.Pid != pids[i] {
			t.Fatalf("gatehouse %d was restarted", i)
		}
	}
	t.Log("both gatehouse processes ran throughout: recovery without a restart")

	t.Log("Redis phase:")
	flRedis.report(t)
	t.Log("PostgreSQL phase:")
	fl2.report(t)
	t.Logf("fault test took %v", time.Since(testStart).Round(time.Millisecond))
}

// faultWait waits for d (nothing when d <= 0).
func faultWait(d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	<-timer.C
}
