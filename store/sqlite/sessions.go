package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ session.Store = (*DB)(nil)

const (
	// sessionFields are the columns of a session but its hash, which
	// SessionByHash already knows.
	sessionFields  = `id, user_id, created_at, last_seen_at, idle_expires_at, expires_at, user_agent, ip`
	sessionColumns = `hash, ` + sessionFields
	// isLive is true for a session live at ?1 (NULL, the zero time, never is).
	isLive = `idle_expires_at > ?1 AND expires_at > ?1`

	createSessionSQL = `INSERT INTO sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sessionByHashSQL = `SELECT ` + sessionFields + ` FROM sessions WHERE hash = ?2 AND ` + isLive
	touchSessionSQL  = `UPDATE sessions SET last_seen_at = ?3, idle_expires_at = ?4 WHERE hash = ?2 AND ` + isLive
	deleteSessionSQL = `DELETE FROM sessions WHERE hash = ?`
	// SessionsByUser goes through sessions_user_created, newest first.
	sessionsByUserSQL = `SELECT ` + sessionColumns + ` FROM sessions WHERE user_id = ?2 AND ` + isLive +
		` ORDER BY created_at DESC, id`
	deleteUserSessionSQL = `DELETE FROM sessions WHERE id = ?3 AND user_id = ?2 AND ` + isLive +
		` RETURNING ` + sessionColumns
	deleteUserSessionsSQL     = `DELETE FROM sessions WHERE user_id = ? RETURNING ` + sessionColumns
	deleteUserSessionsKeepSQL = `DELETE FROM sessions WHERE user_id = ? AND hash <> ? RETURNING ` + sessionColumns
	purgeSessionsSQL          = `DELETE FROM sessions WHERE idle_expires_at IS NULL OR expires_at IS NULL
		OR idle_expires_at <= ?1 OR expires_at <= ?1`
)

// scanSession reads one row of sessionColumns.
func scanSession(row interface{ Scan(...any) error }) (*session.Session, error) {
	var (
		s                              session.Session
		created, seen, idle, expiresAt sql.NullInt64
	)
	if err := row.Scan(&s.Hash, &s.ID, &s.UserID, &created, &seen, &idle, &expiresAt, &s.UserAgent, &s.IP); err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt = fromNanos(created), fromNanos(seen)
	s.IdleExpiresAt, s.ExpiresAt = fromNanos(idle), fromNanos(expiresAt)
	return &s, nil
}

// scanSessions reads every row of rows and closes it.
func scanSessions(rows *sql.Rows) ([]*session.Session, error) {
	defer rows.Close()
	ss := []*session.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, rows.Err()
}

// blob returns b, or an empty slice for nil: the driver binds a nil slice as
// NULL, which no hash equals.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateSession inserts s.
func (db *DB) CreateSession(ctx context.Context, s *session.Session) error {
	ts, err := times(s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	_, err = db.w.ExecContext(ctx, createSessionSQL,
		blob(s.Hash), s.ID, s.UserID, ts[0], ts[1], ts[2], ts[3], s.UserAgent, s.IP)
	if err != nil {
		return insertErr("create session", err)
	}
	return nil
}

// SessionByHash returns the live session whose secret hashes to hash.
func (db *DB) SessionByHash(ctx context.Context, hash []byte) (*session.Session, error) {
	ctx, err := lookupContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load session: %w", err)
	}
	now, err := db.now()
	if err != nil {
		return nil, fmt.Errorf("sqlite: load session: %w", err)
	}
	var vals [8]driver.Value
	found, err := db.fast.queryRow(ctx, sessionByHashSQL,
		[]driver.NamedValue{{Ordinal: 1, Value: now}, {Ordinal: 2, Value: blob(hash)}}, vals[:])
	if err != nil {
		return nil, fmt.Errorf("sqlite: load session: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("sqlite: load session: %w", store.ErrNotFound)
	}
	d := decoder{vals: vals[:]}
	s := &session.Session{
		ID: d.text(), Hash: bytes.Clone(hash), UserID: d.text(),
		CreatedAt: d.time(), LastSeenAt: d.time(), IdleExpiresAt: d.time(), ExpiresAt: d.time(),
		UserAgent: d.text(), IP: d.text(),
	}
	if d.err != nil {
		return nil, fmt.Errorf("sqlite: load session: %w", d.err)
	}
	return s, nil
}

// TouchSession sets LastSeenAt and IdleExpiresAt of a live session.
func (db *DB) TouchSession(ctx context.Context, hash []byte, lastSeen, idleExpires time.Time) error {
	now, err := db.now()
	if err != nil {
		return fmt.Errorf("sqlite: touch session: %w", err)
	}
	ts, err := times(lastSeen, idleExpires)
	if err != nil {
		return fmt.Errorf("sqlite: touch session: %w", err)
	}
	res, err := db.touchSession.ExecContext(ctx, now, blob(hash), ts[0], ts[1])
	return affected("touch session", res, err)
}

// DeleteSession deletes the session with that hash, if any.
func (db *DB) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := db.w.ExecContext(ctx, deleteSessionSQL, blob(hash)); err != nil {
		return fmt.Errorf("sqlite: delete session: %w", err)
	}
	return nil
}

// SessionsByUser returns the user's live sessions, newest first.
func (db *DB) SessionsByUser(ctx context.Context, userID string) ([]*session.Session, error) {
	now, err := db.now()
	if err != nil {
		return nil, fmt.Errorf("sqlite: list sessions: %w", err)
	}
	rows, err := db.r.QueryContext(ctx, sessionsByUserSQL, now, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list sessions: %w", err)
	}
	ss, err := scanSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list sessions: %w", err)
	}
	return ss, nil
}

// DeleteUserSession deletes the user's live session with public id id and
// returns it.
func (db *DB) DeleteUserSession(ctx context.Context, userID, id string) (*session.Session, error) {
	now, err := db.now()
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete user session: %w", err)
	}
	// With RETURNING, SQLite makes every change at the first step: the
	// delete is done once the row is read.
	s, err := scanSession(db.w.QueryRowContext(ctx, deleteUserSessionSQL, now, userID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: delete user session: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete user session: %w", err)
	}
	return s, nil
}

// DeleteUserSessions deletes every session of the user but the one whose hash
// is keep, and returns the live ones among them, newest first.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string, keep []byte) ([]*session.Session, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if len(keep) == 0 {
		rows, err = db.w.QueryContext(ctx, deleteUserSessionsSQL, userID)
	} else {
		rows, err = db.w.QueryContext(ctx, deleteUserSessionsKeepSQL, userID, keep)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete user sessions: %w", err)
	}
	deleted, err := scanSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete user sessions: %w", err)
	}
	now := db.clock.Now()
	live := deleted[:0]
	for _, s := range deleted {
		if now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt) {
			live = append(live, s)
		}
	}
	slices.SortFunc(live, func(a, b *session.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return live, nil
}
