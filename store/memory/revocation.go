package memory

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
)

var _ revocation.Store = (*Revocations)(nil)

// Revocations is an in-memory revocation.Store: one map per kind of entry.
// It is safe for concurrent use; create it with NewRevocations.
type Revocations struct {
	clock clock.Clock

	mu      sync.Mutex
	entries [3]map[string]revocation.Entry // indexed by kind-1
}

// NewRevocations returns an empty Revocations that tells liveness (Load,
// Purge) by c (clock.System{} when c is nil).
func NewRevocations(c clock.Clock) *Revocations {
	if c == nil {
		c = clock.System{}
	}
	r := &Revocations{clock: c}
	for i := range r.entries {
		r.entries[i] = make(map[string]revocation.Entry)
	}
	return r
}

// DenyToken records the jti until `until`.
func (r *Revocations) DenyToken(ctx context.Context, jti string, until time.Time) error {
	return r.put(ctx, revocation.Entry{Kind: revocation.KindToken, ID: jti, Until: until})
}

// RevokeSID records the sid until `until`.
func (r *Revocations) RevokeSID(ctx context.Context, sid string, until time.Time) error {
	return r.put(ctx, revocation.Entry{Kind: revocation.KindSID, ID: sid, Until: until})
}

// RevokeUser records the user's revoke-all time until `until`.
func (r *Revocations) RevokeUser(ctx context.Context, userID string, before, until time.Time) error {
	return r.put(ctx, revocation.Entry{Kind: revocation.KindUser, ID: userID, Before: before, Until: until})
}

// put merges e into its map, keeping the later times.
func (r *Revocations) put(ctx context.Context, e revocation.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.Before = e.Before.UTC()
	e.Until = e.Until.UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.entries[e.Kind-1]
	if old, ok := m[e.ID]; ok {
		if old.Before.After(e.Before) {
			e.Before = old.Before
		}
		if old.Until.After(e.Until) {
			e.Until = old.Until
		}
	}
	m[e.ID] = e
	return nil
}

// Load returns copies of the live entries.
func (r *Revocations) Load(ctx context.Context) ([]revocation.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []revocation.Entry
	for _, m := range r.entries {
		for _, e := range m {
			if now.Before(e.Until) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// Purge deletes the entries that are no longer live.
func (r *Revocations) Purge(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.entries {
		for id, e := range m {
			if !now.Before(e.Until) {
				delete(m, id)
				n++
			}
		}
	}
	return n, nil
}
