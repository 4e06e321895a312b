package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ account.Store = (*DB)(nil)

const (
	userColumns = `id, username, password_hash, roles, created_at, updated_at, revoked_before`

	createUserSQL     = `INSERT INTO users (` + userColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`
	userByIDSQL       = `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	userByUsernameSQL = `SELECT ` + userColumns + ` FROM users WHERE username = ?`
	setPasswordSQL    = `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`
	setRolesSQL       = `UPDATE users SET roles = ?, updated_at = ? WHERE id = ?`
	// The revoked-before time only moves forward; NULL (the zero time) is
	// never later than anything.
	setRevokedBeforeSQL = `UPDATE users SET revoked_before =
		CASE WHEN revoked_before IS NULL OR revoked_before < ?1 THEN ?1 ELSE revoked_before END
		WHERE id = ?2`
	// A negative LIMIT is no limit.
	listUsersSQL = `SELECT ` + userColumns + ` FROM users WHERE username > ? ORDER BY username LIMIT ?`
)

// encodeRoles returns roles as stored: a JSON array.
func encodeRoles(roles []string) (string, error) {
	if len(roles) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(roles)
	if err != nil {
		return "", fmt.Errorf("encode roles: %w", err)
	}
	return string(b), nil
}

// decodeRoles is the inverse of encodeRoles; no roles is nil.
func decodeRoles(s string) ([]string, error) {
	if s == "[]" {
		return nil, nil
	}
	var roles []string
	if err := json.Unmarshal([]byte(s), &roles); err != nil {
		return nil, fmt.Errorf("decode roles: %w", err)
	}
	if len(roles) == 0 {
		return nil, nil
	}
	return roles, nil
}

// scanUser reads one row of userColumns.
func scanUser(row interface{ Scan(...any) error }) (*account.User, error) {
	var (
		u                           account.User
		roles                       string
		created, updated, revokedAt sql.NullInt64
	)
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &roles, &created, &updated, &revokedAt); err != nil {
		return nil, err
	}
	var err error
	if u.Roles, err = decodeRoles(roles); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt, u.RevokedBefore = fromNanos(created), fromNanos(updated), fromNanos(revokedAt)
	return &u, nil
}

// queryUser returns the one user that row holds.
func queryUser(what string, row *sql.Row) (*account.User, error) {
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return u, nil
}

// CreateUser inserts u.
func (db *DB) CreateUser(ctx context.Context, u *account.User) error {
	roles, err := encodeRoles(u.Roles)
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	ts, err := times(u.CreatedAt, u.UpdatedAt, u.RevokedBefore)
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	_, err = db.w.ExecContext(ctx, createUserSQL, u.ID, u.Username, u.PasswordHash, roles, ts[0], ts[1], ts[2])
	if err != nil {
		return insertErr("create user", err)
	}
	return nil
}

// UserByID returns the user with that id.
func (db *DB) UserByID(ctx context.Context, id string) (*account.User, error) {
	ctx, err := lookupContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load user: %w", err)
	}
	var vals [7]driver.Value
	found, err := db.fast.queryRow(ctx, userByIDSQL, []driver.NamedValue{{Ordinal: 1, Value: id}}, vals[:])
	if err != nil {
		return nil, fmt.Errorf("sqlite: load user: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("sqlite: load user: %w", store.ErrNotFound)
	}
	d := decoder{vals: vals[:]}
	u := &account.User{ID: d.text(), Username: d.text(), PasswordHash: d.text()}
	roles := d.text()
	u.CreatedAt, u.UpdatedAt, u.RevokedBefore = d.time(), d.time(), d.time()
	if d.err == nil {
		u.Roles, d.err = decodeRoles(roles)
	}
	if d.err != nil {
		return nil, fmt.Errorf("sqlite: load user: %w", d.err)
	}
	return u, nil
}

// UserByUsername returns the user with that normalised username.
func (db *DB) UserByUsername(ctx context.Context, username string) (*account.User, error) {
	ctx, err := lookupContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load user by name: %w", err)
	}
	return queryUser("load user by name", db.r.QueryRowContext(ctx, userByUsernameSQL, username))
}

// SetPasswordHash replaces the user's password hash and sets UpdatedAt.
func (db *DB) SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	n, err := nanos(at)
	if err != nil {
		return fmt.Errorf("sqlite: set password hash: %w", err)
	}
	res, err := db.w.ExecContext(ctx, setPasswordSQL, hash, n, id)
	return affected("set password hash", res, err)
}

// SetRoles replaces the user's roles and sets UpdatedAt.
func (db *DB) SetRoles(ctx context.Context, id string, roles []string, at time.Time) error {
	enc, err := encodeRoles(roles)
	if err != nil {
		return fmt.Errorf("sqlite: set roles: %w", err)
	}
	n, err := nanos(at)
	if err != nil {
		return fmt.Errorf("sqlite: set roles: %w", err)
	}
	res, err := db.w.ExecContext(ctx, setRolesSQL, enc, n, id)
	return affected("set roles", res, err)
}

// SetRevokedBefore moves the user's revoked-before time forward to t; an
// earlier t is ignored.
func (db *DB) SetRevokedBefore(ctx context.Context, id string, t time.Time) error {
	n, err := nanos(t)
	if err != nil {
		return fmt.Errorf("sqlite: set revoked-before: %w", err)
	}
	res, err := db.w.ExecContext(ctx, setRevokedBeforeSQL, n, id)
	return affected("set revoked-before", res, err)
}

// ListUsers returns up to limit users (all when limit <= 0) ordered by
// username, starting after the username after.
func (db *DB) ListUsers(ctx context.Context, after string, limit int) ([]*account.User, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.r.QueryContext(ctx, listUsersSQL, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	users := []*account.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return users, nil
}
