package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ keys.Store = (*Keys)(nil)

// Keys is an in-memory keys.Store: the signing key records, by kid. It is
// safe for concurrent use; create it with NewKeys.
type Keys struct {
	mu   sync.Mutex
	byID map[string]*keys.Record
}

// NewKeys returns an empty Keys.
func NewKeys() *Keys {
	return &Keys{byID: make(map[string]*keys.Record)}
}

// CreateSigningKey saves a copy of r; a taken kid is store.ErrConflict.
func (s *Keys) CreateSigningKey(_ context.Context, r *keys.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[r.KID]; ok {
		return fmt.Errorf("create signing key %s: %w", r.KID, store.ErrConflict)
	}
	s.byID[r.KID] = copyRecord(r)
	return nil
}

// SigningKeys returns copies of every record, oldest first.
func (s *Keys) SigningKeys(context.Context) ([]*keys.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*keys.Record, 0, len(s.byID))
	for _, r := range s.byID {
		out = append(out, copyRecord(r))
	}
	slices.SortFunc(out, func(a, b *keys.Record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.KID, b.KID)
	})
	return out, nil
}

// UpdateSigningKey replaces the lifecycle of the record kid; Removed stays
// true once set.
func (s *Keys) UpdateSigningKey(_ context.Context, kid string, l keys.Lifecycle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[kid]
	if !ok {
		return fmt.Errorf("update signing key %s: %w", kid, store.ErrNotFound)
	}
	l.Removed = l.Removed || r.Removed
	r.Lifecycle = utcLifecycle(l)
	return nil
}

// copyRecord returns a deep copy of r with its times in UTC.
func copyRecord(r *keys.Record) *keys.Record {
	c := *r
	c.Sealed = bytes.Clone(r.Sealed)
	c.PublicKey = bytes.Clone(r.PublicKey)
	c.CreatedAt = r.CreatedAt.UTC()
	c.Lifecycle = utcLifecycle(r.Lifecycle)
	return &c
}

func utcLifecycle(l keys.Lifecycle) keys.Lifecycle {
	l.SignsFrom = l.SignsFrom.UTC()
	l.RetiredAt = l.RetiredAt.UTC()
	l.RemoveAt = l.RemoveAt.UTC()
	return l
}
