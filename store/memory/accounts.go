package memory

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ account.Store = (*Store)(nil)

// accountStore is the account.Store part of Store.
type accountStore struct {
	mu     sync.RWMutex
	byID   map[string]*account.User
	byName map[string]*account.User
	names  []string // every username, sorted, for ListUsers
}

func (a *accountStore) init() {
	a.byID = make(map[string]*account.User)
	a.byName = make(map[string]*account.User)
}

// cloneUser returns a deep copy of u with its times in UTC.
func cloneUser(u *account.User) *account.User {
	c := *u
	c.Roles = cloneRoles(u.Roles)
	c.CreatedAt = u.CreatedAt.UTC()
	c.UpdatedAt = u.UpdatedAt.UTC()
	c.RevokedBefore = u.RevokedBefore.UTC()
	return &c
}

// cloneRoles returns a copy of roles; nil when empty.
func cloneRoles(roles []string) []string {
	if len(roles) == 0 {
		return nil
	}
	return slices.Clone(roles)
}

// CreateUser inserts a copy of u.
func (a *accountStore) CreateUser(_ context.Context, u *account.User) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.byID[u.ID]; ok {
		return store.ErrConflict
	}
	if _, ok := a.byName[u.Username]; ok {
		return store.ErrConflict
	}
	c := cloneUser(u)
	a.byID[c.ID] = c
	a.byName[c.Username] = c
	i, _ := slices.BinarySearch(a.names, c.Username)
	a.names = slices.Insert(a.names, i, c.Username)
	return nil
}

// UserByID returns a copy of the user with that id.
func (a *accountStore) UserByID(_ context.Context, id string) (*account.User, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	u, ok := a.byID[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneUser(u), nil
}

// UserByUsername returns a copy of the user with that username.
func (a *accountStore) UserByUsername(_ context.Context, username string) (*account.User, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	u, ok := a.byName[username]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneUser(u), nil
}

// update applies f to the stored user with that id.
func (a *accountStore) update(id string, f func(u *account.User)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.byID[id]
	if !ok {
		return store.ErrNotFound
	}
	f(u)
	return nil
}

// SetPasswordHash replaces the user's password hash and sets UpdatedAt.
func (a *accountStore) SetPasswordHash(_ context.Context, id, hash string, at time.Time) error {
	return a.update(id, func(u *account.User) {
		u.PasswordHash = hash
		u.UpdatedAt = at.UTC()
	})
}

// SetRoles replaces the user's roles with a copy of roles and sets UpdatedAt.
func (a *accountStore) SetRoles(_ context.Context, id string, roles []string, at time.Time) error {
	roles = cloneRoles(roles)
	return a.update(id, func(u *account.User) {
		u.Roles = roles
		u.UpdatedAt = at.UTC()
	})
}

// SetRevokedBefore moves the user's revoked-before time forward to t; an
// earlier t is ignored.
func (a *accountStore) SetRevokedBefore(_ context.Context, id string, t time.Time) error {
	return a.update(id, func(u *account.User) {
		if t.After(u.RevokedBefore) {
			u.RevokedBefore = t.UTC()
		}
	})
}

// ListUsers returns copies of up to limit users (all when limit <= 0)
// ordered by username, starting after the username after.
func (a *accountStore) ListUsers(_ context.Context, after string, limit int) ([]*account.User, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	i := sort.Search(len(a.names), func(i int) bool { return a.names[i] > after })
	names := a.names[i:]
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	users := make([]*account.User, 0, len(names))
	for _, n := range names {
		users = append(users, cloneUser(a.byName[n]))
	}
	return users, nil
}
