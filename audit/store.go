package audit

import (
	"context"
	"time"
)

// Event is one audit record. The schema is the same in the log and in the
// store. No field ever holds a password, secret, token or cookie.
type Event struct {
	// ID is an opaque, unique id.
	ID string `json:"id"`
	// Time is when it happened (UTC).
	Time time.Time `json:"time"`
	// Type names what happened, e.g. "login.success" (see the Type constants).
	Type string `json:"type"`
	// Severity is "info", "warning" or "high".
	Severity string `json:"severity"`
	// UserID is the user concerned, when known.
	UserID string `json:"user_id,omitempty"`
	// Username is the (normalised) username concerned, when known.
	Username string `json:"username,omitempty"`
	// SessionID is the public session (or refresh family) id, when any.
	SessionID string `json:"session_id,omitempty"`
	// ActorID is who did it when not the user (an admin, "admin-key", "system").
	ActorID string `json:"actor_id,omitempty"`
	// IP is the client address.
	IP string `json:"ip,omitempty"`
	// UserAgent is the client's User-Agent, sanitised and bounded.
	UserAgent string `json:"user_agent,omitempty"`
	// Reason says why, in a short machine-readable word ("bad_credentials").
	Reason string `json:"reason,omitempty"`
}

// Filter selects events for Store.Events.
type Filter struct {
	// UserID, when set, keeps only that user's events.
	UserID string
	// Type, when set, keeps only events of that type.
	Type string
	// Limit is the maximum number of events (newest first).
	Limit int
}

// Store is what the audit package needs from a storage backend.
type Store interface {
	// AppendEvent stores e. IDs are unique; a duplicate is store.ErrConflict.
	AppendEvent(ctx context.Context, e *Event) error
	// Events returns the events that match f, newest first (by Time, then
	// by insertion order).
	Events(ctx context.Context, f Filter) ([]*Event, error)
}
