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

var testPolicy = Policy{Window: time.Hour, Max: 100, Free: 3, BaseDelay: time.Second, MaxDelay: 20 * time.Second}

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
	t.Run("a throttled key is never forgotten: a full limiter refuses new keys", func(t *testing.T) {
		c := clock.NewFake(start)
		m := newMemory(c, testPolicy, 3, 1)
		for _, k := range []string{"a", "b", "c"} {
			c.Advance(time.Second)
			for range 3 { // Free is 3: each key is now throttled
				if err := m.Failure(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := m.Failure(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]bool{"a": true, "b": true, "c": true, "d": false} {
			if got := m.tracked(k); got != want {
				t.Errorf("key %q tracked = %v, want %v", k, got, want)
			}
		}
		if wait, _ := m.Check(ctx, "d"); wait != fullWait {
			t.Errorf("Check(d) on a full limiter = %v, want %v (fail closed)", wait, fullWait)
		}
	})
	t.Run("a key within its free allowance makes room", func(t *testing.T) {
		c := clock.NewFake(start)
		m := newMemory(c, testPolicy, 3, 1)
		for _, k := range []string{"a", "b", "c"} {
			c.Advance(time.Second)
			n := 3
			if k == "b" {
				n = 1 // within the free allowance: expendable
			}
			for range n {
				if err := m.Failure(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := m.Failure(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
			if got := m.tracked(k); got != want {
				t.Errorf("key %q tracked = %v, want %v", k, got, want)
			}
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
