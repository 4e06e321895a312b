// Package memory is an in-memory storage backend. It keeps everything in maps
// guarded by mutexes and loses it all when the process ends: it is the
// backend of tests and of single-process development, and it passes the same
// conformance suite (store/storetest) as every persistent backend.
//
// A Store is made of one part per domain (accounts, sessions, audit), each in
// its own file with its own lock, so that work on one domain never waits on
// another.
package memory

import (
	"context"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// Store is an in-memory backend for every domain store. It is safe for
// concurrent use. Create it with New.
type Store struct {
	clock clock.Clock

	accountStore
	sessionStore
	auditStore
}

// New returns an empty Store that tells liveness by c (clock.System{} when c
// is nil).
func New(c clock.Clock) *Store {
	if c == nil {
		c = clock.System{}
	}
	s := &Store{clock: c}
	s.accountStore.init()
	s.sessionStore.init(c)
	s.auditStore.init()
	return s
}

// Purge removes the dead sessions and returns how many it removed. Lookups
// never return dead sessions; Purge only frees their memory.
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.sessionStore.purge(s.clock.Now()), nil
}
