// Package redisstore is the Redis backend for what several Gatehouse
// instances must share at once: sessions (session.Store), the revocation
// list (revocation.Store, with change notifications) and the login throttle
// (throttle.Limiter). It works with a single server, with a master that
// Redis Sentinel watches, and with Redis Cluster, through go-redis's
// UniversalClient, and passes the same conformance suites (store/storetest,
// throttle/throttletest) as the memory and SQLite backends.
//
// # Connecting
//
// Open takes a URL:
//
//	redis://[user:password@]host[:port][/db][?option=value…]
//	rediss://…                       the same over TLS
//	redis+cluster://[user:password@]host1:port1,host2:port2,…[/][?option=value…]
//	rediss+cluster://…               a cluster over TLS
//	redis+sentinel://[user:password@]host1:port1,host2:port2,…/MASTER[/db][?option=value…]
//	rediss+sentinel://…              the master over TLS
//
// The options are go-redis's own (dial_timeout, read_timeout, pool_size,
// client_name, …). The hosts of a cluster URL are seeds: the client learns
// the rest of the cluster from them. A cluster has no database number. The
// hosts of a sentinel URL are the sentinels, MASTER is the name they know
// the master by, and the credentials are the master's; the sentinels' own,
// if they require any, go in the options sentinel_username and
// sentinel_password.
//
// # Time
//
// Liveness is decided by the Store's clock (Options.Clock), like every other
// backend, never by Redis: a lookup compares the stored expiry times with
// the clock. Every key also gets a real TTL, computed from the same clock as
// the time left until the record is dead plus a margin of five minutes
// (expiryMargin), so that Redis frees what nobody deletes. The TTL is only
// memory management: a record that Redis has not dropped yet is still
// filtered out by the clock, and the margin keeps a record for as long as an
// instance whose clock runs a little behind may still consider it live.
//
// Times are stored as 29-character strings, the Unix seconds plus 2^63 in
// 20 digits followed by 9 digits of nanoseconds, so that they keep their
// nanoseconds, cover every time.Time, and compare as strings in the Lua
// scripts in the same order as in time.
//
// # Key layout
//
// Every key and channel starts with Options.Prefix (default "gh:", written P
// below). Keys used together by a script share a Redis Cluster hash slot
// through a hash tag ({…}):
//
//	P{u:USER}:s:HASH   hash     one session: id, c (created), l (last seen),
//	                            ie (idle expiry), e (expiry), ua, ip.
//	                            TTL: the earlier expiry + margin; after a
//	                            touch, the new idle expiry + margin.
//	P{u:USER}:idx      set      the hex hashes of USER's sessions (the
//	                            per-user index). TTL: the latest expiry of its
//	                            sessions + margin.
//	Psh:HASH           string   USER: the owner of the session with that
//	                            hex hash, which locates its record.
//	                            TTL: expiry + margin.
//	Psid:ID            string   HASH: the session with that public id; it
//	                            makes ids unique. TTL: expiry + margin.
//	Psx                zset     USER → the Unix millisecond at which USER's
//	                            sessions are next due for Purge. TTL: the
//	                            latest expiry of a session + margin.
//	Prv:N              hash     revocation entries of bucket N (0…15): field
//	                            "t:JTI", "s:SID" or "u:USER", value until +
//	                            before. TTL: the latest until + margin.
//	Pt:NAME:KEY        hash     a Limiter's state for KEY: h (newest slot),
//	                            f (failures per slot), lf (latest failure),
//	                            p (attempts in flight).
//	                            TTL: window + attempt hold + margin.
//
// Every key expires. USER, ID and KEY are stored as they are; HASH is the
// session hash in hex. A lookup by hash reads the pointer Psh:HASH, then
// the record under the user's tag: two round trips. Everything that must be atomic happens in one
// script on the user's slot: a delete of one session checks its owner and
// liveness and deletes it in one step, and DeleteUserSessions deletes all of
// a user's sessions at once. The pointers live in other slots: CreateSession
// claims both with SET NX before it writes the record (and releases them if
// the record cannot be written), and a delete removes them after the record.
// A pointer whose record is gone is harmless: lookups through it find
// nothing, and it expires with the session. The scripts of a user's slot
// reach the records named by the index's members, keys they are not given
// but that share the slot's hash tag, which Redis Cluster allows.
//
// It needs Redis 6.2 or later (ZADD LT); the tests run against 7.0.
//
// # Notifications
//
// Every revocation write is published, by the script that makes it, on the
// channel P+"revocations" (gh:revocations by default) as JSON:
// {"kind":"token","id":…,"until":…}, with "before" for a user, times in
// RFC 3339 with nanoseconds. Every session delete is published on
// P+"sessions" as {"user":…,"id":…,"hash":…}, the hash in hex.
// Revocations.Subscribe and Store.SubscribeSessions receive them, on a
// single server as on a cluster (PUBLISH reaches every node).
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "gh:"

// expiryMargin is added to every TTL: how much longer than its expiry by
// the Store's clock Redis keeps a record.
const expiryMargin = 5 * time.Minute

// Options configures Open.
type Options struct {
	// Clock tells liveness; nil means clock.System{}.
	Clock clock.Clock
	// Prefix starts every key and channel name; empty means DefaultPrefix.
	// Instances that share state must use the same prefix. It may not
	// contain '{' or '}', which would change the keys' hash slots.
	Prefix string
}

// Store is a Gatehouse store in Redis. It implements session.Store, and
// gives the revocation.Store (Revocations) and throttle.Limiters (Limiter)
// that use the same connection. It is safe for concurrent use. Open it with
// Open and close it with Close.
type Store struct {
	client  redis.UniversalClient
	cluster *redis.ClusterClient // nil for a single server
	clock   clock.Clock
	prefix  string

	scheduleKey       string
	sessionChannel    string
	revocationChannel string
	revocationBuckets [revocationBucketCount]string
	subscribeBackoffs []time.Duration
	closeOnce         sync.Once
	closeErr          error
}

// Open connects to the Redis server or cluster at rawURL (see the package
// documentation for its forms) and checks that it answers.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redisstore: open: prefix %q contains a brace", prefix)
	}
	client, cluster, err := newClient(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	c := opts.Clock
	if c == nil {
		c = clock.System{}
	}
	s := &Store{
		client:            client,
		cluster:           cluster,
		clock:             c,
		prefix:            prefix,
		scheduleKey:       prefix + "sx",
		sessionChannel:    prefix + "sessions",
		revocationChannel: prefix + "revocations",
		subscribeBackoffs: defaultBackoffs,
	}
	for i := range s.revocationBuckets {
		s.revocationBuckets[i] = prefix + "rv:" + strconv.Itoa(i)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	return s, nil
}

// newClient returns a client for rawURL, and the same client as a
// *redis.ClusterClient when the URL names a cluster.
func newClient(rawURL string) (redis.UniversalClient, *redis.ClusterClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, nil, errors.New("URL has no scheme: want redis, rediss, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel")
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, nil, fmt.Errorf("parse URL: %w", urlError(err))
		}
		return redis.NewClient(o), nil, nil
	case "redis+cluster", "rediss+cluster":
		o, err := clusterOptions(strings.TrimSuffix(scheme, "+cluster"), rest)
		if err != nil {
			return nil, nil, fmt.Errorf("parse URL: %w", err)
		}
		c := redis.NewClusterClient(o)
		return c, c, nil
	case "redis+sentinel", "rediss+sentinel":
		o, err := sentinelOptions(strings.TrimSuffix(scheme, "+sentinel"), rest)
		if err != nil {
			return nil, nil, fmt.Errorf("parse URL: %w", err)
		}
		return redis.NewFailoverClient(o), nil, nil
	default:
		return nil, nil, fmt.Errorf("URL scheme %q: want redis, rediss, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel", scheme)
	}
}

// multiHost is a URL whose authority lists several hosts, split.
type multiHost struct {
	username, password string
	hosts              []string
	path               string
	query              url.Values
}

// parseMultiHost splits the part of a URL after "scheme://":
// [user[:password]@]host1:port1,host2:port2…[/path][?query].
func parseMultiHost(rest string) (multiHost, error) {
	var m multiHost
	if strings.Contains(rest, "#") {
		return m, errors.New("a multi-host URL has no fragment")
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	path, query, _ := strings.Cut(tail, "?")
	m.path = path
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user, password, _ := strings.Cut(authority[:i], ":")
		var err error
		if m.username, err = url.PathUnescape(user); err != nil {
			return m, errors.New("malformed user name")
		}
		if m.password, err = url.PathUnescape(password); err != nil {
			return m, errors.New("malformed password")
		}
		authority = authority[i+1:]
	}
	m.hosts = strings.Split(authority, ",")
	for _, h := range m.hosts {
		if h == "" {
			return m, errors.New("a multi-host URL has an empty host")
		}
	}
	var err error
	if m.query, err = url.ParseQuery(query); err != nil {
		return m, fmt.Errorf("query: %w", urlError(err))
	}
	return m, nil
}

// seedURL returns a URL of the form go-redis parses, on the first host of
// m, with path and the query of m plus the other hosts as addr
// parameters; the credentials are left out, to be set on the options.
func (m multiHost) seedURL(scheme, path string) string {
	q := url.Values{}
	for k, v := range m.query {
		q[k] = v
	}
	for _, h := range m.hosts[1:] {
		q.Add("addr", h)
	}
	return scheme + "://" + m.hosts[0] + path + "?" + q.Encode()
}

// clusterOptions parses the part after "scheme+cluster://".
func clusterOptions(scheme, rest string) (*redis.ClusterOptions, error) {
	m, err := parseMultiHost(rest)
	if err != nil {
		return nil, err
	}
	if m.path != "" && m.path != "/" {
		return nil, errors.New("a cluster URL has no database number")
	}
	o, err := redis.ParseClusterURL(m.seedURL(scheme, "/"))
	if err != nil {
		return nil, urlError(err)
	}
	o.Username, o.Password = m.username, m.password
	return o, nil
}

// sentinelOptions parses the part after "scheme+sentinel://": the hosts are
// the sentinels, the path names the master and optionally the database,
// the credentials are the master's, and the options sentinel_username and
// sentinel_password are the sentinels'.
func sentinelOptions(scheme, rest string) (*redis.FailoverOptions, error) {
	m, err := parseMultiHost(rest)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.TrimPrefix(m.path, "/"), "/")
	if len(parts) > 2 || parts[0] == "" {
		return nil, errors.New("a sentinel URL's path is /MASTER or /MASTER/DB")
	}
	master, db := parts[0], ""
	if len(parts) == 2 {
		db = parts[1]
	}
	sentinelUser, sentinelPassword := m.query.Get("sentinel_username"), m.query.Get("sentinel_password")
	m.query.Del("sentinel_username")
	m.query.Del("sentinel_password")
	m.query.Set("master_name", master)
	o, err := redis.ParseFailoverURL(m.seedURL(scheme, "/"+db))
	if err != nil {
		return nil, urlError(err)
	}
	o.Username, o.Password = m.username, m.password
	o.SentinelUsername, o.SentinelPassword = sentinelUser, sentinelPassword
	return o, nil
}

// urlError strips the URL from a *url.Error, whose message repeats the URL
// it could not parse, password included.
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Ping checks that the server, or every master of the cluster, answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.cluster != nil {
		err := s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
		if err != nil {
			return fmt.Errorf("redisstore: ping: %w", err)
		}
		return nil
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close closes the connections; subscriptions end with an error. It is
// safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	if s.closeErr != nil {
		return fmt.Errorf("redisstore: close: %w", s.closeErr)
	}
	return nil
}

// ttl returns how long Redis keeps a record that is dead from until on, by
// the Store's clock at now: the time left plus expiryMargin, in
// milliseconds, at least the margin.
func ttl(now, until time.Time) int64 {
	left := until.Sub(now)
	if left < 0 {
		left = 0
	}
	return (left + expiryMargin).Milliseconds()
}

// timeLen is the length of an encoded time.
const timeLen = 29

// encodeTime returns t as 20 digits of Unix seconds plus 2^63 and 9 digits
// of nanoseconds: strings of the same length, which compare in the same
// order as the times.
func encodeTime(t time.Time) string {
	var b [timeLen]byte
	sec := uint64(t.Unix()) ^ (1 << 63)
	for i := 19; i >= 0; i-- {
		b[i] = byte('0' + sec%10)
		sec /= 10
	}
	ns := uint32(t.Nanosecond())
	for i := timeLen - 1; i >= 20; i-- {
		b[i] = byte('0' + ns%10)
		ns /= 10
	}
	return string(b[:])
}

// errBadTime is returned for a stored time that is not one encodeTime
// writes.
var errBadTime = errors.New("malformed stored time")

// decodeTime parses a time written by encodeTime and returns it in UTC.
func decodeTime(s string) (time.Time, error) {
	if len(s) != timeLen {
		return time.Time{}, errBadTime
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, errBadTime
		}
	}
	sec, err := strconv.ParseUint(s[:20], 10, 64)
	if err != nil {
		return time.Time{}, errBadTime
	}
	ns, err := strconv.ParseUint(s[20:], 10, 32)
	if err != nil || ns >= 1e9 {
		return time.Time{}, errBadTime
	}
	return time.Unix(int64(sec^(1<<63)), int64(ns)).UTC(), nil
}

// str returns v as a string when a reply holds one.
func str(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}
