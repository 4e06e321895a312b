package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
)

var _ account.Store = (*DB)(nil)

const (
	userColumns = `id, username, password_hash, roles, created_at, updated_at, revoked_before`

	createUserSQL     = `INSERT INTO users (` + userColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	userByIDSQL       = `SELECT ` + userColumns + ` FROM users WHERE id = $1`
	userByUsernameSQL = `SELECT ` + userColumns + ` FROM users WHERE username = $1`
	setPasswordSQL    = `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`
	setRolesSQL       = `UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3`
	// The revoked-before time only moves forward: GREATEST ignores NULL
	// (the zero time).
	setRevokedBeforeSQL = `UPDATE users SET revoked_before = GREATEST(revoked_before, $1) WHERE id = $2`
	// LIMIT NULL is no limit.
	listUsersSQL = `SELECT ` + userColumns + ` FROM users WHERE username > $1 ORDER BY username LIMIT $2`
)

// roles returns rs as stored: never nil, which pgx would send as NULL.
func roles(rs []string) []string {
	if rs == nil {
		return []string{}
	}
	return rs
}

// scanUser reads one row of userColumns.
func scanUser(row scanner) (*account.User, error) {
	var (
		u                           account.User
		created, updated, revokedAt *int64
	)
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Roles, &created, &updated, &revokedAt); err != nil {
		return nil, err
	}
	if len(u.Roles) == 0 {
		u.Roles = nil
	}
	u.CreatedAt, u.UpdatedAt, u.RevokedBefore = fromNanos(created), fromNanos(updated), fromNanos(revokedAt)
	return &u, nil
}

// CreateUser inserts u.
func (db *DB) CreateUser(ctx context.Context, u *account.User) error {
	ts, err := times(u.CreatedAt, u.UpdatedAt, u.RevokedBefore)
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	_, err = db.pool.Exec(ctx, createUserSQL, u.ID, u.Username, u.PasswordHash, roles(u.Roles), ts[0], ts[1], ts[2])
	if err != nil {
		return insertErr("create user", err)
	}
	return nil
}

// UserByID returns the user with that id.
func (db *DB) UserByID(ctx context.Context, id string) (*account.User, error) {
	if !storable(id) {
		return nil, notFound("load user")
	}
	u, err := scanUser(db.pool.QueryRow(ctx, userByIDSQL, id))
	if err != nil {
		return nil, rowErr("load user", err)
	}
	return u, nil
}

// UserByUsername returns the user with that normalised username.
func (db *DB) UserByUsername(ctx context.Context, username string) (*account.User, error) {
	if !storable(username) {
		return nil, notFound("load user by name")
	}
	u, err := scanUser(db.pool.QueryRow(ctx, userByUsernameSQL, username))
	if err != nil {
		return nil, rowErr("load user by name", err)
	}
	return u, nil
}

// SetPasswordHash replaces the user's password hash and sets UpdatedAt.
func (db *DB) SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	if !storable(id) {
		return notFound("set password hash")
	}
	n, err := nanos(at)
	if err != nil {
		return fmt.Errorf("postgres: set password hash: %w", err)
	}
	tag, err := db.pool.Exec(ctx, setPasswordSQL, hash, n, id)
	return affected("set password hash", tag, err)
}

// SetRoles replaces the user's roles and sets UpdatedAt.
func (db *DB) SetRoles(ctx context.Context, id string, rs []string, at time.Time) error {
	if !storable(id) {
		return notFound("set roles")
	}
	n, err := nanos(at)
	if err != nil {
		return fmt.Errorf("postgres: set roles: %w", err)
	}
	tag, err := db.pool.Exec(ctx, setRolesSQL, roles(rs), n, id)
	return affected("set roles", tag, err)
}

// SetRevokedBefore moves the user's revoked-before time forward to t; an
// earlier t is ignored.
func (db *DB) SetRevokedBefore(ctx context.Context, id string, t time.Time) error {
	if !storable(id) {
		return notFound("set revoked-before")
	}
	n, err := nanos(t)
	if err != nil {
		return fmt.Errorf("postgres: set revoked-before: %w", err)
	}
	tag, err := db.pool.Exec(ctx, setRevokedBeforeSQL, n, id)
	return affected("set revoked-before", tag, err)
}

// ListUsers returns up to limit users (all when limit <= 0) ordered by
// username (byte order), starting after the username after, which must be
// valid UTF-8 without NUL.
func (db *DB) ListUsers(ctx context.Context, after string, limit int) ([]*account.User, error) {
	if !storable(after) {
		return nil, errors.New("postgres: list users: the username to start after is not valid UTF-8 text")
	}
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := db.pool.Query(ctx, listUsersSQL, after, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}
