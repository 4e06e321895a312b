package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/testenv"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
	"github.com/gatehouse-auth/gatehouse/throttle"
	"github.com/gatehouse-auth/gatehouse/throttle/throttletest"
)

// start is the time of the fake clocks below.
var start = time.Date(2031, time.May, 17, 9, 41, 7, 123456789, time.UTC)

// randomHex returns n random bytes in hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// openURL opens a Store at url with a random prefix of its own, and deletes
// every key under that prefix when the test ends.
func openURL(t testing.TB, url string, c clock.Clock) *Store {
	t.Helper()
	return openPrefixed(t, url, c, "ghtest:"+randomHex(t, 8)+":")
}

// openPrefixed opens a Store at url with prefix, and deletes every key under
// that prefix when the test ends.
func openPrefixed(t testing.TB, url string, c clock.Clock, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{Clock: c, Prefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := s.keys(ctx)
		if err == nil && len(keys) > 0 {
			s.del(ctx, keys...)
		}
		if err != nil {
			t.Errorf("list keys: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openTest opens a Store on the Redis server of GATEHOUSE_TEST_REDIS_URL.
func openTest(t testing.TB, c clock.Clock) *Store {
	t.Helper()
	return openURL(t, testenv.Redis(t), c)
}

// keys returns every key under the Store's prefix, on every master.
func (s *Store) keys(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var out []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			out = append(out, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if s.cluster != nil {
		err = s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.client)
	}
	return out, err
}

// conformance runs the suites of every interface the package implements,
// each subtest on a new Store from open.
func conformance(t *testing.T, open func(t testing.TB, c clock.Clock) *Store) {
	t.Run("Sessions", func(t *testing.T) {
		storetest.TestSessions(t, func(t *testing.T, c clock.Clock) session.Store { return open(t, c) })
	})
	t.Run("Revocation", func(t *testing.T) {
		storetest.TestRevocation(t, func(t *testing.T, c clock.Clock) revocation.Store { return open(t, c).Revocations() })
	})
	t.Run("Limiter", func(t *testing.T) {
		throttletest.Run(t, func(t *testing.T, c clock.Clock, p throttle.Policy) throttle.Limiter {
			l, err := open(t, c).Limiter("test", p)
			if err != nil {
				t.Fatal(err)
			}
			return l
		})
	})
}

func TestConformance(t *testing.T) {
	url := testenv.Redis(t)
	conformance(t, func(t testing.TB, c clock.Clock) *Store { return openURL(t, url, c) })
}

// newSession returns a session of userID created at c's time.
func newSession(t testing.TB, c clock.Clock, userID string) *session.Session {
	now := c.Now()
	return &session.Session{
		ID: "sess-" + randomHex(t, 8), Hash: []byte(randomHex(t, 16)), UserID: userID,
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(30 * time.Minute), ExpiresAt: now.Add(12 * time.Hour),
		UserAgent: "test", IP: "192.0.2.1",
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestKeysExpire checks that every key the Store writes has a TTL, within
// the bounds the package documents, and that once everything is deleted or
// purged, no key is left.
func TestKeysExpire(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	s := openTest(t, c)

	a := newSession(t, c, "alice")
	a.IdleExpiresAt = a.CreatedAt.Add(10 * time.Minute)
	b := newSession(t, c, "alice")
	d := newSession(t, c, "bob")
	for _, sess := range []*session.Session{a, b, d} {
		must(t, "CreateSession", s.CreateSession(ctx, sess))
	}
	rv := s.Revocations()
	must(t, "DenyToken", rv.DenyToken(ctx, "jti", start.Add(11*time.Minute)))
	must(t, "RevokeUser", rv.RevokeUser(ctx, "alice", start, start.Add(time.Hour)))
	l, err := s.Limiter("account", throttle.DefaultAccountPolicy)
	must(t, "Limiter", err)
	must(t, "Failure", l.Failure(ctx, "user:alice"))

	hx := func(sess *session.Session) string { return hex.EncodeToString(sess.Hash) }
	const m = expiryMargin
	// The most each key may keep (the least is a second less: time runs).
	want := map[string]time.Duration{
		s.recordPrefix("alice") + hx(a): 10*time.Minute + m,
		s.recordPrefix("alice") + hx(b): 30*time.Minute + m,
		s.recordPrefix("bob") + hx(d):   30*time.Minute + m,
		s.indexKey("alice"):             12*time.Hour + m,
		s.indexKey("bob"):               12*time.Hour + m,
		s.hashKey(hx(a)):                12*time.Hour + m,
		s.hashKey(hx(b)):                12*time.Hour + m,
		s.hashKey(hx(d)):                12*time.Hour + m,
		s.idKey(a.ID):                   12*time.Hour + m,
		s.idKey(b.ID):                   12*time.Hour + m,
		s.idKey(d.ID):                   12*time.Hour + m,
		s.scheduleKey:                   12*time.Hour + m,
		l.prefix + "user:alice":         61*time.Minute + throttle.AttemptHold + m,
	}
	// A bucket keeps its latest entry's time.
	tokenBucket := rv.bucket(revocationField(revocation.KindToken, "jti"))
	userBucket := rv.bucket(revocationField(revocation.KindUser, "alice"))
	want[tokenBucket] = 11*time.Minute + m
	want[userBucket] = time.Hour + m
	keys, err := s.keys(ctx)
	must(t, "keys", err)
	if len(keys) != len(want) {
		t.Errorf("%d keys %q, want %d", len(keys), keys, len(want))
	}
	for _, k := range keys {
		t.Run(strings.TrimPrefix(k, s.prefix), func(t *testing.T) {
			w, ok := want[k]
			if !ok {
				t.Fatalf("unexpected key %q", k)
			}
			got, err := s.client.PTTL(ctx, k).Result()
			must(t, "PTTL", err)
			if got > w || got < w-time.Second {
				t.Fatalf("TTL %v, want %v", got, w)
			}
		})
	}

	// Touching moves the record's TTL with the idle expiry.
	c.Advance(5 * time.Minute)
	must(t, "TouchSession", s.TouchSession(ctx, a.Hash, c.Now(), c.Now().Add(20*time.Minute)))
	if got, _ := s.client.PTTL(ctx, s.recordPrefix("alice")+hx(a)).Result(); got > 20*time.Minute+m || got < 20*time.Minute+m-time.Second {
		t.Errorf("TTL after touch %v, want %v", got, 20*time.Minute+m)
	}

	// Deleting and purging leaves nothing.
	must(t, "DeleteSession", s.DeleteSession(ctx, a.Hash))
	_, err = s.DeleteUserSession(ctx, "bob", d.ID)
	must(t, "DeleteUserSession", err)
	_, err = s.DeleteUserSessions(ctx, "alice", nil)
	must(t, "DeleteUserSessions", err)
	must(t, "Success", l.Success(ctx, "user:alice"))
	c.Advance(24 * time.Hour)
	_, err = s.Purge(ctx)
	must(t, "Purge", err)
	_, err = rv.Purge(ctx)
	must(t, "Purge revocations", err)
	keys, err = s.keys(ctx)
	must(t, "keys", err)
	if len(keys) != 0 {
		t.Errorf("keys left after every delete and purge: %q", keys)
	}
}

// TestPurgeSchedule checks what the conformance suite cannot see: Purge
// visits only the users that are due, and reschedules them.
func TestPurgeSchedule(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	s := openTest(t, c)

	short := newSession(t, c, "alice")
	short.IdleExpiresAt = short.CreatedAt.Add(time.Minute)
	long := newSession(t, c, "alice")
	other := newSession(t, c, "bob")
	for _, sess := range []*session.Session{short, long, other} {
		must(t, "CreateSession", s.CreateSession(ctx, sess))
	}
	due := func() []string {
		t.Helper()
		users, err := s.client.ZRangeByScore(ctx, s.scheduleKey, &redis.ZRangeBy{
			Min: "-inf", Max: fmt.Sprint(c.Now().UnixMilli()),
		}).Result()
		must(t, "ZRangeByScore", err)
		return users
	}
	score := func(user string) time.Time {
		t.Helper()
		ms, err := s.client.ZScore(ctx, s.scheduleKey, user).Result()
		must(t, "ZScore "+user, err)
		return time.UnixMilli(int64(ms)).UTC()
	}
	steps := []struct {
		name      string
		advance   time.Duration
		wantDue   []string
		wantPurge int
		// The next visits after the purge; a zero time: not scheduled.
		wantAlice, wantBob time.Time
	}{
		{"nothing due", 0, nil, 0, short.IdleExpiresAt, other.IdleExpiresAt},
		{"alice's short session dies", time.Minute, []string{"alice"}, 1, long.IdleExpiresAt, other.IdleExpiresAt},
		{"all idle", 30 * time.Minute, []string{"alice", "bob"}, 2, time.Time{}, time.Time{}},
	}
	for _, st := range steps {
		c.Advance(st.advance)
		if got := due(); fmt.Sprint(got) != fmt.Sprint(st.wantDue) {
			t.Errorf("%s: due %q, want %q", st.name, got, st.wantDue)
		}
		n, err := s.Purge(ctx)
		must(t, "Purge", err)
		if n != st.wantPurge {
			t.Errorf("%s: Purge = %d, want %d", st.name, n, st.wantPurge)
		}
		for user, want := range map[string]time.Time{"alice": st.wantAlice, "bob": st.wantBob} {
			if want.IsZero() {
				if err := s.client.ZScore(ctx, s.scheduleKey, user).Err(); !errors.Is(err, redis.Nil) {
					t.Errorf("%s: %s is still scheduled (%v)", st.name, user, err)
				}
				continue
			}
			if got := score(user); !got.Equal(want.Truncate(time.Millisecond)) {
				t.Errorf("%s: %s scheduled at %v, want %v", st.name, user, got, want)
			}
		}
	}
}

// TestCorruptRecords checks that a record that is not what the Store
// writes is an error, never a session.
func TestCorruptRecords(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	s := openTest(t, c)
	sess := newSession(t, c, "alice")
	must(t, "CreateSession", s.CreateSession(ctx, sess))
	key := s.recordPrefix("alice") + hex.EncodeToString(sess.Hash)
	cases := []struct {
		name, field, value string
	}{
		{"expiry not a time", "e", "tomorrow"},
		{"created too short", "c", "123"},
		{"idle expiry with a sign", "ie", "+" + encodeTime(start.Add(time.Hour))[1:]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, err := s.client.HGet(ctx, key, tc.field).Result()
			must(t, "HGet", err)
			must(t, "HSet", s.client.HSet(ctx, key, tc.field, tc.value).Err())
			defer s.client.HSet(ctx, key, tc.field, old)
			got, err := s.SessionByHash(ctx, sess.Hash)
			if err == nil || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("SessionByHash = %v, %v; want a decoding error", got, err)
			}
			if _, err := s.SessionsByUser(ctx, "alice"); err == nil {
				t.Fatal("SessionsByUser decoded a corrupt record")
			}
		})
	}
}

// receive waits for the next value on ch, or fails the test after a while
// (a subscription that delivers nothing would otherwise hang the test).
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		panic("unreachable")
	}
}

// killSubscribers closes the server side of the Store's subscription
// connections, which the Store names by its client name.
func killSubscribers(t testing.TB, s *Store, name string) {
	t.Helper()
	ctx := context.Background()
	list, err := s.client.ClientList(ctx).Result()
	must(t, "CLIENT LIST", err)
	killed := 0
	for line := range strings.SplitSeq(list, "\n") {
		var id, cname string
		sub := false
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				id = v
			case "name":
				cname = v
			case "sub":
				sub = v != "0"
			}
		}
		if cname == name && sub {
			must(t, "CLIENT KILL", s.client.Do(ctx, "CLIENT", "KILL", "ID", id).Err())
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no subscriber named %s in CLIENT LIST", name)
	}
}

// openNamed opens a second Store on the same prefix as s, whose
// connections carry a client name of their own.
func openNamed(t testing.TB, s *Store, c clock.Clock) (*Store, string) {
	t.Helper()
	url := testenv.Redis(t)
	name := "ghtest-" + randomHex(t, 4)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	o, err := Open(context.Background(), url+sep+"client_name="+name, Options{Clock: c, Prefix: s.prefix})
	must(t, "Open", err)
	t.Cleanup(func() { o.Close() })
	return o, name
}

func TestSubscribeRevocations(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	writer := openTest(t, c)
	reader, name := openNamed(t, writer, c)
	w := writer.Revocations()

	// Written before the subscription: delivered when it is established.
	must(t, "DenyToken", w.DenyToken(ctx, "before", start.Add(time.Hour)))
	got := make(chan revocation.Entry, 100)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- reader.Revocations().Subscribe(sctx, func(e revocation.Entry) error {
			got <- e
			return nil
		})
	}()
	wantEntry := func(what string, want revocation.Entry) {
		t.Helper()
		e := receive(t, got, what)
		if e.Kind != want.Kind || e.ID != want.ID || !e.Until.Equal(want.Until) || !e.Before.Equal(want.Before) {
			t.Fatalf("%s: got %+v, want %+v", what, e, want)
		}
	}
	wantEntry("replayed entry", revocation.Entry{Kind: revocation.KindToken, ID: "before", Until: start.Add(time.Hour)})

	// Written while subscribed: published.
	cases := []struct {
		name  string
		write func() error
		want  revocation.Entry
	}{
		{"token", func() error { return w.DenyToken(ctx, "jti-1", start.Add(time.Minute)) },
			revocation.Entry{Kind: revocation.KindToken, ID: "jti-1", Until: start.Add(time.Minute)}},
		{"sid", func() error { return w.RevokeSID(ctx, "sid-1", start.Add(2*time.Minute)) },
			revocation.Entry{Kind: revocation.KindSID, ID: "sid-1", Until: start.Add(2 * time.Minute)}},
		{"user", func() error { return w.RevokeUser(ctx, "u-1", start.Add(-time.Second), start.Add(3*time.Minute)) },
			revocation.Entry{Kind: revocation.KindUser, ID: "u-1", Before: start.Add(-time.Second), Until: start.Add(3 * time.Minute)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			must(t, "write", tc.write())
			wantEntry("published "+tc.name, tc.want)
		})
	}

	// A lost connection is re-established, and every live entry replayed.
	killSubscribers(t, reader, name)
	seen := map[string]bool{}
	for range 4 {
		seen[receive(t, got, "replay after reconnection").ID] = true
	}
	for _, id := range []string{"before", "jti-1", "sid-1", "u-1"} {
		if !seen[id] {
			t.Errorf("%s not replayed after reconnection (got %v)", id, seen)
		}
	}
	must(t, "DenyToken", w.DenyToken(ctx, "after", start.Add(time.Hour)))
	wantEntry("published after reconnection", revocation.Entry{Kind: revocation.KindToken, ID: "after", Until: start.Add(time.Hour)})

	cancel()
	if err := receive(t, done, "end of Subscribe"); err != nil {
		t.Fatalf("Subscribe returned %v after its context ended", err)
	}
}

func TestSubscribeSessions(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	writer := openTest(t, c)
	reader, name := openNamed(t, writer, c)

	got := make(chan SessionEvent, 100)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- reader.SubscribeSessions(sctx, func(e SessionEvent) { got <- e })
	}()
	if e := receive(t, got, "resync event"); !e.Resync {
		t.Fatalf("first event %+v, want a resync", e)
	}

	sessions := make([]*session.Session, 5)
	for i := range sessions {
		sessions[i] = newSession(t, c, "alice")
		must(t, "CreateSession", writer.CreateSession(ctx, sessions[i]))
	}
	cases := []struct {
		name   string
		delete func() error
		want   []*session.Session
	}{
		{"DeleteSession", func() error { return writer.DeleteSession(ctx, sessions[0].Hash) }, sessions[:1]},
		{"DeleteSession of a deleted session", func() error { return writer.DeleteSession(ctx, sessions[0].Hash) }, nil},
		{"DeleteUserSession", func() error { _, err := writer.DeleteUserSession(ctx, "alice", sessions[1].ID); return err }, sessions[1:2]},
		{"DeleteUserSessions", func() error { _, err := writer.DeleteUserSessions(ctx, "alice", sessions[4].Hash); return err }, sessions[2:4]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			must(t, tc.name, tc.delete())
			want := map[string]*session.Session{}
			for _, s := range tc.want {
				want[s.ID] = s
			}
			for range tc.want {
				e := receive(t, got, "deletion event")
				w, ok := want[e.ID]
				if !ok || e.Resync || e.UserID != "alice" || !bytes.Equal(e.Hash, w.Hash) {
					t.Fatalf("event %+v, want one of %v", e, tc.want)
				}
				delete(want, e.ID)
			}
		})
	}
	// No deletion went unannounced, and none was announced twice: the next
	// event is the resync after a reconnection.
	killSubscribers(t, reader, name)
	if e := receive(t, got, "resync after reconnection"); !e.Resync {
		t.Fatalf("event %+v, want a resync", e)
	}
	must(t, "DeleteSession", writer.DeleteSession(ctx, sessions[4].Hash))
	if e := receive(t, got, "deletion after reconnection"); e.ID != sessions[4].ID {
		t.Fatalf("event %+v, want the deletion of %s", e, sessions[4].ID)
	}

	cancel()
	if err := receive(t, done, "end of SubscribeSessions"); err != nil {
		t.Fatalf("SubscribeSessions returned %v after its context ended", err)
	}
}

// TestSubscribeAfterClose checks that a subscription on a closed Store
// ends with an error instead of retrying forever.
func TestSubscribeAfterClose(t *testing.T) {
	s, err := Open(context.Background(), testenv.Redis(t), Options{Prefix: "ghtest:" + randomHex(t, 8) + ":"})
	must(t, "Open", err)
	must(t, "Close", s.Close())
	err = s.SubscribeSessions(context.Background(), func(SessionEvent) {})
	if !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("SubscribeSessions on a closed Store = %v, want redis.ErrClosed", err)
	}
}

func TestLimiterSharedAcrossStores(t *testing.T) {
	// Two instances, one Redis: failures on one count on the other.
	ctx := context.Background()
	c := clock.NewFake(start)
	a := openTest(t, c)
	b, _ := openNamed(t, a, c)
	p := throttle.Policy{Window: time.Hour, Max: 10, Free: 2, BaseDelay: time.Second, MaxDelay: time.Minute}
	la, err := a.Limiter("account", p)
	must(t, "Limiter", err)
	lb, err := b.Limiter("account", p)
	must(t, "Limiter", err)
	other, err := b.Limiter("ip", p)
	must(t, "Limiter", err)
	must(t, "Failure", la.Failure(ctx, "user:alice"))
	must(t, "Failure", lb.Failure(ctx, "user:alice"))
	cases := []struct {
		name string
		l    *Limiter
		want time.Duration
	}{
		{"the same limiter on the other instance", lb, time.Second},
		{"the same limiter on the first instance", la, time.Second},
		{"another limiter", other, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.l.Check(ctx, "user:alice")
			must(t, "Check", err)
			if got != tc.want {
				t.Fatalf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLimiterRefusesBadSetup(t *testing.T) {
	s := &Store{prefix: DefaultPrefix}
	cases := []struct {
		name   string
		lname  string
		policy throttle.Policy
	}{
		{"empty name", "", throttle.DefaultAccountPolicy},
		{"name with a colon", "a:b", throttle.DefaultAccountPolicy},
		{"name with a brace", "a{b}", throttle.DefaultAccountPolicy},
		{"invalid policy", "account", throttle.Policy{}},
		{"window too long to count exactly", "account", throttle.Policy{Window: 60 * 24 * time.Hour, Max: 10, BaseDelay: time.Second, MaxDelay: time.Hour}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Limiter(tc.lname, tc.policy); err == nil {
				t.Fatal("Limiter accepted it")
			}
		})
	}
	if _, err := s.Limiter("account", throttle.Policy{Window: 50 * 24 * time.Hour, Max: 10, BaseDelay: time.Second, MaxDelay: time.Hour}); err != nil {
		t.Fatalf("Limiter refused a 50-day window: %v", err)
	}
}

func TestOpenURLs(t *testing.T) {
	cases := []struct {
		name    string
		url     string
		kind    string // "server", "cluster" or "sentinel"
		wantErr bool
	}{
		{name: "redis", url: "redis://127.0.0.1:6379/0", kind: "server"},
		{name: "redis default port", url: "redis://cache.internal", kind: "server"},
		{name: "rediss", url: "rediss://user:secret@cache.internal:6380/2?dial_timeout=3", kind: "server"},
		{name: "cluster", url: "redis+cluster://127.0.0.1:7000,127.0.0.1:7001", kind: "cluster"},
		{name: "cluster over TLS", url: "rediss+cluster://a:1/?read_timeout=2s", kind: "cluster"},
		{name: "sentinel", url: "redis+sentinel://s1:26379,s2:26379/mymaster", kind: "sentinel"},
		{name: "sentinel over TLS with a database", url: "rediss+sentinel://u:p@s1:26379/mymaster/3", kind: "sentinel"},
		{name: "no scheme", url: "127.0.0.1:6379", wantErr: true},
		{name: "other scheme", url: "http://127.0.0.1:6379", wantErr: true},
		{name: "unknown option", url: "redis://127.0.0.1:6379?colour=blue", wantErr: true},
		{name: "cluster with a database", url: "redis+cluster://a:1,b:2/3", wantErr: true},
		{name: "cluster with an empty host", url: "redis+cluster://a:1,,b:2", wantErr: true},
		{name: "cluster with a fragment", url: "redis+cluster://a:1#x", wantErr: true},
		{name: "cluster with an unknown option", url: "redis+cluster://a:1?colour=blue", wantErr: true},
		{name: "sentinel without a master", url: "redis+sentinel://s1:26379", wantErr: true},
		{name: "sentinel with a bad database", url: "redis+sentinel://s1:26379/m/x", wantErr: true},
		{name: "sentinel with a long path", url: "redis+sentinel://s1:26379/m/1/2", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, cc, err := newClient(tc.url)
			if tc.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			kind := "server"
			switch {
			case cc != nil:
				kind = "cluster"
			case strings.Contains(fmt.Sprint(c), "FailoverClient"):
				kind = "sentinel"
			}
			if kind != tc.kind {
				t.Fatalf("client %s (%T), want a %s client", c, c, tc.kind)
			}
		})
	}
}

func TestClusterURL(t *testing.T) {
	o, err := clusterOptions("rediss", "us%40r:p%3Ass@a:1,b:2,c:3/?read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"seeds", fmt.Sprint(o.Addrs), "[a:1 b:2 c:3]"},
		{"user", o.Username, "us@r"},
		{"password", o.Password, "p:ss"},
		{"read timeout", o.ReadTimeout.String(), "2s"},
		{"TLS", fmt.Sprint(o.TLSConfig != nil), "true"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestSentinelURL(t *testing.T) {
	o, err := sentinelOptions("redis", "app:secret@s1:26379,s2:26380/mymaster/4?sentinel_password=watch&dial_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"sentinels", fmt.Sprint(o.SentinelAddrs), "[s1:26379 s2:26380]"},
		{"master", o.MasterName, "mymaster"},
		{"database", fmt.Sprint(o.DB), "4"},
		{"user", o.Username, "app"},
		{"password", o.Password, "secret"},
		{"sentinel user", o.SentinelUsername, ""},
		{"sentinel password", o.SentinelPassword, "watch"},
		{"dial timeout", o.DialTimeout.String(), "1s"},
		{"TLS", fmt.Sprint(o.TLSConfig != nil), "false"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestOpenErrorsHideThePassword checks that no error of Open repeats a
// password it was given.
func TestOpenErrorsHideThePassword(t *testing.T) {
	const password = "hunter2-s3cr3t"
	for _, url := range []string{
		"redis://user:" + password + "@host:notaport",
		"redis://user:" + password + "@host:6379/x",
		"redis+cluster://user:" + password + "@a:1/?%zz",
		"redis+cluster://user:" + password + "@a:1,b:2/4",
		"redis+sentinel://user:" + password + "@s:1/m/x",
		"redis+sentinel://s:1/m?sentinel_password=" + password + "&colour=blue",
		"redis://user:" + password + "@127.0.0.1:1?dial_timeout=200ms&max_retries=-1",
	} {
		_, err := Open(context.Background(), url, Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Open error repeats the password: %v", err)
		}
	}
}

func TestOpenRefusesBracesInPrefix(t *testing.T) {
	for _, p := range []string{"{gh}:", "gh}", "a{"} {
		if _, err := Open(context.Background(), "redis://127.0.0.1:1", Options{Prefix: p}); err == nil || !strings.Contains(err.Error(), "brace") {
			t.Errorf("Open with prefix %q: %v, want a refusal of the brace", p, err)
		}
	}
}

func TestTimeEncoding(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 999_999_999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		start,
		start.Add(time.Nanosecond),
		time.Date(2500, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
	}
	for i, a := range times {
		enc := encodeTime(a)
		if len(enc) != timeLen {
			t.Fatalf("encodeTime(%v) = %q: %d bytes", a, enc, len(enc))
		}
		got, err := decodeTime(enc)
		if err != nil || !got.Equal(a) || got.Location() != time.UTC {
			t.Fatalf("decodeTime(encodeTime(%v)) = %v, %v", a, got, err)
		}
		if a.IsZero() && !got.IsZero() {
			t.Fatalf("the zero time came back as %v", got)
		}
		for j, b := range times {
			if got, want := strings.Compare(enc, encodeTime(b)), a.Compare(b); got != want {
				t.Fatalf("times %d and %d: strings compare %d, times %d", i, j, got, want)
			}
		}
	}
	// Another zone: the same instant.
	if encodeTime(start.In(time.FixedZone("x", 3600))) != encodeTime(start) {
		t.Fatal("the zone changes the encoding")
	}
}

// FuzzDecodeTime checks that decodeTime accepts exactly what encodeTime
// writes.
func FuzzDecodeTime(f *testing.F) {
	for _, s := range []string{encodeTime(start), encodeTime(time.Time{}), "", "0", strings.Repeat("9", 29), "+" + strings.Repeat("0", 28), encodeTime(start)[:28] + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := decodeTime(s)
		if err != nil {
			return
		}
		if again := encodeTime(tm); again != s {
			t.Fatalf("decodeTime(%q) = %v, which encodes as %q", s, tm, again)
		}
	})
}

// FuzzDecodeEntry checks that the revocation messages a subscriber parses
// never panic, and that what it accepts is an entry an Index accepts.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []revocation.Entry{
		{Kind: revocation.KindToken, ID: "jti", Until: start},
		{Kind: revocation.KindUser, ID: "u", Before: start, Until: start.Add(time.Hour)},
	} {
		msg, err := encodeEntry(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	for _, s := range []string{"", "{}", "null", `{"kind":"token","id":"","until":"2031-01-01T00:00:00Z"}`,
		`{"kind":"nope","id":"x","until":"2031-01-01T00:00:00Z"}`, `{"kind":"user","id":"x","before":"yesterday","until":"2031-01-01T00:00:00Z"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		e, err := decodeEntry(payload)
		if err != nil {
			return
		}
		if e.ID == "" || e.Kind < revocation.KindToken || e.Kind > revocation.KindUser {
			t.Fatalf("decodeEntry(%q) = %+v", payload, e)
		}
		if e.Until.Location() != time.UTC || e.Before.Location() != time.UTC {
			t.Fatalf("decodeEntry(%q): times not in UTC", payload)
		}
	})
}

// FuzzDecodeSessionEvent checks that session messages never panic a
// subscriber.
func FuzzDecodeSessionEvent(f *testing.F) {
	for _, s := range []string{`{"user":"alice","id":"sess-1","hash":"00ff"}`, `{"hash":"zz"}`, "", "[]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		e, err := decodeSessionEvent(payload)
		if err == nil && e.Resync {
			t.Fatalf("decodeSessionEvent(%q) made a resync event", payload)
		}
	})
}

func TestRevocationFields(t *testing.T) {
	cases := []struct {
		kind revocation.Kind
		id   string
	}{
		{revocation.KindToken, "jti"},
		{revocation.KindSID, "a:b:c"},
		{revocation.KindUser, ""},
		{revocation.KindUser, "{u}"},
	}
	for _, tc := range cases {
		f := revocationField(tc.kind, tc.id)
		k, id, ok := parseRevocationField(f)
		if !ok || k != tc.kind || id != tc.id {
			t.Errorf("parseRevocationField(%q) = %v, %q, %v", f, k, id, ok)
		}
	}
	for _, f := range []string{"", "t", "x:y", "tt:y"} {
		if _, _, ok := parseRevocationField(f); ok {
			t.Errorf("parseRevocationField(%q) accepted", f)
		}
	}
}

// BenchmarkSessionByHash measures a lookup by hash, the request path's
// round trips (two: the pointer, then the record).
func BenchmarkSessionByHash(b *testing.B) {
	ctx := context.Background()
	c := clock.NewFake(start)
	s := openTest(b, c)
	sess := newSession(b, c, "alice")
	if err := s.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.SessionByHash(ctx, sess.Hash); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLimiterCheck measures a Check and its Success (one script each).
func BenchmarkLimiterCheck(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, clock.System{})
	l, err := s.Limiter("account", throttle.DefaultAccountPolicy)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		k := throttle.AccountKey(fmt.Sprintf("user%d", i%1000))
		i++
		if wait, err := l.Check(ctx, k); err != nil {
			b.Fatal(err)
		} else if wait == 0 {
			if err := l.Success(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	}
}
