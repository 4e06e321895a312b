package throttle

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
)

// start is slot-aligned for every window used below (a whole minute).
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

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

var testPolicy = Policy{Window: time.Hour, Max: 100, Free: 3, BaseDelay: time.Second, MaxDelay: 20 * time.Second}

func TestMemoryDecisions(t *testing.T) {
	capPolicy := Policy{Window: time.Hour, Max: 3, Free: 3, BaseDelay: time.Second, MaxDelay: time.Second}
	tests := []struct {
		name   string
		policy Policy
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
			policy: DefaultAccountPolicy,
			steps: seq(
				attempts(5, "k"),
				check(time.Second), advance(time.Second), attempt("k"),
				check(2*time.Second), advance(2*time.Second), attempt("k"),
				check(4*time.Second),
			),
		},
		{
			name:   "default account policy delay caps at five minutes",
			policy: DefaultAccountPolicy,
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
			policy: Policy{Window: time.Hour, Max: 4, Free: 0, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
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
			steps:  seq(attempt("k"), check(0), check(0), check(AttemptHold), advance(time.Second), check(AttemptHold-time.Second)),
		},
		{
			name:   "an attempt never ended lapses",
			policy: capPolicy,
			steps:  seq(attempt("k"), check(0), check(0), check(AttemptHold), advance(AttemptHold), check(0)),
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
			m := NewMemory(c, tt.policy)
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

func TestMemoryAtMostMaxFailuresPerWindow(t *testing.T) {
	// An attacker who retries the moment Check allows it, for three hours:
	// no window of an hour ever holds more than Max failures.
	p := Policy{Window: time.Hour, Max: 100, Free: 5, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}
	c := clock.NewFake(start)
	m := NewMemory(c, p)
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

func TestMemoryConcurrentAttemptsCannotExceedCap(t *testing.T) {
	// Everything happens at the same instant: only Max attempts may start.
	p := Policy{Window: time.Hour, Max: 10, Free: 10, BaseDelay: time.Second, MaxDelay: time.Second}
	m := NewMemory(clock.NewFake(start), p)
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

func TestMemoryConcurrentUse(t *testing.T) {
	c := clock.NewFake(start)
	m := newMemory(c, testPolicy, 50, 4)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprintf("user:%d", (g*31+i)%80)
				wait, err := m.Check(ctx, key)
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case wait > 0:
					c.Advance(time.Millisecond)
				case i%7 == 0:
					err = m.Success(ctx, key)
				case i%5 == 0:
					err = m.Release(ctx, key)
				default:
					err = m.Failure(ctx, key)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := m.keys(); n > 50 {
		t.Fatalf("%d keys tracked, bound is 50", n)
	}
}

func TestMemoryEviction(t *testing.T) {
	ctx := context.Background()
	t.Run("bound holds", func(t *testing.T) {
		c := clock.NewFake(start)
		m := newMemory(c, testPolicy, 64, 4)
		for i := range 5000 {
			if err := m.Failure(ctx, fmt.Sprintf("ip:%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if n := m.keys(); n > 64 || n < 32 {
			t.Fatalf("%d keys tracked, want between 32 and 64", n)
		}
	})
	t.Run("least recently failed goes first", func(t *testing.T) {
		c := clock.NewFake(start)
		m := newMemory(c, testPolicy, 3, 1)
		for _, k := range []string{"a", "b", "c"} {
			c.Advance(time.Second)
			for range 3 {
				if err := m.Failure(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
		}
		// "a" fails again: "b" is now the least recently failed.
		if err := m.Failure(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := m.Failure(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
			if got := m.tracked(k); got != want {
				t.Errorf("key %q tracked = %v, want %v", k, got, want)
			}
		}
		if wait, _ := m.Check(ctx, "c"); wait != time.Second {
			t.Errorf("Check(c) = %v, want 1s", wait)
		}
		if wait, _ := m.Check(ctx, "b"); wait != 0 {
			t.Errorf("Check(b) = %v, want 0 (forgotten)", wait)
		}
	})
	t.Run("expired entries go before live ones", func(t *testing.T) {
		c := clock.NewFake(start)
		m := newMemory(c, testPolicy, 3, 1)
		for range 3 {
			if err := m.Failure(ctx, "old"); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(2 * time.Hour)
		for _, k := range []string{"a", "b"} {
			for range 3 {
				if err := m.Failure(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n := m.keys(); n != 2 {
			t.Fatalf("%d keys tracked, want 2 (the expired one removed)", n)
		}
	})
	t.Run("ended attempts leave nothing behind", func(t *testing.T) {
		c := clock.NewFake(start)
		m := NewMemory(c, testPolicy)
		for i := range 100 {
			k := fmt.Sprintf("user:%d", i)
			if _, err := m.Check(ctx, k); err != nil {
				t.Fatal(err)
			}
			var err error
			if i%2 == 0 {
				err = m.Success(ctx, k)
			} else {
				err = m.Release(ctx, k)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := m.keys(); n != 0 {
			t.Fatalf("%d keys tracked after every attempt succeeded or was released", n)
		}
	})
}

// tracked reports whether m holds state for key.
func (m *Memory) tracked(key string) bool {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries[key]
	return ok
}

func TestMemoryEmptyKey(t *testing.T) {
	m := NewMemory(clock.NewFake(start), testPolicy)
	ctx := context.Background()
	if _, err := m.Check(ctx, ""); err == nil {
		t.Error("Check accepted an empty key")
	}
	if err := m.Failure(ctx, ""); err == nil {
		t.Error("Failure accepted an empty key")
	}
}

func TestMemoryLongKeysAreBounded(t *testing.T) {
	m := NewMemory(clock.NewFake(start), testPolicy)
	ctx := context.Background()
	long := AccountKey(strings.Repeat("x", 60_000))
	if len(long) > maxKeyLen {
		t.Fatalf("AccountKey of a long name is %d bytes", len(long))
	}
	raw := "user:" + strings.Repeat("y", 10_000)
	for range 3 {
		if err := m.Failure(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if wait, _ := m.Check(ctx, raw); wait != time.Second {
		t.Fatalf("Check of a long key = %v, want 1s", wait)
	}
	s := m.shard(compactKey(raw))
	for k := range s.entries {
		if len(k) > maxKeyLen {
			t.Fatalf("stored a %d-byte key", len(k))
		}
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"ipv4", "192.0.2.1", "ip:192.0.2.1"},
		{"ipv4 mapped", "::ffff:192.0.2.1", "ip:192.0.2.1"},
		{"ipv6 grouped by /64", "2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"},
		{"ipv6 same /64", "2001:db8:1:2:ffff:ffff:ffff:ffff", "ip:2001:db8:1:2::/64"},
		{"ipv6 next /64", "2001:db8:1:3::1", "ip:2001:db8:1:3::/64"},
		{"ipv6 zone ignored", "fe80::1%eth0", "ip:fe80::/64"},
		{"ipv6 loopback", "::1", "ip:::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IPKey(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("IPKey(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
	if got := IPKey(netip.Addr{}); got != "ip:invalid" {
		t.Fatalf("IPKey(zero) = %q", got)
	}
}

func TestIPv6PrefixSharesTheCount(t *testing.T) {
	m := NewMemory(clock.NewFake(start), testPolicy)
	ctx := context.Background()
	for _, a := range []string{"2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"} {
		if err := m.Failure(ctx, IPKey(netip.MustParseAddr(a))); err != nil {
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
			got, err := m.Check(ctx, IPKey(netip.MustParseAddr(tt.addr)))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAccountKey(t *testing.T) {
	if got := AccountKey("alice"); got != "user:alice" {
		t.Fatalf("AccountKey(alice) = %q", got)
	}
	a, b := AccountKey(strings.Repeat("a", 200)), AccountKey(strings.Repeat("a", 199)+"b")
	if a == b || !strings.HasPrefix(a, "sha256:") {
		t.Fatalf("long names: %q, %q", a, b)
	}
}

func TestPolicyValidate(t *testing.T) {
	ok := testPolicy
	tests := []struct {
		name    string
		mutate  func(*Policy)
		wantErr bool
	}{
		{"test policy", func(*Policy) {}, false},
		{"default account", func(p *Policy) { *p = DefaultAccountPolicy }, false},
		{"default ip", func(p *Policy) { *p = DefaultIPPolicy }, false},
		{"free equals max", func(p *Policy) { p.Free = p.Max }, false},
		{"zero free", func(p *Policy) { p.Free = 0 }, false},
		{"zero policy", func(p *Policy) { *p = Policy{} }, true},
		{"short window", func(p *Policy) { p.Window = time.Millisecond }, true},
		{"zero max", func(p *Policy) { p.Max = 0 }, true},
		{"negative free", func(p *Policy) { p.Free = -1 }, true},
		{"free above max", func(p *Policy) { p.Free = p.Max + 1 }, true},
		{"zero base delay", func(p *Policy) { p.BaseDelay = 0 }, true},
		{"max delay below base", func(p *Policy) { p.MaxDelay = p.BaseDelay / 2 }, true},
		{"max delay above window", func(p *Policy) { p.MaxDelay = 2 * p.Window }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.mutate(&p)
			if err := p.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewMemoryPanicsOnInvalidPolicy(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewMemory accepted an invalid policy")
		}
	}()
	NewMemory(clock.NewFake(start), Policy{})
}

func TestPolicyDelayNeverOverflows(t *testing.T) {
	p := Policy{Window: 24 * time.Hour, Max: 1000, Free: 0, BaseDelay: time.Hour, MaxDelay: 24 * time.Hour}
	for n := range 1000 {
		if d := p.delay(n); d <= 0 || d > p.MaxDelay {
			t.Fatalf("delay(%d) = %v", n, d)
		}
	}
}

func benchmarkCheckFailure(b *testing.B, shards int) {
	m := newMemory(clock.System{}, DefaultAccountPolicy, MaxKeys, shards)
	ctx := context.Background()
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = AccountKey(fmt.Sprintf("user%d", i))
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			k := keys[i%len(keys)]
			i++
			if wait, _ := m.Check(ctx, k); wait == 0 {
				_ = m.Failure(ctx, k)
			}
		}
	})
}

// BenchmarkCheckFailure measures a Check followed by a Failure, from
// GOMAXPROCS goroutines, with 16 shards and with a single lock.
func BenchmarkCheckFailure(b *testing.B) {
	b.Run("shards=16", func(b *testing.B) { benchmarkCheckFailure(b, 16) })
	b.Run("shards=1", func(b *testing.B) { benchmarkCheckFailure(b, 1) })
}
