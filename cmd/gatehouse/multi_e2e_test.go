package main

// End-to-end tests of several instances: three `gatehouse serve` processes
// on one PostgreSQL schema and one Redis key prefix of their own, talked to
// over real HTTP. They need GATEHOUSE_TEST_POSTGRES_URL and
// GATEHOUSE_TEST_REDIS_URL (skipped without them, failed in CI).

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/internal/testenv"
)

// multiPropagationBound is the p99 that revocation propagation must meet
// on loopback.
const multiPropagationBound = 50 * time.Millisecond

// multiStaleAfter is the --revocation-stale-after of the functional
// clusters: longer than the default, so that a machine busy with -race
// test binaries never makes an instance fail closed by accident. The outage
// test sets its own.
const multiStaleAfter = "3s"

// multiCluster is three instances of one deployment.
type multiCluster struct {
	a, b, c *server
	all     []*server
}

// multiOptions are the knobs of multiStart.
type multiOptions struct {
	// redisURL returns the Redis URL of instance i (0, 1, 2); nil means
	// the test server's for all.
	redisURL func(i int, direct string) string
	// extra are flags for every instance.
	extra []string
}

// multiStart starts three instances on a fresh PostgreSQL schema and Redis
// prefix (both removed when the test ends), one after the other, each
// ready before the next starts.
func multiStart(t *testing.T, o multiOptions) *multiCluster {
	t.Helper()
	pgURL, schema := testenv.PostgresSchema(t)
	redisURL := testenv.Redis(t)
	prefix := multiRedisPrefix(t, redisURL)
	kek := make([]byte, 32)
	rand.Read(kek)
	args := []string{
		"--postgres", pgURL, "--postgres-schema", schema,
		"--redis-prefix", prefix,
		"--kek", base64.StdEncoding.EncodeToString(kek),
		"--issuer", "http://gatehouse.test",
		"--admin-key", e2eAdminKey, "--service-key", tokServiceKey,
		"--revocation-stale-after", multiStaleAfter,
	}
	args = append(args, o.extra...)
	mc := &multiCluster{}
	for i := range 3 {
		ru := redisURL
		if o.redisURL != nil {
			ru = o.redisURL(i, redisURL)
		}
		mc.all = append(mc.all, startServer(t, t.TempDir(), append(slices.Clone(args), "--redis", ru)...))
	}
	mc.a, mc.b, mc.c = mc.all[0], mc.all[1], mc.all[2]
	return mc
}

// multiRedisPrefix returns a fresh key prefix and deletes its keys when
// the test ends.
func multiRedisPrefix(t *testing.T, rawURL string) string {
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

// multiVerify asks s's forward-auth endpoint about a credential: a session
// cookie (l) or an access token.
func multiVerify(ctx context.Context, s *server, l *login, access string) (int, error) {
	c := call{method: "GET", path: "/v1/verify"}
	if l != nil {
		c.cookie = l.cookie
	} else {
		c.headers = map[string]string{"Authorization": "Bearer " + access}
	}
	r, err := s.try(ctx, c)
	return r.status, err
}

// multiWantVerify fails the test unless each server answers want.
func multiWantVerify(t *testing.T, what string, want int, l *login, access string, servers ...*server) {
	t.Helper()
	for _, s := range servers {
		st, err := multiVerify(context.Background(), s, l, access)
		if err != nil || st != want {
			t.Fatalf("%s on %s: status %d (%v), want %d", what, s.url, st, err, want)
		}
	}
}

// multiUntilRefused asks each server about the credential in a tight loop
// until it answers 401, and returns how long after start each first did.
// Any status but 200 and 401 fails the test.
func multiUntilRefused(t *testing.T, start time.Time, within time.Duration, l *login, access string, servers ...*server) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(context.Background(), start.Add(within))
			defer cancel()
			for {
				st, err := multiVerify(ctx, s, l, access)
				switch {
				case err != nil:
					errs[i] = fmt.Errorf("%s: still not refused %v after the revocation: %w", s.url, within, err)
					return
				case st == http.StatusUnauthorized:
					out[i] = time.Since(start)
					return
				case st != http.StatusOK:
					errs[i] = fmt.Errorf("%s: status %d", s.url, st)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// multiPercentile returns the p-th percentile (nearest rank) of ds.
func multiPercentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(p/100*float64(len(s)) + 0.999999)
	return s[max(rank, 1)-1]
}

// TestMultiRevocationPropagation: a login on A, verified on B, logged out
// on C, is refused on A and B at once; the same for an access token
// revoked (RFC 7009) on C. It measures the delay from C's answer to the
// refusals, 50 times each on two instances: 100 samples per path, so that
// the p99 (nearest rank) is not simply the one slowest sample, which a
// scheduling hiccup of a loaded CI machine can make.
func TestMultiRevocationPropagation(t *testing.T) {
	mc := multiStart(t, multiOptions{})
	mc.a.signup("alice", e2ePassword)
	const reps = 50

	var sessionDelays, tokenDelays []time.Duration
	for range reps {
		l := mc.a.login("alice", e2ePassword)
		multiWantVerify(t, "the session", http.StatusOK, &l, "", mc.a, mc.b, mc.c)
		out := mc.c.as(l, call{method: "DELETE", path: "/v1/sessions/current"}, true)
		done := time.Now()
		wantStatus(t, "logout on C", out, http.StatusNoContent)
		sessionDelays = append(sessionDelays, multiUntilRefused(t, done, 2*time.Second, &l, "", mc.a, mc.b)...)
	}
	for range reps {
		p := mc.a.tokPassword("alice", e2ePassword)
		multiWantVerify(t, "the access token", http.StatusOK, nil, p.access, mc.a, mc.b, mc.c)
		mc.c.tokRevoke("revoke on C", p.access, "access_token")
		done := time.Now()
		tokenDelays = append(tokenDelays, multiUntilRefused(t, done, 2*time.Second, nil, p.access, mc.a, mc.b)...)
	}
	for _, m := range []struct {
		what string
		ds   []time.Duration
	}{{"session logout", sessionDelays}, {"access token revocation", tokenDelays}} {
		p50, p99 := multiPercentile(m.ds, 50), multiPercentile(m.ds, 99)
		t.Logf("%s on C refused on A and B after: p50 %v, p99 %v, max %v (%d samples)",
			m.what, p50, p99, slices.Max(m.ds), len(m.ds))
		if p99 > multiPropagationBound {
			t.Errorf("%s: p99 propagation %v, want at most %v", m.what, p99, multiPropagationBound)
		}
	}
}

// TestMultiForcedLogoutAndRevoke: a forced logout on A ends the session
// and the tokens on B and C; an access token revoked on B is refused on A.
func TestMultiForcedLogoutAndRevoke(t *testing.T) {
	mc := multiStart(t, multiOptions{})
	uid := mc.a.signup("bob", e2ePassword)
	mc.a.signup("carol", e2ePassword)

	// RFC 7009 on B, refused on A (and C), another token unaffected.
	p := mc.b.tokPassword("bob", e2ePassword)
	other := mc.c.tokPassword("bob", e2ePassword)
	multiWantVerify(t, "the access token", http.StatusOK, nil, p.access, mc.a, mc.c)
	mc.b.tokRevoke("revoke on B", p.access, "access_token")
	d := multiUntilRefused(t, time.Now(), time.Second, nil, p.access, mc.a, mc.c)
	t.Logf("access token revoked on B refused on A after %v, on C after %v", d[0], d[1])
	multiWantVerify(t, "another access token of the user", http.StatusOK, nil, other.access, mc.a, mc.b, mc.c)

	// Forced logout on A: B's session and C's token, and every other
	// credential of bob, are refused everywhere; carol's are not.
	l := mc.b.login("bob", e2ePassword)
	tok := mc.c.tokPassword("bob", e2ePassword)
	carol := mc.b.login("carol", e2ePassword)
	carolTok := mc.c.tokPassword("carol", e2ePassword)
	multiWantVerify(t, "bob's session", http.StatusOK, &l, "", mc.b, mc.c)
	multiWantVerify(t, "bob's token", http.StatusOK, nil, tok.access, mc.b, mc.c)
	wantStatus(t, "forced logout on A", mc.a.do(adminCall(call{method: "POST", path: "/v1/admin/users/" + uid + "/logout"})), http.StatusNoContent)
	done := time.Now()
	ds := multiUntilRefused(t, done, time.Second, &l, "", mc.b, mc.c)
	dt := multiUntilRefused(t, done, time.Second, nil, tok.access, mc.b, mc.c)
	t.Logf("forced logout on A: session refused on B, C after %v; token after %v", ds, dt)
	multiWantVerify(t, "bob's other token after the forced logout", http.StatusUnauthorized, nil, other.access, mc.a, mc.b, mc.c)
	tokWantOAuthError(t, "bob's refresh token on B after the forced logout", mc.b.tokRefresh(tok.refresh), http.StatusBadRequest, "invalid_grant")
	multiWantVerify(t, "carol's session", http.StatusOK, &carol, "", mc.a, mc.b, mc.c)
	multiWantVerify(t, "carol's token", http.StatusOK, nil, carolTok.access, mc.a, mc.b, mc.c)
}

// TestMultiRefreshReuse: a refresh token reused on A kills its family on
// B and C, access tokens included.
func TestMultiRefreshReuse(t *testing.T) {
	mc := multiStart(t, multiOptions{extra: []string{"--refresh-grace", "0s"}})
	mc.a.signup("dave", e2ePassword)
	p := mc.b.tokPassword("dave", e2ePassword)
	p2 := tokPairFrom(t, "rotation on C", mc.c.tokRefresh(p.refresh))
	control := mc.a.tokPassword("dave", e2ePassword)
	multiWantVerify(t, "the rotated access token", http.StatusOK, nil, p2.access, mc.a, mc.b, mc.c)

	tokWantOAuthError(t, "reuse on A of the token rotated on C", mc.a.tokRefresh(p.refresh), http.StatusBadRequest, "invalid_grant")
	done := time.Now()
	d := multiUntilRefused(t, done, time.Second, nil, p2.access, mc.b, mc.c)
	t.Logf("family killed on A: its access token refused on B after %v, on C after %v", d[0], d[1])
	multiWantVerify(t, "the family's first access token", http.StatusUnauthorized, nil, p.access, mc.a, mc.b, mc.c)
	tokWantOAuthError(t, "the family's newest refresh token on B", mc.b.tokRefresh(p2.refresh), http.StatusBadRequest, "invalid_grant")
	multiWantVerify(t, "another family's access token", http.StatusOK, nil, control.access, mc.a, mc.b, mc.c)
	tokPairFrom(t, "another family's refresh on C", mc.c.tokRefresh(control.refresh))
	if ev := mc.c.tokAudit("token.reuse_detected"); len(ev) != 1 {
		t.Fatalf("%d reuse events in the shared audit log, want 1", len(ev))
	}
}

// TestMultiRefreshRaceKeysAndThrottle: parallel refreshes of one token on
// A and B all succeed as siblings of one family; a key rotated on B signs
// tokens that A and C accept; failed logins on A, B and C add up to the
// per-account backoff.
func TestMultiRefreshRaceKeysAndThrottle(t *testing.T) {
	mc := multiStart(t, multiOptions{})
	mc.a.signup("erin", e2ePassword)

	// The refresh race.
	p := mc.a.tokPassword("erin", e2ePassword)
	sid := tokClaims(t, p.access)["sid"]
	const tabs = 20
	results := make([]result, tabs)
	errs := make([]error, tabs)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range tabs {
		s := mc.all[i%2] // A and B
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			results[i], errs[i] = s.try(ctx, tokFormCall("/v1/token", tokForm("grant_type", "refresh_token", "refresh_token", p.refresh), nil))
		}()
	}
	close(start)
	wg.Wait()
	seen := map[string]bool{}
	for i := range tabs {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		np := tokPairFrom(t, fmt.Sprintf("parallel refresh %d on %s", i, mc.all[i%2].url), results[i])
		if seen[np.refresh] {
			t.Fatalf("refresh %d got a refresh token already handed out", i)
		}
		seen[np.refresh] = true
		if got := tokClaims(t, np.access)["sid"]; got != sid {
			t.Fatalf("refresh %d is of family %v, want %v", i, got, sid)
		}
		multiWantVerify(t, fmt.Sprintf("the access token of refresh %d", i), http.StatusOK, nil, np.access, mc.c)
		tokPairFrom(t, fmt.Sprintf("second rotation of refresh %d", i), mc.all[(i+1)%3].tokRefresh(np.refresh))
	}
	if ev := mc.c.tokAudit("token.reuse_detected"); len(ev) != 0 {
		t.Fatalf("%d reuse events for refreshes within the grace period", len(ev))
	}

	// Key rotation on B: B signs with the new key at once (--dev: no
	// publish delay); A and C learn it from B's notice, well within the
	// 10-second periodic reload.
	rot := mc.b.do(adminCall(call{method: "POST", path: "/v1/admin/keys/rotate"}))
	rotated := time.Now()
	wantStatus(t, "rotate on B", rot, http.StatusOK)
	kid, _ := rot.json(t)["kid"].(string)
	for _, s := range []*server{mc.a, mc.c} {
		for !slices.Contains(s.tokJWKS(), kid) {
			if time.Since(rotated) > 2*time.Second {
				t.Fatalf("%s does not publish B's new key %v after the rotation", s.url, time.Since(rotated))
			}
		}
		t.Logf("%s publishes B's new key %v after the rotation", s.url, time.Since(rotated))
	}
	nt := mc.b.tokPassword("erin", e2ePassword)
	if got := tokKID(t, nt.access); got != kid {
		t.Fatalf("B signs with %s after rotating to %s", got, kid)
	}
	multiWantVerify(t, "a token signed with B's new key", http.StatusOK, nil, nt.access, mc.a, mc.c)

	// Throttling: five failures (the free ones) on A, B, C, A, B; then even
	// the right password on C waits.
	mc.a.signup("frank", e2ePassword)
	for i := range 5 {
		s := mc.all[[]int{0, 1, 2, 0, 1}[i]]
		r := s.do(call{method: "POST", path: "/v1/sessions", body: credJSON("frank", "wrong password "+fmt.Sprint(i))})
		wantStatus(t, fmt.Sprintf("failed login %d on %s", i, s.url), r, http.StatusUnauthorized)
	}
	r := mc.c.do(call{method: "POST", path: "/v1/sessions", body: credJSON("frank", e2ePassword)})
	wantStatus(t, "the sixth attempt, on C", r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	mc.c.login("erin", e2ePassword) // another account is not throttled
}

// TestMultiRedisOutage cuts instance A off Redis: A refuses access tokens
// and sessions (5xx) and answers /readyz 503 within the bound, B serves
// on; once Redis is back, A comes back by itself and refuses what B revoked
// meanwhile.
func TestMultiRedisOutage(t *testing.T) {
	var proxy *multiProxy
	const staleAfter = 500 * time.Millisecond
	mc := multiStart(t, multiOptions{
		redisURL: func(i int, direct string) string {
			if i > 0 {
				return direct
			}
			proxy = newMultiProxy(t, direct)
			return proxy.url
		},
		extra: []string{"--revocation-stale-after", staleAfter.String()},
	})
	mc.a.signup("gina", e2ePassword)
	p := mc.b.tokPassword("gina", e2ePassword)
	keep := mc.b.tokPassword("gina", e2ePassword)
	l := mc.b.login("gina", e2ePassword)
	multiWantVerify(t, "the token", http.StatusOK, nil, p.access, mc.a, mc.b)
	multiWantVerify(t, "the session", http.StatusOK, &l, "", mc.a, mc.b)

	proxy.cutAll()
	cut := time.Now()
	for {
		st, err := multiVerify(context.Background(), mc.a, nil, p.access)
		if err != nil {
			t.Fatal(err)
		}
		if st >= 500 {
			break
		}
		if st != http.StatusOK || time.Since(cut) > staleAfter+2*time.Second {
			t.Fatalf("A cut off from Redis answers %d for a token %v after the cut", st, time.Since(cut))
		}
	}
	t.Logf("A refuses access tokens (5xx) %v after losing Redis (bound %v)", time.Since(cut), staleAfter)
	wantStatus(t, "/readyz on A while cut off", mc.a.do(call{method: "GET", path: "/readyz"}), http.StatusServiceUnavailable)
	// The session cache goes off within a tick (a twentieth of the bound)
	// of the tokens' refusal; then every lookup asks Redis, and fails.
	for {
		st, err := multiVerify(context.Background(), mc.a, &l, "")
		if err != nil {
			t.Fatal(err)
		}
		if st >= 500 {
			break
		}
		if st != http.StatusOK || time.Since(cut) > staleAfter+2*time.Second {
			t.Fatalf("A cut off from Redis answers %d for a session %v after the cut", st, time.Since(cut))
		}
	}
	t.Logf("A refuses sessions (5xx) %v after losing Redis", time.Since(cut))
	feed := call{method: "GET", path: "/v1/revocations?wait=0", headers: map[string]string{"Authorization": "Bearer " + tokServiceKey}}
	wantStatus(t, "the revocation feed of A while cut off", mc.a.do(feed), http.StatusServiceUnavailable)
	multiWantVerify(t, "the token on B", http.StatusOK, nil, p.access, mc.b)
	wantStatus(t, "/readyz on B", mc.b.do(call{method: "GET", path: "/readyz"}), http.StatusOK)
	wantStatus(t, "the revocation feed of B", mc.b.do(feed), http.StatusOK)
	mc.b.tokRevoke("revoke on B during the outage", p.access, "access_token")

	proxy.restore()
	restored := time.Now()
	if err := mc.a.waitReady(); err != nil {
		t.Fatal(err)
	}
	t.Logf("A ready again %v after Redis came back", time.Since(restored))
	multiWantVerify(t, "the token revoked during the outage", http.StatusUnauthorized, nil, p.access, mc.a)
	multiWantVerify(t, "another token", http.StatusOK, nil, keep.access, mc.a)
	multiWantVerify(t, "the session", http.StatusOK, &l, "", mc.a)
	wantStatus(t, "the revocation feed of A once back", mc.a.do(feed), http.StatusOK)
}

// multiProxy forwards TCP connections to Redis and can cut them all.
type multiProxy struct {
	url    string
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newMultiProxy(t *testing.T, rawURL string) *multiProxy {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &multiProxy{target: u.Host, ln: ln, conns: map[net.Conn]bool{}}
	u.Host = ln.Addr().String()
	p.url = u.String()
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *multiProxy) accept() {
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

func (p *multiProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
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

// cutAll closes every connection and refuses new ones: Redis is down.
func (p *multiProxy) cutAll() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.closeAll()
}

// restore lets connections through again.
func (p *multiProxy) restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *multiProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}
