// Package throttletest is the conformance suite for throttle.Limiter
// implementations: the in-memory limiter and the shared ones (Redis) pass
// the same decisions, to the nanosecond.
//
//	func TestLimiter(t *testing.T) {
//		throttletest.Run(t, func(t *testing.T, c clock.Clock, p throttle.Policy) throttle.Limiter {
//			return throttle.NewMemory(c, p)
//		})
//	}
//
// The suite owns the clock: it creates a *clock.Fake for every subtest,
// passes it to open with the policy under test, and moves it. open is
// called once or more per subtest and must return a limiter with no state
// that no other subtest sees (a fresh key prefix); it should release it
// with t.Cleanup.
//
// A limiter counts failures per slot of Window/60 (see throttle.Memory): a
// failure leaves the window at the end of its slot plus Window, never
// early and at most one slot late. The suite's times are slot-aligned and
// its expectations exact.
package throttletest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

// Open returns a new, empty limiter that applies p with time from c.
type Open func(t *testing.T, c clock.Clock, p throttle.Policy) throttle.Limiter

// start is slot-aligned for every window used below (a whole minute).
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testPolicy is the policy of most cases: 3 free failures, then 1 s, 2 s …
// up to 20 s.
var testPolicy = throttle.Policy{Window: time.Hour, Max: 100, Free: 3, BaseDelay: time.Second, MaxDelay: 20 * time.Second}

// Run runs the conformance suite for a throttle.Limiter.
func Run(t *testing.T, open Open) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, open Open)
	}{
		{"Decisions", testDecisions},
		{"AtMostMaxFailuresPerWindow", testAtMostMaxFailuresPerWindow},
		{"ConcurrentAttemptsCannotExceedCap", testConcurrentAttemptsCannotExceedCap},
		{"EmptyKey", testEmptyKey},
		{"LongKeys", testLongKeys},
		{"IPv6PrefixSharesTheCount", testIPv6PrefixSharesTheCount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, open) })
	}
}

// step is one action in a scripted scenario.
type step struct {
	advance time.Duration // move the clock first
	op      string        // "check", "failure", "success", "release" or "" (advance only)
	key     string        // default "k"
	want    time.Duration // for "check": the expected retryAfter
}

// attempt is an allowed Check followed by a Failure.
func attempt(key string) []step {
	return []step{{op: "check", key: key}, {op: "failure", key: key}}
}

// attempts repeats attempt n times.
func attempts(n int, key string) []step {
	var s []step
	for range n {
		s = append(s, attempt(key)...)
	}
	return s
}

func seq(parts ...any) []step {
	var s []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			s = append(s, p)
		case []step:
			s = append(s, p...)
		default:
			panic(fmt.Sprintf("seq: %T", p))
		}
	}
	return s
}

func check(want time.Duration) step { return step{op: "check", want: want} }
func advance(d time.Duration) step  { return step{advance: d} }

func testDecisions(t *testing.T, open Open) {
	capPolicy := throttle.Policy{Window: time.Hour, Max: 3, Free: 3, BaseDelay: time.Second, MaxDelay: time.Second}
	tests := []struct {
		name   string
		policy throttle.Policy
		steps  []step
	}{
		{
			name:   "no delay under free",
			policy: testPolicy,
			steps:  seq(attempts(3, "k"), step{op: "check", key: "other"}),
		},
		{
			name:   "first failure beyond free waits base delay",
			policy: testPolicy,
			steps:  seq(attempts(3, "k"), check(time.Second), advance(999*time.Millisecond), check(time.Millisecond), advance(time.Millisecond), check(0)),
		},
		{
			name:   "backoff sequence exact and capped",
			policy: testPolicy,
			steps: seq(
				attempts(3, "k"),
				check(1*time.Second), advance(1*time.Second), attempt("k"),
				check(2*time.Second), advance(2*time.Second), attempt("k"),
				check(4*time.Second), advance(4*time.Second), attempt("k"),
				check(8*time.Second), advance(8*time.Second), attempt("k"),
				check(16*time.Second), advance(16*time.Second), attempt("k"),
				check(20*time.Second), advance(20*time.Second), attempt("k"),
				check(20*time.Second), advance(20*time.Second), attempt("k"),
				check(20*time.Second),
			),
		},
		{
			name:   "delay counts from the latest failure",
			policy: testPolicy,
			steps:  seq(attempts(2, "k"), advance(10*time.Second), attempt("k"), check(time.Second), advance(400*time.Millisecond), check(600*time.Millisecond)),
		},
		{
			name:   "default account policy backoff",
			policy: throttle.DefaultAccountPolicy,
			steps: seq(
				attempts(5, "k"),
				check(time.Second), advance(time.Second), attempt("k"),
				check(2*time.Second), advance(2*time.Second), attempt("k"),
				check(4*time.Second),
			),
		},
		{
			name:   "default account policy delay caps at five minutes",
			policy: throttle.DefaultAccountPolicy,
			steps: seq(
				attempts(5, "k"),
				// 1+2+…+256 s = 511 s of waits, then the cap.
				advance(time.Second), attempt("k"), advance(2*time.Second), attempt("k"),
				advance(4*time.Second), attempt("k"), advance(8*time.Second), attempt("k"),
				advance(16*time.Second), attempt("k"), advance(32*time.Second), attempt("k"),
				advance(64*time.Second), attempt("k"), advance(128*time.Second), attempt("k"),
				advance(256*time.Second), attempt("k"),
				check(5*time.Minute), advance(5*time.Minute), attempt("k"),
				check(5*time.Minute),
			),
		},
		{
			name:   "hard cap refuses until the oldest failure leaves the window",
			policy: capPolicy,
			steps: seq(
				advance(30*time.Second), attempt("k"), // slot 12:00, leaves at 13:01
				advance(10*time.Minute), attempt("k"), // slot 12:10, leaves at 13:11
				advance(10*time.Minute), attempt("k"), // slot 12:20, leaves at 13:21
				check(40*time.Minute+30*time.Second), // now 12:20:30
				advance(40*time.Minute), check(30*time.Second),
				advance(30*time.Second-time.Nanosecond), check(time.Nanosecond),
				advance(time.Nanosecond), attempt("k"),
				check(10*time.Minute), // the next oldest leaves at 13:11
			),
		},
		{
			name:   "hard cap holds whatever the delays",
			policy: throttle.Policy{Window: time.Hour, Max: 4, Free: 0, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
			steps: seq(
				attempt("k"), advance(time.Millisecond), attempt("k"), advance(time.Millisecond),
				attempt("k"), advance(time.Millisecond), attempt("k"), advance(time.Millisecond),
				check(time.Hour+time.Minute-4*time.Millisecond),
			),
		},
		{
			name:   "failures leave the window and the delay with them",
			policy: testPolicy,
			steps:  seq(attempts(3, "k"), check(time.Second), advance(61*time.Minute), attempts(3, "k"), check(time.Second)),
		},
		{
			name:   "success resets the failures",
			policy: testPolicy,
			steps: seq(
				attempts(3, "k"), check(time.Second), advance(time.Second),
				check(0), step{op: "success"},
				attempts(3, "k"), check(time.Second),
			),
		},
		{
			name:   "success without a reservation resets",
			policy: testPolicy,
			steps:  seq(attempts(3, "k"), step{op: "success"}, check(0)),
		},
		{
			name:   "release keeps the failures",
			policy: testPolicy,
			steps:  seq(attempts(3, "k"), advance(time.Second), check(0), step{op: "release"}, step{op: "failure"}, check(2*time.Second)),
		},
		{
			name:   "failure without a check counts",
			policy: testPolicy,
			steps:  seq(step{op: "failure"}, step{op: "failure"}, step{op: "failure"}, check(time.Second)),
		},
		{
			name:   "keys are independent",
			policy: testPolicy,
			steps:  seq(attempts(3, "a"), step{op: "check", key: "a", want: time.Second}, attempts(3, "b"), step{op: "success", key: "b"}, step{op: "check", key: "a", want: time.Second}),
		},
		{
			name:   "attempts in flight are not failures: concurrent right passwords pass",
			policy: testPolicy,
			steps:  seq(check(0), check(0), check(0), check(0), check(0), check(0)),
		},
		{
			name:   "attempts in flight count against the hard cap",
			policy: capPolicy,
			steps:  seq(attempt("k"), check(0), check(0), check(throttle.AttemptHold), advance(time.Second), check(throttle.AttemptHold-time.Second)),
		},
		{
			name:   "an attempt never ended lapses",
			policy: capPolicy,
			steps:  seq(attempt("k"), check(0), check(0), check(throttle.AttemptHold), advance(throttle.AttemptHold), check(0)),
		},
		{
			name:   "released attempts do not count",
			policy: testPolicy,
			steps: seq(
				check(0), step{op: "release"}, check(0), step{op: "release"},
				check(0), step{op: "release"}, check(0), step{op: "release"}, check(0),
			),
		},
		{
			name:   "ending an unknown key is harmless",
			policy: testPolicy,
			steps:  seq(step{op: "success"}, step{op: "release"}, check(0)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clock.NewFake(start)
			m := open(t, c, tt.policy)
			ctx := context.Background()
			for i, s := range tt.steps {
				c.Advance(s.advance)
				key := s.key
				if key == "" {
					key = "k"
				}
				var err error
				switch s.op {
				case "":
				case "check":
					var got time.Duration
					got, err = m.Check(ctx, key)
					if got != s.want {
						t.Fatalf("step %d at %s: Check(%q) = %v, want %v", i, c.Now().Format(time.TimeOnly), key, got, s.want)
					}
				case "failure":
					err = m.Failure(ctx, key)
				case "success":
					err = m.Success(ctx, key)
				case "release":
					err = m.Release(ctx, key)
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if err != nil {
					t.Fatalf("step %d: %s: %v", i, s.op, err)
				}
			}
		})
	}
}

func testAtMostMaxFailuresPerWindow(t *testing.T, open Open) {
	// An attacker who retries the moment Check allows it, for three hours:
	// no window of an hour ever holds more than Max failures.
	p := throttle.Policy{Window: time.Hour, Max: 100, Free: 5, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}
	c := clock.NewFake(start)
	m := open(t, c, p)
	ctx := context.Background()
	var failures []time.Time
	for c.Now().Before(start.Add(3 * time.Hour)) {
		wait, err := m.Check(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if wait > 0 {
			c.Advance(wait)
			continue
		}
		failures = append(failures, c.Now())
		if err := m.Failure(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	lo := 0
	for hi, f := range failures {
		for f.Sub(failures[lo]) >= p.Window {
			lo++
		}
		if n := hi - lo + 1; n > p.Max {
			t.Fatalf("%d failures within an hour ending %v", n, f)
		}
	}
	// The cap is reached in each of the three hours, at most a slot late.
	if n := len(failures); n < 3*p.Max*59/61 || n > 3*p.Max {
		t.Fatalf("%d failures in three hours, want about %d", n, 3*p.Max)
	}
}

func testConcurrentAttemptsCannotExceedCap(t *testing.T, open Open) {
	// Everything happens at the same instant: only Max attempts may start.
	p := throttle.Policy{Window: time.Hour, Max: 10, Free: 10, BaseDelay: time.Second, MaxDelay: time.Second}
	m := open(t, clock.NewFake(start), p)
	ctx := context.Background()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			wait, err := m.Check(ctx, "user:victim")
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				allowed.Add(1)
				if err := m.Failure(ctx, "user:victim"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != int64(p.Max) {
		t.Fatalf("%d attempts allowed, want %d", got, p.Max)
	}
}

func testEmptyKey(t *testing.T, open Open) {
	m := open(t, clock.NewFake(start), testPolicy)
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
	}{
		{"Check", func() error { _, err := m.Check(ctx, ""); return err }},
		{"Failure", func() error { return m.Failure(ctx, "") }},
		{"Success", func() error { return m.Success(ctx, "") }},
		{"Release", func() error { return m.Release(ctx, "") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.call() == nil {
				t.Errorf("%s accepted an empty key", tc.name)
			}
		})
	}
}

// testLongKeys checks that keys too long to be stored as they are (and
// replaced by a digest) still count separately and together as they should.
func testLongKeys(t *testing.T, open Open) {
	m := open(t, clock.NewFake(start), testPolicy)
	ctx := context.Background()
	long := "user:" + strings.Repeat("y", 10_000)
	other := "user:" + strings.Repeat("y", 9_999) + "z"
	for range 3 {
		if err := m.Failure(ctx, long); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		key  string
		want time.Duration
	}{
		{"the same long key", long, time.Second},
		{"a long key differing in its last byte", other, 0},
		{"the account key of the same name", throttle.AccountKey(strings.Repeat("y", 10_000)), time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Check(ctx, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}

func testIPv6PrefixSharesTheCount(t *testing.T, open Open) {
	m := open(t, clock.NewFake(start), testPolicy)
	ctx := context.Background()
	for _, a := range []string{"2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"} {
		if err := m.Failure(ctx, throttle.IPKey(netip.MustParseAddr(a))); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		addr string
		want time.Duration
	}{
		{"another address in the /64", "2001:db8::abcd", time.Second},
		{"the next /64", "2001:db8:0:1::1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Check(ctx, throttle.IPKey(netip.MustParseAddr(tt.addr)))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}
