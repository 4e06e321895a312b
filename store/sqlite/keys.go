package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-auth/gatehouse/keys"
)

var _ keys.Store = (*DB)(nil)

const (
	keyColumns = `kid, alg, sealed, public_key, created_at, signs_from, retired_at, remove_at, removed`

	createKeySQL = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	keysSQL      = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at, kid`
	// Removed is sticky: a writer that does not know of a removal cannot
	// undo it.
	updateKeySQL = `UPDATE signing_keys SET signs_from = ?1, retired_at = ?2, remove_at = ?3,
		removed = (removed OR ?4) WHERE kid = ?5`
)

// CreateSigningKey saves r; a taken kid is store.ErrConflict.
func (db *DB) CreateSigningKey(ctx context.Context, r *keys.Record) error {
	ts, err := times(r.CreatedAt, r.SignsFrom, r.RetiredAt, r.RemoveAt)
	if err != nil {
		return fmt.Errorf("sqlite: create signing key: %w", err)
	}
	_, err = db.w.ExecContext(ctx, createKeySQL, r.KID, r.Alg, blob(r.Sealed), blob(r.PublicKey),
		ts[0], ts[1], ts[2], ts[3], r.Removed)
	if err != nil {
		return insertErr("create signing key", err)
	}
	return nil
}

// SigningKeys returns every record, oldest (CreatedAt, then KID) first.
func (db *DB) SigningKeys(ctx context.Context) ([]*keys.Record, error) {
	rows, err := db.r.QueryContext(ctx, keysSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	defer rows.Close()
	recs := []*keys.Record{}
	for rows.Next() {
		var (
			r                                keys.Record
			created, signs, retired, removes sql.NullInt64
		)
		if err := rows.Scan(&r.KID, &r.Alg, &r.Sealed, &r.PublicKey,
			&created, &signs, &retired, &removes, &r.Removed); err != nil {
			return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
		}
		r.CreatedAt, r.SignsFrom = fromNanos(created), fromNanos(signs)
		r.RetiredAt, r.RemoveAt = fromNanos(retired), fromNanos(removes)
		recs = append(recs, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	return recs, nil
}

// UpdateSigningKey replaces the lifecycle of the record kid; Removed stays
// true once set. A missing record is store.ErrNotFound.
func (db *DB) UpdateSigningKey(ctx context.Context, kid string, l keys.Lifecycle) error {
	ts, err := times(l.SignsFrom, l.RetiredAt, l.RemoveAt)
	if err != nil {
		return fmt.Errorf("sqlite: update signing key: %w", err)
	}
	res, err := db.w.ExecContext(ctx, updateKeySQL, ts[0], ts[1], ts[2], l.Removed, kid)
	return affected("update signing key", res, err)
}
