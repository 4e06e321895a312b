package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// maxIDLen bounds the ids the Index accepts, so that a caller's mistake
// cannot fill memory with one entry.
const maxIDLen = 256

// ErrInvalidEntry is returned for an entry with an unknown kind, an empty or
// overlong id, or a zero time where one is needed.
var ErrInvalidEntry = errors.New("revocation: invalid entry")

// Index answers whether an access token is revoked from memory. It is safe
// for concurrent use; create it with New.
type Index struct {
	// OnChange, when not nil, is called after each successful local write
	// (DenyToken, RevokeSID, RevokeUser) with the entry as stored, for
	// publishing it to other instances, which Apply it. It is not called by
	// Apply. Set it before the Index is shared; it must not block for long.
	OnChange func(Entry)

	store Store
	clock clock.Clock

	mu     sync.RWMutex
	tokens map[string]time.Time // jti → until
	sids   map[string]time.Time // sid → until
	users  map[string]userEntry // user id → revoke-all time
	feed   feed                 // the change log of Since and Wait (feed.go)
}

// userEntry is a user's revoke-all time; cutoff is ceil(before) in Unix
// seconds, the first iat that is accepted.
type userEntry struct {
	cutoff int64
	before time.Time
	until  time.Time
}

// New returns an Index over s, loaded with every live entry of s. The clock
// (clock.System{} when nil) tells the Index when entries may be purged.
func New(ctx context.Context, s Store, c clock.Clock) (*Index, error) {
	if s == nil {
		return nil, errors.New("revocation: nil store")
	}
	if c == nil {
		c = clock.System{}
	}
	x := &Index{
		store:  s,
		clock:  c,
		tokens: make(map[string]time.Time),
		sids:   make(map[string]time.Time),
		users:  make(map[string]userEntry),
		feed:   newFeed(),
	}
	entries, err := s.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	for _, e := range entries {
		if err := x.Apply(e); err != nil {
			return nil, fmt.Errorf("load revocations: %w", err)
		}
	}
	return x, nil
}

// Revoked reports whether a credential is revoked: its jti is denylisted, its
// sid is revoked, or it was issued before its user's revoke-all time (at
// one-second granularity: see the package documentation). Empty strings match
// nothing. It never touches the store and never returns an error; the error
// is there for the interface that verifiers declare.
func (x *Index) Revoked(_ context.Context, jti, sid, userID string, issuedAt time.Time) (bool, error) {
	x.mu.RLock()
	_, denied := x.tokens[jti]
	_, ended := x.sids[sid]
	u, forced := x.users[userID]
	x.mu.RUnlock()
	return denied || ended || (forced && issuedAt.Unix() < u.cutoff), nil
}

// DenyToken denylists the jti of an access token that expires at expiresAt
// (its exp claim): logout, RFC 7009 revocation.
func (x *Index) DenyToken(ctx context.Context, jti string, expiresAt time.Time) error {
	e := Entry{Kind: KindToken, ID: jti, Until: withRetention(expiresAt)}
	if err := e.validate(); err != nil {
		return fmt.Errorf("deny token: %w", err)
	}
	if err := x.store.DenyToken(ctx, e.ID, e.Until); err != nil {
		return fmt.Errorf("deny token: %w", err)
	}
	x.merge(e)
	x.changed(e)
	return nil
}

// RevokeSID revokes every access token carrying the sid of a session or
// refresh family that has ended. until is when the last of them expires:
// the end time plus the access token lifetime.
func (x *Index) RevokeSID(ctx context.Context, sid string, until time.Time) error {
	e := Entry{Kind: KindSID, ID: sid, Until: withRetention(until)}
	if err := e.validate(); err != nil {
		return fmt.Errorf("revoke sid: %w", err)
	}
	if err := x.store.RevokeSID(ctx, e.ID, e.Until); err != nil {
		return fmt.Errorf("revoke sid: %w", err)
	}
	x.merge(e)
	x.changed(e)
	return nil
}

// RevokeUser refuses every credential of the user issued before `before`
// (forced logout, password change). until is when the last access token
// issued before `before` expires: before plus the access token lifetime. A
// `before` earlier than the user's current one changes nothing.
func (x *Index) RevokeUser(ctx context.Context, userID string, before, until time.Time) error {
	e := Entry{Kind: KindUser, ID: userID, Before: before, Until: withRetention(until)}
	if err := e.validate(); err != nil {
		return fmt.Errorf("revoke user: %w", err)
	}
	if err := x.store.RevokeUser(ctx, e.ID, e.Before, e.Until); err != nil {
		return fmt.Errorf("revoke user: %w", err)
	}
	x.merge(e)
	x.changed(e)
	return nil
}

// Apply merges an entry received from another instance (already stored
// there) into the memory index, without a store write and without calling
// OnChange. Merging never moves a time backwards.
func (x *Index) Apply(e Entry) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("apply revocation: %w", err)
	}
	x.merge(e)
	return nil
}

// Purge deletes the entries whose time has passed from the store and from
// memory, and returns how many the store deleted.
func (x *Index) Purge(ctx context.Context) (int, error) {
	n, err := x.store.Purge(ctx)
	if err != nil {
		return 0, fmt.Errorf("purge revocations: %w", err)
	}
	now := x.clock.Now()
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, until := range x.tokens {
		if !now.Before(until) {
			delete(x.tokens, k)
		}
	}
	for k, until := range x.sids {
		if !now.Before(until) {
			delete(x.sids, k)
		}
	}
	for k, u := range x.users {
		if !now.Before(u.until) {
			delete(x.users, k)
		}
	}
	return n, nil
}

// merge adds a valid entry to memory, keeping the later times, and appends
// the entry's new state to the change log when anything changed.
func (x *Index) merge(e Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch e.Kind {
	case KindToken:
		if old, ok := x.tokens[e.ID]; !ok || e.Until.After(old) {
			x.tokens[e.ID] = e.Until
			x.feed.append(Entry{Kind: KindToken, ID: e.ID, Until: e.Until})
		}
	case KindSID:
		if old, ok := x.sids[e.ID]; !ok || e.Until.After(old) {
			x.sids[e.ID] = e.Until
			x.feed.append(Entry{Kind: KindSID, ID: e.ID, Until: e.Until})
		}
	case KindUser:
		u, ok := x.users[e.ID]
		changed := !ok
		if !ok || e.Before.After(u.before) {
			u.before = e.Before
			u.cutoff = ceilUnix(e.Before)
			changed = true
		}
		if !ok || e.Until.After(u.until) {
			u.until = e.Until
			changed = true
		}
		x.users[e.ID] = u
		if changed {
			x.feed.append(Entry{Kind: KindUser, ID: e.ID, Before: u.before, Until: u.until})
		}
	}
}

func (x *Index) changed(e Entry) {
	if x.OnChange != nil {
		x.OnChange(e)
	}
}

// validate checks what every entry needs.
func (e Entry) validate() error {
	switch {
	case e.Kind != KindToken && e.Kind != KindSID && e.Kind != KindUser:
		return fmt.Errorf("%w: kind %d", ErrInvalidEntry, e.Kind)
	case e.ID == "" || len(e.ID) > maxIDLen:
		return fmt.Errorf("%w: id of %d bytes", ErrInvalidEntry, len(e.ID))
	case e.Until.IsZero():
		return fmt.Errorf("%w: no until", ErrInvalidEntry)
	case e.Kind == KindUser && e.Before.IsZero():
		return fmt.Errorf("%w: user entry without before", ErrInvalidEntry)
	}
	return nil
}

// ceilUnix returns t rounded up to the whole second, in Unix seconds.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// withRetention returns t plus Retention, keeping the zero time zero so that
// validate refuses it.
func withRetention(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(Retention)
}
