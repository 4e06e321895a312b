package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse/session"
)

var _ session.Store = (*DB)(nil)

const (
	sessionColumns = `hash, id, user_id, created_at, last_seen_at, idle_expires_at, expires_at, user_agent, ip`
	// isLive is true for a session live at $1 (NULL, the zero time, never
	// is).
	isLive = `idle_expires_at > $1 AND expires_at > $1`

	createSessionSQL = `INSERT INTO sessions (` + sessionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	sessionByHashSQL = `SELECT ` + sessionColumns + ` FROM sessions WHERE hash = $2 AND ` + isLive
	touchSessionSQL  = `UPDATE sessions SET last_seen_at = $3, idle_expires_at = $4 WHERE hash = $2 AND ` + isLive
	deleteSessionSQL = `DELETE FROM sessions WHERE hash = $1`
	// SessionsByUser goes through sessions_user_created, newest first.
	sessionsByUserSQL = `SELECT ` + sessionColumns + ` FROM sessions WHERE user_id = $2 AND ` + isLive +
		` ORDER BY created_at DESC NULLS LAST, id`
	deleteUserSessionSQL = `DELETE FROM sessions WHERE id = $3 AND user_id = $2 AND ` + isLive +
		` RETURNING ` + sessionColumns
	deleteUserSessionsSQL     = `DELETE FROM sessions WHERE user_id = $1 RETURNING ` + sessionColumns
	deleteUserSessionsKeepSQL = `DELETE FROM sessions WHERE user_id = $1 AND hash <> $2 RETURNING ` + sessionColumns
	purgeSessionsSQL          = `DELETE FROM sessions WHERE idle_expires_at IS NULL OR expires_at IS NULL
		OR idle_expires_at <= $1 OR expires_at <= $1`
)

// scanSession reads one row of sessionColumns.
func scanSession(row scanner) (*session.Session, error) {
	var (
		s                              session.Session
		created, seen, idle, expiresAt *int64
	)
	if err := row.Scan(&s.Hash, &s.ID, &s.UserID, &created, &seen, &idle, &expiresAt, &s.UserAgent, &s.IP); err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt = fromNanos(created), fromNanos(seen)
	s.IdleExpiresAt, s.ExpiresAt = fromNanos(idle), fromNanos(expiresAt)
	return &s, nil
}

// newestSessionFirst orders sessions by CreatedAt, newest first, then by id.
func newestSessionFirst(a, b *session.Session) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// CreateSession inserts s.
func (db *DB) CreateSession(ctx context.Context, s *session.Session) error {
	ts, err := times(s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	_, err = db.pool.Exec(ctx, createSessionSQL,
		blob(s.Hash), s.ID, s.UserID, ts[0], ts[1], ts[2], ts[3], s.UserAgent, s.IP)
	if err != nil {
		return insertErr("create session", err)
	}
	return nil
}

// SessionByHash returns the live session whose secret hashes to hash.
func (db *DB) SessionByHash(ctx context.Context, hash []byte) (*session.Session, error) {
	now, err := db.now()
	if err != nil {
		return nil, fmt.Errorf("postgres: load session: %w", err)
	}
	s, err := scanSession(db.pool.QueryRow(ctx, sessionByHashSQL, now, blob(hash)))
	if err != nil {
		return nil, rowErr("load session", err)
	}
	return s, nil
}

// TouchSession sets LastSeenAt and IdleExpiresAt of a live session.
func (db *DB) TouchSession(ctx context.Context, hash []byte, lastSeen, idleExpires time.Time) error {
	now, err := db.now()
	if err != nil {
		return fmt.Errorf("postgres: touch session: %w", err)
	}
	ts, err := times(lastSeen, idleExpires)
	if err != nil {
		return fmt.Errorf("postgres: touch session: %w", err)
	}
	tag, err := db.pool.Exec(ctx, touchSessionSQL, now, blob(hash), ts[0], ts[1])
	return affected("touch session", tag, err)
}

// DeleteSession deletes the session with that hash, if any.
func (db *DB) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := db.pool.Exec(ctx, deleteSessionSQL, blob(hash)); err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return nil
}

// SessionsByUser returns the user's live sessions, newest first.
func (db *DB) SessionsByUser(ctx context.Context, userID string) ([]*session.Session, error) {
	if !storable(userID) {
		return []*session.Session{}, nil
	}
	now, err := db.now()
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", err)
	}
	rows, err := db.pool.Query(ctx, sessionsByUserSQL, now, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", err)
	}
	ss, err := collect(rows, scanSession)
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", err)
	}
	return ss, nil
}

// DeleteUserSession deletes the user's live session with public id id and
// returns it.
func (db *DB) DeleteUserSession(ctx context.Context, userID, id string) (*session.Session, error) {
	if !storable(userID, id) {
		return nil, notFound("delete user session")
	}
	now, err := db.now()
	if err != nil {
		return nil, fmt.Errorf("postgres: delete user session: %w", err)
	}
	s, err := scanSession(db.pool.QueryRow(ctx, deleteUserSessionSQL, now, userID, id))
	if err != nil {
		return nil, rowErr("delete user session", err)
	}
	return s, nil
}

// DeleteUserSessions deletes every session of the user but the one whose hash
// is keep, and returns the live ones among them, newest first.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string, keep []byte) ([]*session.Session, error) {
	if !storable(userID) {
		return []*session.Session{}, nil
	}
	q, args := deleteUserSessionsSQL, []any{userID}
	if len(keep) > 0 {
		q, args = deleteUserSessionsKeepSQL, []any{userID, keep}
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: delete user sessions: %w", err)
	}
	deleted, err := collect(rows, scanSession)
	if err != nil {
		return nil, fmt.Errorf("postgres: delete user sessions: %w", err)
	}
	now := db.clock.Now()
	live := deleted[:0]
	for _, s := range deleted {
		if now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt) {
			live = append(live, s)
		}
	}
	slices.SortFunc(live, newestSessionFirst)
	return live, nil
}

// Purge deletes the dead sessions and returns how many it deleted. Lookups
// never return dead sessions; Purge only reclaims their space.
func (db *DB) Purge(ctx context.Context) (int, error) {
	now, err := db.now()
	if err != nil {
		return 0, fmt.Errorf("postgres: purge sessions: %w", err)
	}
	tag, err := db.pool.Exec(ctx, purgeSessionsSQL, now)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
