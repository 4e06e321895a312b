package account

import (
	"context"
	"time"
)

// User is an account as the store keeps it.
type User struct {
	// ID is the opaque, immutable user id.
	ID string
	// Username is the PRECIS UsernameCaseMapped normalised name; it is unique.
	Username string
	// PasswordHash is the Argon2id hash as a PHC string.
	PasswordHash string
	// Roles are the user's roles, sorted, without duplicates (e.g. "admin").
	Roles []string
	// CreatedAt is when the account was created.
	CreatedAt time.Time
	// UpdatedAt is when the account last changed.
	UpdatedAt time.Time
	// RevokedBefore, when not zero, refuses every credential of the user
	// issued before it (forced logout, password change).
	RevokedBefore time.Time
}

// HasRole reports whether the user has the role.
func (u *User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Store is what the account package needs from a storage backend.
//
// Implementations return store.ErrNotFound for a missing user and
// store.ErrConflict when CreateUser meets a taken username or id. Returned
// users are copies: changing them does not change the store.
type Store interface {
	// CreateUser inserts u. Username and ID must both be unique.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user with that id.
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByUsername returns the user with that normalised username.
	UserByUsername(ctx context.Context, username string) (*User, error)
	// SetPasswordHash replaces the user's password hash and sets UpdatedAt.
	SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error
	// SetRoles replaces the user's roles and sets UpdatedAt.
	SetRoles(ctx context.Context, id string, roles []string, at time.Time) error
	// SetRevokedBefore sets the user's revoked-before time. It never moves
	// the time backwards: a t earlier than the stored one is ignored.
	SetRevokedBefore(ctx context.Context, id string, t time.Time) error
	// ListUsers returns up to limit users ordered by username, starting
	// after the username `after` ("" for the first page).
	ListUsers(ctx context.Context, after string, limit int) ([]*User, error)
}
