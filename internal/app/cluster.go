package app

// Several instances on one PostgreSQL and one Redis keep in step through
// Redis pub/sub. What each instance keeps in memory, and how it learns of
// the others' changes:
//
//   - The revocation index (denylisted jtis, revoked sids, users' revoke-all
//     times): every write is published by the Redis store, and each instance
//     applies what it receives (redisstore.Revocations.Subscribe, which
//     replays every live entry each time it subscribes).
//   - The session cache (one second): every session deletion is published,
//     and each instance forgets the session (SubscribeSessions). While that
//     subscription is not known to be up, the cache is off: every lookup
//     asks Redis.
//   - The signing key ring: an instance that rotates or removes a key
//     publishes a notice, and the others reload their rings; the periodic
//     reload (every 10 s) stays as the fallback.
//   - The user cache (one second) follows nobody: a role change made on
//     another instance is seen within a second. Forced logout and password
//     changes do not depend on it: they revoke the sessions and tokens
//     through the two channels above.
//
// Pub/sub tells a subscriber nothing when it loses messages: a connection
// that a proxy drops without a word, or a Redis that restarts, leaves the
// subscriber waiting for news that never comes. So each instance proves,
// continuously, that its subscription delivers: every beat (a quarter of
// --revocation-stale-after) it publishes a heartbeat on the revocation
// channel and waits to receive it back. Redis delivers the messages of one
// channel to a subscriber in the order it executed the publications, so
// receiving a heartbeat sent at time t proves that every revocation written
// before t has been received and applied. When the newest heartbeat
// received back was sent more than --revocation-stale-after ago, the
// instance is stale: its token verifier refuses every access token (an
// error, answered 500: fail closed), /readyz answers 503 so that load
// balancers move traffic away, the session cache is off, and the
// subscriptions are started afresh (which replays every live revocation).
// Once a heartbeat comes back, the instance is in step again by itself,
// and it reloads its key ring in case it missed a notice.
//
// The heartbeats and key notices travel as revocation entries of kind sid
// whose id starts with controlPrefix: the Redis store has no other channel.
// They never reach the index, the feed or the lab: withoutControl filters
// them out. Each instance writes one entry of each (its own id, a later
// until each time), which Redis drops a few minutes after the instance
// stops.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
)

// controlPrefix starts the ids of the control entries (heartbeats, key
// notices). '.' and '/' are outside the base64url alphabet of every jti
// and sid that Gatehouse issues, so no real entry starts with it.
const controlPrefix = "gatehouse.ctl/"

// controlLife is how far ahead of its writing a control entry's until is:
// how long Redis keeps it once its instance has stopped writing it (plus
// the Redis store's margin).
const controlLife = time.Minute

// maxPending bounds the heartbeats awaiting their return; past it, the
// oldest are forgotten (they were lost).
const maxPending = 64

// errStale is the error of the revocation checker and of readiness while
// the instance is not known to have every recent revocation.
var errStale = errors.New("the revocation state is not known to be current")

// isControl reports whether e is a control entry rather than a revocation.
func isControl(e revocation.Entry) bool { return strings.HasPrefix(e.ID, controlPrefix) }

// withoutControl is the revocation.Store of the Redis store without the
// control entries: what the index loads, and what the lab shows.
type withoutControl struct {
	*redisstore.Revocations
}

// Load returns every live revocation, control entries left out.
func (w withoutControl) Load(ctx context.Context) ([]revocation.Entry, error) {
	es, err := w.Revocations.Load(ctx)
	if err != nil {
		return nil, err
	}
	out := es[:0]
	for _, e := range es {
		if !isControl(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// freshness tracks the heartbeats of one instance: which are on their way
// (by until, their sequence), and when the newest that came back was sent.
// Times are readings of the clock since start: with clock.System, monotonic
// durations that no wall-clock step moves.
type freshness struct {
	clock      clock.Clock
	start      time.Time
	staleAfter time.Duration

	mu      sync.Mutex
	pending map[int64]time.Duration // until (Unix ns) → sent
	last    int64                   // the newest until handed out

	// fresh is when the newest heartbeat received back was sent, or
	// math.MinInt64 before the first.
	fresh atomic.Int64
}

func newFreshness(c clock.Clock, staleAfter time.Duration) *freshness {
	f := &freshness{clock: c, start: c.Now(), staleAfter: staleAfter, pending: map[int64]time.Duration{}}
	f.fresh.Store(math.MinInt64)
	return f
}

// since returns the clock's reading relative to start. On the system
// clock it reads the monotonic clock alone (time.Since), about half the
// cost of time.Now: it runs on every token verification.
func (f *freshness) since() time.Duration {
	if _, ok := f.clock.(clock.System); ok {
		return time.Since(f.start)
	}
	return f.clock.Now().Sub(f.start)
}

// next records a heartbeat sent now and returns its until: later than
// every until handed out before, so that each heartbeat is told apart.
func (f *freshness) next() time.Time {
	now := f.clock.Now()
	u := now.Add(controlLife).UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	if u <= f.last {
		u = f.last + 1
	}
	f.last = u
	if len(f.pending) >= maxPending {
		oldest := int64(math.MaxInt64)
		for k := range f.pending {
			oldest = min(oldest, k)
		}
		delete(f.pending, oldest)
	}
	f.pending[u] = now.Sub(f.start)
	return time.Unix(0, u).UTC()
}

// received records the return of the heartbeat with that until; one that
// is not on its way (another instance's, or come back already) changes
// nothing. The heartbeats sent before it are forgotten: Redis delivers in
// order, so they are lost, or already back.
func (f *freshness) received(until time.Time) {
	u := until.UnixNano()
	f.mu.Lock()
	sent, ok := f.pending[u]
	if ok {
		for k := range f.pending {
			if k <= u {
				delete(f.pending, k)
			}
		}
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	for {
		old := f.fresh.Load()
		if int64(sent) <= old || f.fresh.CompareAndSwap(old, int64(sent)) {
			return
		}
	}
}

// check returns nil while the newest heartbeat received back was sent at
// most staleAfter ago, and an error wrapping errStale otherwise.
func (f *freshness) check() error {
	fr := f.fresh.Load()
	if fr == math.MinInt64 {
		return fmt.Errorf("%w: not yet in step with the other instances", errStale)
	}
	if age := f.since() - time.Duration(fr); age > f.staleAfter {
		return fmt.Errorf("%w: nothing received from Redis is proven newer than %v", errStale, age.Round(time.Millisecond))
	}
	return nil
}

// guardedIndex is the token verifier's revocation checker with several
// instances: the index, while it is known to be current, and an error
// (fail closed) otherwise. The verifier itself is unchanged: it refuses a
// token whenever its checker errs.
type guardedIndex struct {
	idx   *revocation.Index
	fresh *freshness
}

// Revoked implements token.RevocationChecker.
func (g guardedIndex) Revoked(ctx context.Context, jti, sid, userID string, issuedAt time.Time) (bool, error) {
	if err := g.fresh.check(); err != nil {
		return false, err
	}
	return g.idx.Revoked(ctx, jti, sid, userID, issuedAt)
}

// cluster keeps one instance in step with the others (see the comment at
// the top of this file). Build it with newCluster, then start it.
type cluster struct {
	rd       *redisstore.Store
	revs     *redisstore.Revocations
	idx      *revocation.Index
	sessions *session.Manager
	log      *slog.Logger
	fresh    *freshness
	beat     time.Duration
	// heartbeatID and keysID are this instance's control entries.
	heartbeatID, keysID string
	// keysChanged receives a value when the key ring should be reloaded:
	// a notice came, or the instance is in step again after being stale.
	keysChanged chan struct{}

	mu sync.Mutex
	// cancel ends the current subscriptions (restart).
	cancel map[string]context.CancelFunc
	// sessionsGen numbers the session subscriptions: a Resync counts only
	// from the current one.
	sessionsGen uint64
	// sessionsUp is set by the current session subscription's Resync.
	sessionsUp bool
	// cacheOn is what the session cache was last set to.
	cacheOn bool
	// inStep is the state last logged; restarted is when the
	// subscriptions were last started (since the freshness start).
	inStep    bool
	restarted time.Duration

	wg sync.WaitGroup
}

// newCluster returns the follower of the Redis store rd for an instance
// whose revocation index is idx and session manager is sessions. c is the
// clock of its health (clock.System{} in a server: never the lab clock).
func newCluster(rd *redisstore.Store, idx *revocation.Index, sessions *session.Manager, staleAfter time.Duration, c clock.Clock, log *slog.Logger) *cluster {
	id := rand.Text()[:16]
	cl := &cluster{
		rd: rd, revs: rd.Revocations(), idx: idx, sessions: sessions, log: log,
		fresh:       newFreshness(c, staleAfter),
		beat:        staleAfter / 4,
		heartbeatID: controlPrefix + "heartbeat/" + id,
		keysID:      controlPrefix + "keys/" + id,
		keysChanged: make(chan struct{}, 1),
		cancel:      map[string]context.CancelFunc{},
		cacheOn:     true,
	}
	// Off until the session subscription is known to be up.
	cl.setCacheLocked(false)
	return cl
}

// checker is the revocation checker of the token verifier.
func (cl *cluster) checker() guardedIndex { return guardedIndex{idx: cl.idx, fresh: cl.fresh} }

// ready is the cluster's part of /readyz.
func (cl *cluster) ready(context.Context) error { return cl.fresh.check() }

// start runs the subscriptions and the heartbeat until ctx ends; wait
// waits for them to return.
func (cl *cluster) start(ctx context.Context) {
	cl.follow(ctx, "revocations", func(ctx context.Context, _ uint64) error {
		return cl.revs.Subscribe(ctx, cl.onRevocation)
	})
	cl.follow(ctx, "sessions", func(ctx context.Context, gen uint64) error {
		return cl.rd.SubscribeSessions(ctx, func(e redisstore.SessionEvent) { cl.onSession(gen, e) })
	})
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		cl.beatLoop(ctx)
	}()
}

// wait waits for the goroutines of start to return (after ctx ended).
func (cl *cluster) wait() { cl.wg.Wait() }

// follow runs subscribe in a goroutine, again each time restart cancels
// it, until ctx ends or the store is closed.
func (cl *cluster) follow(ctx context.Context, name string, subscribe func(context.Context, uint64) error) {
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		for ctx.Err() == nil {
			sctx, cancel := context.WithCancel(ctx)
			cl.mu.Lock()
			cl.cancel[name] = cancel
			var gen uint64
			if name == "sessions" {
				cl.sessionsGen++
				gen = cl.sessionsGen
			}
			cl.mu.Unlock()
			err := subscribe(sctx, gen)
			cancel()
			if err != nil {
				// Only a closed store ends a subscription with an error.
				if ctx.Err() == nil {
					cl.log.Error("subscription ended", "channel", name, "error", err)
				}
				return
			}
		}
	}()
}

// restartLocked ends the current subscriptions, which follow starts
// afresh: a connection that died without a word is replaced, and the
// revocations are replayed.
func (cl *cluster) restartLocked() {
	for _, cancel := range cl.cancel {
		cancel()
	}
	cl.sessionsUp = false
	cl.restarted = cl.fresh.since()
}

// onRevocation receives every entry of the revocation channel, and each
// live entry again each time the subscription is established.
func (cl *cluster) onRevocation(e revocation.Entry) error {
	if !isControl(e) {
		return cl.idx.Apply(e)
	}
	switch {
	case e.ID == cl.heartbeatID:
		cl.fresh.received(e.Until)
	case strings.HasPrefix(e.ID, controlPrefix+"keys/"):
		cl.reloadKeys()
	}
	return nil
}

// onSession receives the session deletions of every instance, and a
// Resync each time the subscription is established.
func (cl *cluster) onSession(gen uint64, e redisstore.SessionEvent) {
	if !e.Resync {
		cl.sessions.Forget(e.Hash)
		return
	}
	// Whatever happened while not subscribed is unknown: start afresh.
	cl.sessions.ForgetAll()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if gen == cl.sessionsGen {
		cl.sessionsUp = true
		cl.setCacheLocked(cl.sessionsUp && cl.fresh.check() == nil)
	}
}

// setCacheLocked turns the session cache on or off when that changes it.
func (cl *cluster) setCacheLocked(on bool) {
	if on != cl.cacheOn {
		cl.cacheOn = on
		cl.sessions.SetCacheEnabled(on)
	}
}

// reloadKeys asks the server to reload its key ring (once, however many
// times it is asked before it does).
func (cl *cluster) reloadKeys() {
	select {
	case cl.keysChanged <- struct{}{}:
	default:
	}
}

// maxBeatsInFlight bounds the heartbeats sent and not yet answered: a
// connection that hangs holds one, and the next beats take others.
const maxBeatsInFlight = 4

// beatLoop sends a heartbeat every beat and acts on what the freshness
// says every tick (a fifth of a beat), until ctx ends. Each heartbeat is
// sent in a goroutine of its own, so that a Redis connection that does not
// answer delays no decision and no later heartbeat.
func (cl *cluster) beatLoop(ctx context.Context) {
	const ticksPerBeat = 5
	t := time.NewTicker(cl.beat / ticksPerBeat)
	defer t.Stop()
	inFlight := make(chan struct{}, maxBeatsInFlight)
	for tick := 0; ; tick++ {
		if tick%ticksPerBeat == 0 {
			select {
			case inFlight <- struct{}{}:
				cl.wg.Add(1)
				go func() {
					defer cl.wg.Done()
					cl.heartbeat(ctx)
					<-inFlight
				}()
			default:
			}
		}
		cl.supervise()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat publishes the next heartbeat. A failure is left to supervise:
// it shows as a heartbeat that does not come back.
func (cl *cluster) heartbeat(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, cl.fresh.staleAfter)
	defer cancel()
	if err := cl.revs.RevokeSID(hctx, cl.heartbeatID, cl.fresh.next()); err != nil && ctx.Err() == nil {
		cl.log.Debug("send heartbeat", "error", err)
	}
}

// supervise turns the session cache off while the instance is stale,
// restarts the subscriptions when it has been stale for staleAfter since
// they last started, logs the changes of state, and asks for a key reload
// when the instance is in step again.
func (cl *cluster) supervise() {
	err := cl.fresh.check()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch {
	case err != nil && cl.inStep:
		cl.inStep = false
		cl.log.Warn("out of step with the other instances: refusing access tokens and answering /readyz 503 until back", "error", err)
	case err == nil && !cl.inStep:
		cl.inStep = true
		cl.log.Info("in step with the other instances")
		cl.reloadKeys()
	}
	if err != nil && cl.fresh.since()-cl.restarted > cl.fresh.staleAfter {
		cl.restartLocked()
	}
	cl.setCacheLocked(err == nil && cl.sessionsUp)
}

// keysNotice tells every instance (this one included) to reload its key
// ring.
func (cl *cluster) keysNotice(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := cl.revs.RevokeSID(ctx, cl.keysID, cl.fresh.clock.Now().Add(controlLife)); err != nil {
		cl.log.Warn("publish the key change to the other instances (they reload within 10s anyway)", "error", err)
	}
}

// feedPath is the revocation feed of external verifiers (package verify).
const feedPath = "/v1/revocations"

// guardFeed makes the revocation feed answer 503 while the instance is
// stale: the feed is served from the local index, and a follower that got
// an answer would take it as current. A long poll's answer is held until
// the handler is done, and replaced by the 503 if the instance went stale
// meanwhile. A follower that gets 503s fails closed after its own
// MaxStaleness (docs/feed.md).
func (cl *cluster) guardFeed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != feedPath {
			next.ServeHTTP(w, r)
			return
		}
		if cl.fresh.check() != nil {
			writeStale(w)
			return
		}
		hw := &heldResponse{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(hw, r)
		if cl.fresh.check() != nil {
			writeStale(w)
			return
		}
		w.WriteHeader(hw.status)
		_, _ = w.Write(hw.body.Bytes())
	})
}

// writeStale answers 503 as the API answers an unavailable store.
func writeStale(w http.ResponseWriter) {
	h := w.Header()
	clear(h)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": httpapi.ProblemBase + "unavailable", "title": "Service Unavailable", "status": http.StatusServiceUnavailable,
		"detail": "This instance is not in step with the revocations of the others; try another.",
	})
}

// heldResponse holds a response's status and body; its headers go to the
// underlying writer's map, which is sent only when the held response is.
type heldResponse struct {
	http.ResponseWriter
	status int
	wrote  bool
	body   bytes.Buffer
}

func (h *heldResponse) WriteHeader(status int) {
	if !h.wrote {
		h.status, h.wrote = status, true
	}
}

func (h *heldResponse) Write(p []byte) (int, error) {
	h.wrote = true
	return h.body.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (the feed
// pushes its write deadline back for a long poll).
func (h *heldResponse) Unwrap() http.ResponseWriter { return h.ResponseWriter }
