package main

// End-to-end tests under load: a SIGKILL in the middle of a burst of logins,
// and the peak memory of many concurrent Argon2id logins.

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", to check the file
)

// burstResult is what one login of a burst got: a full response or a
// transport error.
type burstResult struct {
	res result
	err error
}

// burst sends the calls at once and returns their results in order. Each
// completed 201 is also signalled on created (buffered for all).
func (s *server) burst(calls []call, created chan<- int) []burstResult {
	out := make([]burstResult, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r, err := s.try(ctx, c)
			out[i] = burstResult{res: r, err: err}
			if err == nil && r.status == http.StatusCreated && created != nil {
				created <- i
			}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// clientIPHeader gives request i its own client address, so that the
// per-address throttle (20 free failures per address) does not turn a
// burst from 127.0.0.1 into 429s. The server trusts 127.0.0.1 as a proxy.
func clientIPHeader(i int) map[string]string {
	return map[string]string{"X-Forwarded-For": fmt.Sprintf("10.%d.%d.%d", 1+i/65025, i/255%255, 1+i%255)}
}

// TestE2EKill9DuringLogins kills the server with SIGKILL while a burst of
// logins is in flight, restarts it on the same data directory and checks
// that every login the clients saw succeed still has its session, and that
// the SQLite file is intact.
func TestE2EKill9DuringLogins(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "--trusted-proxies", "127.0.0.1")

	// Five logins per user: the per-account throttle reserves in-flight
	// attempts as potential failures and lets five (its free allowance)
	// run at once; a sixth concurrent one would be a 429.
	const users, perUser, killAfter = 10, 5, 10
	for u := range users {
		s.signup(fmt.Sprintf("crash%02d", u), e2ePassword)
	}
	calls := make([]call, users*perUser)
	for i := range calls {
		calls[i] = call{method: "POST", path: "/v1/sessions", body: credJSON(fmt.Sprintf("crash%02d", i%users), e2ePassword), headers: clientIPHeader(i)}
	}

	created := make(chan int, len(calls))
	resc := make(chan []burstResult, 1)
	go func() { resc <- s.burst(calls, created) }()

	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for n := 0; n < killAfter; n++ {
		select {
		case <-created:
		case <-deadline.C:
			t.Fatalf("only %d logins succeeded within a minute; stderr:\n%s", n, s.stderr)
		}
	}
	if code, _ := s.signal(syscall.SIGKILL, exitTimeout); code != -1 {
		t.Fatalf("exit code %d after SIGKILL, want death by signal", code)
	}

	var results []burstResult
	select {
	case results = <-resc:
	case <-deadline.C:
		t.Fatal("the burst's requests did not end within a minute of the kill")
	}
	var committed []login
	cut := 0
	for i, r := range results {
		switch {
		case r.err != nil:
			cut++
		case r.res.status == http.StatusCreated:
			committed = append(committed, loginFrom(t, r.res))
		default:
			t.Errorf("login %d: status %d, want 201 or a cut connection; body: %s", i, r.res.status, r.res.body)
		}
	}
	t.Logf("%d logins: %d succeeded before the kill, %d cut by it", len(results), len(committed), cut)
	if len(committed) < killAfter {
		t.Fatalf("%d logins succeeded, want at least %d", len(committed), killAfter)
	}
	if cut == 0 {
		t.Fatal("no login was in flight at the kill: the test did not test the crash")
	}

	s2 := startServer(t, dir)
	for i, l := range committed {
		me := s2.as(l, call{method: "GET", path: "/v1/me"}, false)
		if me.status != http.StatusOK || me.json(t)["id"] != l.userID {
			t.Errorf("session %d (%s) of a 201 login lost across the crash: %d %s", i, l.sessionID, me.status, me.body)
		}
	}

	// The file the crashed server left is a sound SQLite database.
	db, err := sql.Open("sqlite", filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	var report []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		report = append(report, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(report) != 1 || report[0] != "ok" {
		t.Fatalf("PRAGMA integrity_check: %v", report)
	}
}

// TestE2EPeakMemoryUnderConcurrentLogins fires 200 concurrent logins, every
// one of which computes an Argon2id hash (m=19 MiB, t=2, p=1), and checks
// the server's peak resident memory: the hashing semaphore (max(2, NumCPU)
// at once) must keep it far below the 200 × 19 MiB ≈ 3.8 GiB that unbounded
// hashing would need.
func TestE2EPeakMemoryUnderConcurrentLogins(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the peak resident memory is read from /proc/<pid>/status (VmHWM): Linux only")
	}
	s := startServer(t, t.TempDir(), "--trusted-proxies", "127.0.0.1")
	s.signup("memuser", e2ePassword)
	pid := s.cmd.Process.Pid
	before := vmHWM(t, pid)

	// Five right passwords for the one user (the per-account throttle lets
	// five run at once), the others wrong passwords for distinct unknown
	// users: each of those still costs a full Argon2id hash (of the dummy
	// hash), and each has its own throttle key and client address.
	const n, right = 200, 5
	calls := make([]call, n)
	for i := range calls {
		user, pw := fmt.Sprintf("ghost%03d", i), fmt.Sprintf("wrong password %03d", i)
		if i%(n/right) == 0 {
			user, pw = "memuser", e2ePassword
		}
		calls[i] = call{method: "POST", path: "/v1/sessions", body: credJSON(user, pw), headers: clientIPHeader(i)}
	}
	start := time.Now()
	resc := make(chan []burstResult, 1)
	go func() { resc <- s.burst(calls, nil) }()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	var results []burstResult
	select {
	case results = <-resc:
	case <-deadline.C:
		t.Fatalf("%d concurrent logins did not all answer within 2 minutes", n)
	}
	took := time.Since(start)

	counts := map[int]int{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("login %d: %v", i, r.err)
		}
		counts[r.res.status]++
	}
	peak := vmHWM(t, pid)
	const mib = 1 << 20
	t.Logf("%d concurrent logins in %s (%v by status), %d CPUs: VmHWM %.1f MiB (%.1f MiB before the burst)",
		n, took.Round(time.Millisecond), counts, runtime.NumCPU(), float64(peak)/mib, float64(before)/mib)
	if counts[http.StatusCreated] != right || counts[http.StatusUnauthorized] != n-right {
		t.Errorf("statuses %v, want %d × 201 and %d × 401: every login must have been hashed", counts, right, n-right)
	}
	if limit := 300 * mib; peak >= uint64(limit) {
		t.Errorf("VmHWM %.1f MiB, want below %d MiB: the hashing concurrency is not bounded", float64(peak)/mib, limit/mib)
	}
}

// vmHWM returns the peak resident set size of process pid, in bytes.
func vmHWM(t *testing.T, pid int) uint64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				t.Fatalf("unexpected VmHWM line %q", sc.Text())
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				t.Fatalf("VmHWM line %q: %v", sc.Text(), err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status (err %v)", pid, sc.Err())
	return 0
}
