package account

import (
	"slices"
	"sync"
	"time"
)

// maxCachedUsers bounds the user cache; past it, it is emptied.
const maxCachedUsers = 100_000

// userCache keeps recently loaded users for a short TTL.
type userCache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]userEntry
	gen uint64 // drops so far: a load racing a drop is not cached
}

type userEntry struct {
	u  User
	at time.Time
}

// get returns a copy of the cached user, or nil.
func (c *userCache) get(id string, now time.Time) *User {
	if c.ttl < 0 {
		return nil
	}
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) >= c.ttl || now.Before(e.at) {
		return nil
	}
	u := e.u
	u.Roles = slices.Clone(e.u.Roles)
	return &u
}

func (c *userCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches u unless a drop happened since gen was read.
func (c *userCache) put(u *User, now time.Time, gen uint64) {
	if c.ttl < 0 {
		return
	}
	e := userEntry{u: *u, at: now}
	e.u.Roles = slices.Clone(u.Roles)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= maxCachedUsers {
		clear(c.m)
	}
	c.m[u.ID] = e
}

func (c *userCache) drop(id string) {
	c.mu.Lock()
	c.gen++
	delete(c.m, id)
	c.mu.Unlock()
}
