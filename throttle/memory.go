package throttle

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// MaxKeys is how many keys a Memory limiter tracks at once. Beyond it, a
// new key may only replace one that no longer matters or matters least:
// a key whose failures have all left the window, or, among the least
// recently active, one still within its free allowance with no attempt in
// flight. A key being throttled is never forgotten to make room: when no
// key can go, the new key's attempt is refused (fail closed) rather than
// letting an attacker flush a victim's count out by flooding new keys.
const MaxKeys = 100_000

// evictScan bounds how many of the least recently active keys a full shard
// examines for one that may be replaced.
const evictScan = 32

// fullWait is the wait answered when a full limiter cannot track a new key.
const fullWait = time.Minute

// maxInFlight bounds the attempts reserved at once for one key; it bounds
// memory per key, and no honest client needs more concurrent logins.
const maxInFlight = 64

// slotsPerWindow is how finely the window is tracked: failures are counted
// per slot of Window/slotsPerWindow, so that a key costs a fixed amount of
// memory whatever its Max. A failure leaves the window at the end of its
// slot: never early, at most one slot late.
const slotsPerWindow = 60

// ring is the number of slots kept: one more than a window, because the
// oldest slot straddles the window's start and is counted whole.
const ring = slotsPerWindow + 1

// shardCount is the number of independently locked parts of a Memory.
// BenchmarkMemoryParallel compares it with a single lock.
const shardCount = 16

// Memory is an in-process Limiter. It is safe for concurrent use and its
// memory is bounded: at most MaxKeys keys, each a fixed size (about 400
// bytes, plus up to 64 reservations in flight). Entries whose failures have
// all left the window are removed lazily, when their key is used again or
// when they reach the end of the recency list. Keys longer than 128 bytes
// are stored as their SHA-256 digest.
//
// A Memory only counts the attempts seen by this process: several instances
// behind a load balancer need a shared Limiter.
type Memory struct {
	clock  clock.Clock
	policy Policy
	width  int64 // slot width in nanoseconds
	seed   maphash.Seed
	shards []shard
}

var _ Limiter = (*Memory)(nil)

// shard is one locked part of a Memory: a map of entries and a recency list.
type shard struct {
	mu      sync.Mutex
	entries map[string]*entry
	// newest and oldest are the ends of the recency list, ordered by the
	// last reservation or failure.
	newest, oldest *entry
	limit          int
	_              [64]byte // keep shards on separate cache lines
}

// entry is the state of one key.
type entry struct {
	key string
	// head is the absolute index (Unix nanoseconds / width) of the newest
	// slot; slots[i mod ring] holds the failures of slot i for the ring
	// slots up to head.
	head     int64
	slots    [ring]uint32
	failures int   // sum of slots
	last     int64 // Unix nanoseconds of the latest failure or reservation
	lastFail int64 // Unix nanoseconds of the latest failure: the backoff's base
	pending  []int64
	// newer and older link the shard's recency list.
	newer, older *entry
}

// NewMemory returns an in-memory Limiter applying p, with time from c. It
// panics if p is invalid (see Policy.Validate): policies are set up once,
// at start.
func NewMemory(c clock.Clock, p Policy) *Memory {
	return newMemory(c, p, MaxKeys, shardCount)
}

func newMemory(c clock.Clock, p Policy, maxKeys, shards int) *Memory {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if c == nil {
		panic("throttle: nil clock")
	}
	width := (int64(p.Window) + slotsPerWindow - 1) / slotsPerWindow
	m := &Memory{clock: c, policy: p, width: width, seed: maphash.MakeSeed(), shards: make([]shard, shards)}
	per := max(maxKeys/shards, 1)
	for i := range m.shards {
		m.shards[i].entries = make(map[string]*entry)
		m.shards[i].limit = per
	}
	return m
}

// shard returns the shard that holds key.
func (m *Memory) shard(key string) *shard {
	if len(m.shards) == 1 {
		return &m.shards[0]
	}
	return &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
}

// Check reports whether an attempt for key may proceed now, and reserves
// it when it may.
func (m *Memory) Check(_ context.Context, key string) (time.Duration, error) {
	if key == "" {
		return 0, errBadKey
	}
	key = compactKey(key)
	now := m.clock.Now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e != nil {
		m.refresh(e, now)
		if wait := m.wait(e, now); wait > 0 {
			return time.Duration(wait), nil
		}
	} else {
		if e = s.insert(key, m.slot(now), now, m.dead, m.expendable); e == nil {
			return fullWait, nil
		}
	}
	e.pending = append(e.pending, now)
	e.last = now
	s.touch(e)
	return 0, nil
}

// Failure ends an attempt for key as a failure.
func (m *Memory) Failure(_ context.Context, key string) error {
	if key == "" {
		return errBadKey
	}
	key = compactKey(key)
	now := m.clock.Now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e != nil {
		m.refresh(e, now)
	} else {
		if e = s.insert(key, m.slot(now), now, m.dead, m.expendable); e == nil {
			return nil // full of throttled keys; its attempts are refused anyway
		}
	}
	e.dropReservation()
	if i := index(e.head); e.slots[i] < ^uint32(0) {
		e.slots[i]++
		e.failures++
	}
	e.last = max(e.last, now)
	e.lastFail = max(e.lastFail, now)
	s.touch(e)
	return nil
}

// Success ends an attempt for key as a success and clears its failures.
func (m *Memory) Success(_ context.Context, key string) error {
	return m.end(key, true)
}

// Release ends an attempt for key without counting it.
func (m *Memory) Release(_ context.Context, key string) error {
	return m.end(key, false)
}

// end drops one reservation of key and, when clear is set, its failures.
func (m *Memory) end(key string, clear bool) error {
	if key == "" {
		return errBadKey
	}
	key = compactKey(key)
	now := m.clock.Now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil {
		return nil
	}
	m.refresh(e, now)
	e.dropReservation()
	if clear {
		e.slots = [ring]uint32{}
		e.failures = 0
	}
	if m.dead(e, now) {
		s.remove(e)
	}
	return nil
}

// slot returns the absolute slot index of the instant t (Unix nanoseconds).
func (m *Memory) slot(t int64) int64 {
	q := t / m.width
	if t%m.width < 0 {
		q--
	}
	return q
}

// index returns the position of the absolute slot k in an entry's ring.
func index(k int64) int {
	j := int(k % ring)
	if j < 0 {
		j += ring
	}
	return j
}

// refresh brings e up to now: slots that left the window are emptied and
// lapsed reservations dropped.
func (m *Memory) refresh(e *entry, now int64) {
	if s := m.slot(now); s > e.head {
		if s-e.head >= ring {
			e.slots = [ring]uint32{}
			e.failures = 0
		} else {
			for i := e.head + 1; i <= s; i++ {
				j := index(i)
				e.failures -= int(e.slots[j])
				e.slots[j] = 0
			}
		}
		e.head = s
	}
	hold := int64(AttemptHold)
	e.pending = slices.DeleteFunc(e.pending, func(t int64) bool { return now-t >= hold })
}

// expendable reports whether e may be forgotten to make room: dead, or
// within the free allowance with no attempt in flight (forgetting it can
// only cost its owner nothing, since the backoff starts after Free). It
// refreshes e.
func (m *Memory) expendable(e *entry, now int64) bool {
	return m.dead(e, now) || e.failures < m.policy.Free && len(e.pending) == 0
}

// dead reports whether e no longer affects any decision at now. It
// refreshes e.
func (m *Memory) dead(e *entry, now int64) bool {
	m.refresh(e, now)
	return e.failures == 0 && len(e.pending) == 0
}

// wait returns how many nanoseconds an attempt for the refreshed entry e
// must wait at now, or 0 when it may proceed.
func (m *Memory) wait(e *entry, now int64) int64 {
	n := e.failures + len(e.pending)
	if n >= m.policy.Max {
		return m.capWait(e, now, n-m.policy.Max+1)
	}
	if len(e.pending) >= maxInFlight {
		oldest := slices.Min(e.pending)
		return max(oldest+int64(AttemptHold)-now, 1)
	}
	// The backoff follows the failures only: attempts still in flight
	// count against the hard cap (above), never as failures, so that
	// concurrent logins with the right password (a busy office behind one
	// address) are not refused.
	if d := m.policy.delay(e.failures); d > 0 {
		if w := e.lastFail + int64(d) - now; w > 0 {
			return w
		}
	}
	return 0
}

// capWait returns the nanoseconds until need of e's failures and
// reservations have left the window.
func (m *Memory) capWait(e *entry, now int64, need int) int64 {
	hold := int64(AttemptHold)
	pending := slices.Clone(e.pending)
	slices.Sort(pending)
	p := 0
	for k := e.head - ring + 1; k <= e.head; k++ {
		c := int(e.slots[index(k)])
		if c == 0 {
			continue
		}
		leaves := (k + ring) * m.width
		for ; p < len(pending) && pending[p]+hold <= leaves; p++ {
			if need--; need == 0 {
				return max(pending[p]+hold-now, 1)
			}
		}
		if need -= c; need <= 0 {
			return max(leaves-now, 1)
		}
	}
	for ; p < len(pending); p++ {
		if need--; need <= 0 {
			return max(pending[p]+hold-now, 1)
		}
	}
	// Unreachable: need never exceeds the failures and reservations.
	return int64(m.policy.Window)
}

// dropReservation removes e's oldest reservation, if any.
func (e *entry) dropReservation() {
	if len(e.pending) == 0 {
		return
	}
	i := 0
	for j, t := range e.pending {
		if t < e.pending[i] {
			i = j
		}
	}
	e.pending = slices.Delete(e.pending, i, i+1)
}

// insert adds a new entry for key at slot head, making room first: dead
// entries at the old end of the recency list are removed, and when the
// shard is still full its least recently active entry is evicted.
func (s *shard) insert(key string, head, now int64, dead, expendable func(*entry, int64) bool) *entry {
	for range 2 {
		if s.oldest == nil || !dead(s.oldest, now) {
			break
		}
		s.remove(s.oldest)
	}
	if len(s.entries) >= s.limit {
		victim := s.oldest
		for i := 1; victim != nil && i < evictScan && !expendable(victim, now); i++ {
			victim = victim.newer
		}
		if victim == nil || !expendable(victim, now) {
			return nil
		}
		s.remove(victim)
	}
	e := &entry{key: key, head: head}
	s.entries[key] = e
	s.pushNewest(e)
	return e
}

// touch moves e to the newest end of the recency list.
func (s *shard) touch(e *entry) {
	if s.newest == e {
		return
	}
	s.unlink(e)
	s.pushNewest(e)
}

func (s *shard) pushNewest(e *entry) {
	e.older = s.newest
	e.newer = nil
	if s.newest != nil {
		s.newest.newer = e
	}
	s.newest = e
	if s.oldest == nil {
		s.oldest = e
	}
}

func (s *shard) unlink(e *entry) {
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		s.newest = e.older
	}
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		s.oldest = e.newer
	}
	e.newer, e.older = nil, nil
}

// remove forgets e.
func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.entries, e.key)
}

// keys returns the number of keys tracked, for tests.
func (m *Memory) keys() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
