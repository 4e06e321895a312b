package memory

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ refresh.Store = (*Refresh)(nil)

// Refresh is an in-memory refresh.Store. Families are indexed by id and by
// user, tokens by hash and by family, so that only Purge walks every family.
// One mutex makes each method atomic. It is safe for concurrent use; create
// it with NewRefresh.
type Refresh struct {
	clock clock.Clock

	mu        sync.Mutex
	families  map[string]*refresh.Family
	tokens    map[string]*refresh.Token      // by string(hash)
	famTokens map[string]map[string]struct{} // family id → token hashes
	byUser    map[string]map[string]struct{} // user id → family ids
}

// NewRefresh returns an empty Refresh that tells liveness (FamiliesByUser,
// Purge) by c (clock.System{} when c is nil).
func NewRefresh(c clock.Clock) *Refresh {
	if c == nil {
		c = clock.System{}
	}
	return &Refresh{
		clock:     c,
		families:  make(map[string]*refresh.Family),
		tokens:    make(map[string]*refresh.Token),
		famTokens: make(map[string]map[string]struct{}),
		byUser:    make(map[string]map[string]struct{}),
	}
}

// CreateFamily inserts copies of f and its first token.
func (s *Refresh) CreateFamily(ctx context.Context, f *refresh.Family, first *refresh.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.ID == "" || f.UserID == "" || len(first.Hash) == 0 || first.FamilyID != f.ID {
		return errors.New("memory: create refresh family: incomplete family or token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.families[f.ID]; ok {
		return store.ErrConflict
	}
	if _, ok := s.tokens[string(first.Hash)]; ok {
		return store.ErrConflict
	}
	s.families[f.ID] = cloneFamily(f)
	s.addToken(cloneRefreshToken(first))
	ids := s.byUser[f.UserID]
	if ids == nil {
		ids = make(map[string]struct{})
		s.byUser[f.UserID] = ids
	}
	ids[f.ID] = struct{}{}
	return nil
}

// addToken stores t (owned by the store) and indexes it by family.
func (s *Refresh) addToken(t *refresh.Token) {
	s.tokens[string(t.Hash)] = t
	hs := s.famTokens[t.FamilyID]
	if hs == nil {
		hs = make(map[string]struct{})
		s.famTokens[t.FamilyID] = hs
	}
	hs[string(t.Hash)] = struct{}{}
}

// Rotate applies the rotation decisions of package refresh under the lock.
func (s *Refresh) Rotate(ctx context.Context, r refresh.RotateRequest) (refresh.RotateResult, error) {
	if err := ctx.Err(); err != nil {
		return refresh.RotateResult{}, err
	}
	if len(r.Presented) == 0 || len(r.NextHash) == 0 {
		return refresh.RotateResult{}, errors.New("memory: rotate refresh token: empty hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.tokens[string(r.Presented)]
	if tok == nil {
		return refresh.RotateResult{}, store.ErrNotFound
	}
	fam := s.families[tok.FamilyID]
	if _, ok := s.tokens[string(r.NextHash)]; ok {
		return refresh.RotateResult{}, store.ErrConflict
	}
	d := refresh.Decide(*fam, *tok, r)
	var res refresh.RotateResult
	res.Outcome = d.Outcome
	switch {
	case d.Mint:
		child := d.Child
		s.addToken(&child)
		res.Minted = *cloneRefreshToken(&child)
		*tok, *fam = d.Presented, d.Family
		if d.RetireOthers {
			for h := range s.famTokens[fam.ID] {
				other := s.tokens[h]
				if other != tok && other.RotatedAt.IsZero() && !bytes.Equal(other.Hash, child.Hash) {
					other.RotatedAt = r.Now
				}
			}
		}
	case d.Revoke:
		*fam = d.Family
	}
	res.Family = *cloneFamily(fam)
	res.Presented = *cloneRefreshToken(tok)
	return res, nil
}

// Family returns a copy of the family with that id.
func (s *Refresh) Family(ctx context.Context, id string) (*refresh.Family, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.families[id]
	if f == nil {
		return nil, store.ErrNotFound
	}
	return cloneFamily(f), nil
}

// FamilyByTokenHash returns a copy of the family of the token with that hash.
func (s *Refresh) FamilyByTokenHash(ctx context.Context, hash []byte) (*refresh.Family, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[string(hash)]
	if t == nil {
		return nil, store.ErrNotFound
	}
	return cloneFamily(s.families[t.FamilyID]), nil
}

// FamiliesByUser returns copies of the user's live families, newest first.
func (s *Refresh) FamiliesByUser(ctx context.Context, userID string) ([]*refresh.Family, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*refresh.Family
	for id := range s.byUser[userID] {
		if f := s.families[id]; f.Live(now) {
			out = append(out, cloneFamily(f))
		}
	}
	slices.SortFunc(out, newestFamilyFirst)
	return out, nil
}

// RevokeFamily revokes the family at `at` unless it is already revoked.
func (s *Refresh) RevokeFamily(ctx context.Context, id string, at time.Time) (*refresh.Family, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.families[id]
	if f == nil {
		return nil, store.ErrNotFound
	}
	if f.RevokedAt.IsZero() {
		f.RevokedAt = at
	}
	return cloneFamily(f), nil
}

// RevokeUserFamilies revokes the user's families that are live at `at`.
func (s *Refresh) RevokeUserFamilies(ctx context.Context, userID string, at time.Time) ([]*refresh.Family, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*refresh.Family
	for id := range s.byUser[userID] {
		if f := s.families[id]; f.Live(at) {
			f.RevokedAt = at
			out = append(out, cloneFamily(f))
		}
	}
	slices.SortFunc(out, newestFamilyFirst)
	return out, nil
}

// Purge deletes the families past their absolute or idle expiry, with their
// tokens, and returns how many families it deleted.
func (s *Refresh) Purge(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, f := range s.families {
		if now.Before(f.ExpiresAt) && now.Before(f.IdleExpiresAt) {
			continue
		}
		for h := range s.famTokens[id] {
			delete(s.tokens, h)
		}
		delete(s.famTokens, id)
		delete(s.families, id)
		if ids := s.byUser[f.UserID]; ids != nil {
			delete(ids, id)
			if len(ids) == 0 {
				delete(s.byUser, f.UserID)
			}
		}
		n++
	}
	return n, nil
}

// newestFamilyFirst orders families by CreatedAt, newest first, then by id.
func newestFamilyFirst(a, b *refresh.Family) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// cloneFamily returns a copy of f with its times in UTC.
func cloneFamily(f *refresh.Family) *refresh.Family {
	c := *f
	c.CreatedAt = f.CreatedAt.UTC()
	c.LastUsedAt = f.LastUsedAt.UTC()
	c.IdleExpiresAt = f.IdleExpiresAt.UTC()
	c.ExpiresAt = f.ExpiresAt.UTC()
	c.RevokedAt = f.RevokedAt.UTC()
	return &c
}

// cloneRefreshToken returns a deep copy of t with its times in UTC.
func cloneRefreshToken(t *refresh.Token) *refresh.Token {
	c := *t
	c.Hash = bytes.Clone(t.Hash)
	c.ParentHash = bytes.Clone(t.ParentHash)
	c.CreatedAt = t.CreatedAt.UTC()
	c.IdleExpiresAt = t.IdleExpiresAt.UTC()
	c.RotatedAt = t.RotatedAt.UTC()
	return &c
}
