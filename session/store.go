package session

import (
	"context"
	"time"
)

// Session is a server-side session as the store keeps it. The secret that the
// client holds is never stored: only its SHA-256 hash.
type Session struct {
	// ID is the public, opaque session id shown in API bodies. It is a
	// different random value from the secret.
	ID string
	// Hash is SHA-256 of the 32-byte secret in the session cookie; it is the
	// store's primary key.
	Hash []byte
	// UserID is the owner.
	UserID string
	// CreatedAt is the login time.
	CreatedAt time.Time
	// LastSeenAt is the last recorded use (coalesced: see Manager).
	LastSeenAt time.Time
	// IdleExpiresAt is LastSeenAt plus the idle timeout, capped at ExpiresAt.
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute expiry: CreatedAt plus the absolute timeout.
	ExpiresAt time.Time
	// UserAgent and IP describe the device, for the device list. Both are
	// sanitised (no control characters) and bounded in length before storage.
	UserAgent string
	IP        string
}

// Store is what the session package needs from a storage backend.
//
// A session is "live" while now < IdleExpiresAt and now < ExpiresAt, where now
// is the backend's clock. Lookups never return a session that is not live
// (they answer store.ErrNotFound); backends purge dead sessions eventually.
// Deletes are idempotent. Listing by user goes through an index on the user
// id, never a scan of all sessions. Returned sessions are copies.
type Store interface {
	// CreateSession inserts s. A duplicate Hash or ID is store.ErrConflict.
	CreateSession(ctx context.Context, s *Session) error
	// SessionByHash returns the live session whose secret hashes to hash.
	SessionByHash(ctx context.Context, hash []byte) (*Session, error)
	// TouchSession records a use: it sets LastSeenAt and IdleExpiresAt of a
	// live session. A missing or dead session is store.ErrNotFound.
	TouchSession(ctx context.Context, hash []byte, lastSeen, idleExpires time.Time) error
	// DeleteSession deletes the session with that hash; deleting a missing
	// session is not an error.
	DeleteSession(ctx context.Context, hash []byte) error
	// SessionsByUser returns the user's live sessions, newest first.
	SessionsByUser(ctx context.Context, userID string) ([]*Session, error)
	// DeleteUserSession deletes the user's session with public id id and
	// returns it. A session of another user, or none, is store.ErrNotFound
	// and deletes nothing.
	DeleteUserSession(ctx context.Context, userID, id string) (*Session, error)
	// DeleteUserSessions deletes every session of the user except the one
	// whose hash is keep (nil keeps none) and returns the deleted sessions.
	DeleteUserSessions(ctx context.Context, userID string, keep []byte) ([]*Session, error)
}
