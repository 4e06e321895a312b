package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ session.Store = (*Store)(nil)

// sessionStore is the session.Store part of Store. Sessions are indexed by
// hash (the primary key), by public id, and by user (a set of hashes per
// user), so that nothing but Purge walks every session.
type sessionStore struct {
	clock  clock.Clock
	mu     sync.RWMutex
	byHash map[string]*session.Session
	byID   map[string]*session.Session
	byUser map[string]map[string]struct{}
}

func (s *sessionStore) init(c clock.Clock) {
	s.clock = c
	s.byHash = make(map[string]*session.Session)
	s.byID = make(map[string]*session.Session)
	s.byUser = make(map[string]map[string]struct{})
}

// live reports whether sess is live at now.
func live(sess *session.Session, now time.Time) bool {
	return now.Before(sess.IdleExpiresAt) && now.Before(sess.ExpiresAt)
}

// cloneSession returns a deep copy of sess with its times in UTC.
func cloneSession(sess *session.Session) *session.Session {
	c := *sess
	c.Hash = bytes.Clone(sess.Hash)
	c.CreatedAt = sess.CreatedAt.UTC()
	c.LastSeenAt = sess.LastSeenAt.UTC()
	c.IdleExpiresAt = sess.IdleExpiresAt.UTC()
	c.ExpiresAt = sess.ExpiresAt.UTC()
	return &c
}

// newestFirst orders sessions by CreatedAt, newest first, then by id.
func newestFirst(a, b *session.Session) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// remove deletes sess from every index. The caller holds s.mu.
func (s *sessionStore) remove(sess *session.Session) {
	key := string(sess.Hash)
	delete(s.byHash, key)
	delete(s.byID, sess.ID)
	if set := s.byUser[sess.UserID]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(s.byUser, sess.UserID)
		}
	}
}

// CreateSession inserts a copy of sess.
func (s *sessionStore) CreateSession(_ context.Context, sess *session.Session) error {
	c := cloneSession(sess)
	key := string(c.Hash)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byHash[key]; ok {
		return store.ErrConflict
	}
	if _, ok := s.byID[c.ID]; ok {
		return store.ErrConflict
	}
	s.byHash[key] = c
	s.byID[c.ID] = c
	set := s.byUser[c.UserID]
	if set == nil {
		set = make(map[string]struct{})
		s.byUser[c.UserID] = set
	}
	set[key] = struct{}{}
	return nil
}

// SessionByHash returns a copy of the live session with that hash.
func (s *sessionStore) SessionByHash(_ context.Context, hash []byte) (*session.Session, error) {
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.byHash[string(hash)]
	if !ok || !live(sess, now) {
		return nil, store.ErrNotFound
	}
	return cloneSession(sess), nil
}

// TouchSession sets LastSeenAt and IdleExpiresAt of the live session with
// that hash.
func (s *sessionStore) TouchSession(_ context.Context, hash []byte, lastSeen, idleExpires time.Time) error {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byHash[string(hash)]
	if !ok || !live(sess, now) {
		return store.ErrNotFound
	}
	sess.LastSeenAt = lastSeen.UTC()
	sess.IdleExpiresAt = idleExpires.UTC()
	return nil
}

// DeleteSession deletes the session with that hash, if any.
func (s *sessionStore) DeleteSession(_ context.Context, hash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.byHash[string(hash)]; ok {
		s.remove(sess)
	}
	return nil
}

// SessionsByUser returns copies of the user's live sessions, newest first.
func (s *sessionStore) SessionsByUser(_ context.Context, userID string) ([]*session.Session, error) {
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.byUser[userID]
	out := make([]*session.Session, 0, len(set))
	for key := range set {
		if sess := s.byHash[key]; live(sess, now) {
			out = append(out, cloneSession(sess))
		}
	}
	slices.SortFunc(out, newestFirst)
	return out, nil
}

// DeleteUserSession deletes the user's live session with public id id and
// returns it.
func (s *sessionStore) DeleteUserSession(_ context.Context, userID, id string) (*session.Session, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok || sess.UserID != userID || !live(sess, now) {
		return nil, store.ErrNotFound
	}
	s.remove(sess)
	return cloneSession(sess), nil
}

// DeleteUserSessions deletes every session of the user but the one whose
// hash is keep, and returns the live ones among them, newest first.
func (s *sessionStore) DeleteUserSessions(_ context.Context, userID string, keep []byte) ([]*session.Session, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session.Session
	for key := range s.byUser[userID] {
		if len(keep) > 0 && key == string(keep) {
			continue
		}
		sess := s.byHash[key]
		s.remove(sess)
		if live(sess, now) {
			out = append(out, cloneSession(sess))
		}
	}
	slices.SortFunc(out, newestFirst)
	return out, nil
}

// purge removes the sessions that are dead at now and returns how many.
func (s *sessionStore) purge(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.byHash {
		if !live(sess, now) {
			s.remove(sess)
			n++
		}
	}
	return n
}
