package app

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/testenv"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
)

// instance is one Gatehouse instance's share of a cluster test: its Redis
// store, revocation index, session manager and cluster follower.
type instance struct {
	rd       *redisstore.Store
	idx      *revocation.Index
	sessions *session.Manager
	cl       *cluster
}

// testPrefix returns a fresh Redis key prefix and deletes its keys when the
// test ends.
func testPrefix(t testing.TB, rawURL string) string {
	t.Helper()
	prefix := "gh-test-" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			t.Errorf("clean Redis: %v", err)
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean Redis: %v", err)
		}
	})
	return prefix
}

// startInstance starts an instance on the Redis at rawURL, with the
// session cache TTL cacheTTL (long: only the cluster's Forget can make it
// see a deletion elsewhere).
func startInstance(t *testing.T, rawURL, prefix string, staleAfter time.Duration) *instance {
	t.Helper()
	ctx := context.Background()
	rd, err := redisstore.Open(ctx, rawURL, redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := revocation.New(ctx, withoutControl{rd.Revocations()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(rd, session.Config{CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cl := newCluster(rd, idx, sessions, staleAfter, clock.System{}, log)
	bg, stop := context.WithCancel(ctx)
	cl.start(bg)
	t.Cleanup(func() {
		stop()
		cl.wait()
		rd.Close()
	})
	return &instance{rd: rd, idx: idx, sessions: sessions, cl: cl}
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// eventually waits, up to within, for cond to hold, and fails the test
// otherwise. It returns how long it waited.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		<-tick.C
	}
	return time.Since(start)
}

func (in *instance) inStep() bool { return in.cl.fresh.check() == nil }

func (in *instance) cacheOn() bool {
	in.cl.mu.Lock()
	defer in.cl.mu.Unlock()
	return in.cl.cacheOn
}

func (in *instance) revoked(t *testing.T, jti string) bool {
	t.Helper()
	r, err := in.cl.checker().Revoked(context.Background(), jti, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClusterFollowsOtherInstances(t *testing.T) {
	rawURL := testenv.Redis(t)
	prefix := testPrefix(t, rawURL)
	a := startInstance(t, rawURL, prefix, time.Second)
	b := startInstance(t, rawURL, prefix, time.Second)
	ctx := context.Background()
	eventually(t, 5*time.Second, "both in step with their session caches on", func() bool {
		return a.inStep() && b.inStep() && a.cacheOn() && b.cacheOn()
	})

	t.Run("a revocation on one is applied by the other", func(t *testing.T) {
		if err := a.idx.DenyToken(ctx, "jti-from-a", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		d := eventually(t, 2*time.Second, "b refuses a's denylisted jti", func() bool { return b.revoked(t, "jti-from-a") })
		t.Logf("applied by the other instance after %v", d)
		if b.revoked(t, "another-jti") {
			t.Fatal("b refuses a jti nobody revoked")
		}
	})

	t.Run("a session deleted on one is forgotten by the other", func(t *testing.T) {
		secret, _, err := b.sessions.Create(ctx, "u1", session.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.sessions.Lookup(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if err := b.sessions.Delete(ctx, secret); err != nil {
			t.Fatal(err)
		}
		// a caches sessions for an hour: only the notification explains a
		// refusal.
		eventually(t, 2*time.Second, "a refuses the session deleted on b", func() bool {
			_, err := a.sessions.Lookup(ctx, secret)
			return errors.Is(err, session.ErrNoSession)
		})
	})

	t.Run("a key notice reaches the other", func(t *testing.T) {
		drain(b.cl.keysChanged)
		a.cl.keysNotice(ctx)
		select {
		case <-b.cl.keysChanged:
		case <-time.After(2 * time.Second):
			t.Fatal("b did not receive a's key notice")
		}
	})

	t.Run("control entries stay out of the index", func(t *testing.T) {
		all, err := a.rd.Revocations().Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		controls := 0
		for _, e := range all {
			if isControl(e) {
				controls++
			}
		}
		if controls == 0 {
			t.Fatal("Redis holds no heartbeat or key notice")
		}
		filtered, err := withoutControl{a.rd.Revocations()}.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(filtered) != len(all)-controls {
			t.Fatalf("withoutControl loaded %d entries of %d, %d of them control", len(filtered), len(all), controls)
		}
		for _, e := range filtered {
			if isControl(e) {
				t.Fatalf("withoutControl loaded %q", e.ID)
			}
		}
		feed, err := a.idx.Since("", 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range feed.Entries {
			if isControl(e) {
				t.Fatalf("the index's feed holds %q", e.ID)
			}
		}
	})
}

func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// TestClusterFailsClosed cuts one instance off Redis, in the two ways a
// connection is lost, and checks that it refuses access tokens within the
// bound, turns its session cache off, and comes back by itself with what
// was revoked meanwhile.
func TestClusterFailsClosed(t *testing.T) {
	rawURL := testenv.Redis(t)
	const staleAfter = 400 * time.Millisecond
	cases := []struct {
		name string
		cut  func(*tcpProxy)
		// healsAlone: the instance must come back without restore.
		healsAlone bool
	}{
		{"connections closed (Redis down)", (*tcpProxy).cutAll, false},
		{"connections silent (a dropped route)", (*tcpProxy).freeze, false},
		{"the open connections die without a word, new ones work", (*tcpProxy).blackholeOpen, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix(t, rawURL)
			p := newTCPProxy(t, rawURL)
			a := startInstance(t, p.url, prefix, staleAfter)
			b := startInstance(t, rawURL, prefix, staleAfter)
			eventually(t, 5*time.Second, "in step", func() bool { return a.inStep() && b.inStep() && a.cacheOn() })

			tc.cut(p)
			d := eventually(t, staleAfter+time.Second, "a refuses tokens once cut off", func() bool {
				_, err := a.cl.checker().Revoked(context.Background(), "any", "", "", time.Now())
				return errors.Is(err, errStale)
			})
			t.Logf("failing closed %v after the cut (bound %v)", d, staleAfter)
			if err := a.cl.ready(context.Background()); !errors.Is(err, errStale) {
				t.Fatalf("ready while cut off: %v", err)
			}
			eventually(t, time.Second, "a's session cache off", func() bool { return !a.cacheOn() })

			if err := b.idx.DenyToken(context.Background(), "jti-during-the-cut", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if !tc.healsAlone {
				p.restore()
			}
			d = eventually(t, 10*time.Second, "a in step again", a.inStep)
			t.Logf("in step %v after the repair", d)
			if !a.revoked(t, "jti-during-the-cut") {
				t.Fatal("a, back in step, accepts a jti revoked while it was cut off")
			}
			eventually(t, 5*time.Second, "a's session cache on again", a.cacheOn)
		})
	}
}

// tcpProxy forwards connections to a Redis server, and can cut them.
type tcpProxy struct {
	url    string // the Redis URL through the proxy
	target string
	ln     net.Listener

	mu     sync.Mutex
	gate   *sync.Cond
	frozen bool // forward nothing, close nothing
	cut    bool // close every connection, refuse new ones
	conns  map[net.Conn]bool
	dead   map[net.Conn]bool // never forward again
	wg     sync.WaitGroup
}

func newTCPProxy(t *testing.T, rawURL string) *tcpProxy {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: u.Host, ln: ln, conns: map[net.Conn]bool{}, dead: map[net.Conn]bool{}}
	p.gate = sync.NewCond(&p.mu)
	u.Host = ln.Addr().String()
	p.url = u.String()
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.restore()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst, holding what it read while frozen.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen || p.dead[src] {
				p.gate.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// cutAll closes every connection and refuses new ones, as a Redis that
// went down.
func (p *tcpProxy) cutAll() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.closeAll()
}

// freeze stops forwarding without closing anything, as a route that
// drops packets.
func (p *tcpProxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// blackholeOpen makes every open connection forward nothing, ever, without
// closing it, as a proxy or NAT that forgot it; new connections work.
func (p *tcpProxy) blackholeOpen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.dead[c] = true
	}
}

// restore forwards again (but not on blackholed connections).
func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.cut, p.frozen = false, false
	p.gate.Broadcast()
	p.mu.Unlock()
}

func (p *tcpProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	clear(p.dead)
	p.gate.Broadcast()
}
