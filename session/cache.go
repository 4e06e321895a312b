package session

import (
	"bytes"
	"sync"
	"time"
)

// maxCached bounds the cache; past it, it is emptied and refills with the
// sessions in use.
const maxCached = 100_000

// cache keeps recently looked-up sessions in memory, so that verifying a
// busy session does not ask the store every time. Entries live for the TTL;
// the Manager drops them at once on every change it makes.
type cache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]*cached
	// gen counts drops. A lookup notes it before reading the store and
	// caches what it read only if no drop happened meanwhile, so a session
	// deleted during the read is never put back.
	gen uint64
	// off turns the cache off (setEnabled): nothing is served or kept.
	off bool
}

type cached struct {
	s  Session
	at time.Time
}

func (c *cache) init(ttl time.Duration) {
	c.ttl = ttl
	c.m = make(map[string]*cached)
}

// get returns a copy of the cached session, or nil.
func (c *cache) get(hash []byte, now time.Time) *Session {
	if c.ttl < 0 {
		return nil
	}
	c.mu.RLock()
	var e *cached
	if !c.off {
		e = c.m[string(hash)]
	}
	var s Session
	if e != nil {
		s = e.s
	}
	c.mu.RUnlock()
	if e == nil || now.Sub(e.at) >= c.ttl || now.Before(e.at) {
		return nil
	}
	return &s
}

// generation returns the drop counter, to pass to put.
func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches s, unless a drop happened since gen was read.
func (c *cache) put(s *Session, now time.Time, gen uint64) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.off {
		return
	}
	if len(c.m) >= maxCached {
		clear(c.m)
	}
	c.m[string(s.Hash)] = &cached{s: *s, at: now}
}

func (c *cache) touched(hash []byte, seen, idle time.Time) {
	c.mu.Lock()
	if e := c.m[string(hash)]; e != nil {
		e.s.LastSeenAt, e.s.IdleExpiresAt = seen, idle
	}
	c.mu.Unlock()
}

func (c *cache) drop(hash []byte) {
	c.mu.Lock()
	c.gen++
	delete(c.m, string(hash))
	c.mu.Unlock()
}

// dropUser drops every cached session of the user but keep's.
func (c *cache) dropUser(userID string, keep []byte) {
	c.mu.Lock()
	c.gen++
	for k, e := range c.m {
		if e.s.UserID == userID && (keep == nil || !bytes.Equal(e.s.Hash, keep)) {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// dropAll empties the cache.
func (c *cache) dropAll() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}

// setEnabled turns the cache on or off. Either way it starts empty, and a
// lookup that read the store before the switch does not fill it.
func (c *cache) setEnabled(on bool) {
	c.mu.Lock()
	c.gen++
	c.off = !on
	clear(c.m)
	c.mu.Unlock()
}
