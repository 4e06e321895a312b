package postgres

import (
	"context"
	"fmt"

	"github.com/gatehouse-auth/gatehouse/keys"
)

var _ keys.Store = (*DB)(nil)

const (
	keyColumns = `kid, alg, sealed, public_key, created_at, signs_from, retired_at, remove_at, removed`

	createKeySQL = `INSERT INTO signing_keys (` + keyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	keysSQL      = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at NULLS FIRST, kid`
	// Removed is sticky: a writer that does not know of a removal cannot
	// undo it.
	updateKeySQL = `UPDATE signing_keys SET signs_from = $1, retired_at = $2, remove_at = $3,
		removed = (removed OR $4) WHERE kid = $5`
)

// CreateSigningKey saves r; a taken kid is store.ErrConflict.
func (db *DB) CreateSigningKey(ctx context.Context, r *keys.Record) error {
	ts, err := times(r.CreatedAt, r.SignsFrom, r.RetiredAt, r.RemoveAt)
	if err != nil {
		return fmt.Errorf("postgres: create signing key: %w", err)
	}
	_, err = db.pool.Exec(ctx, createKeySQL, r.KID, r.Alg, blob(r.Sealed), blob(r.PublicKey),
		ts[0], ts[1], ts[2], ts[3], r.Removed)
	if err != nil {
		return insertErr("create signing key", err)
	}
	return nil
}

// scanKey reads one row of keyColumns.
func scanKey(row scanner) (*keys.Record, error) {
	var (
		r                                keys.Record
		created, signs, retired, removes *int64
	)
	if err := row.Scan(&r.KID, &r.Alg, &r.Sealed, &r.PublicKey,
		&created, &signs, &retired, &removes, &r.Removed); err != nil {
		return nil, err
	}
	r.CreatedAt, r.SignsFrom = fromNanos(created), fromNanos(signs)
	r.RetiredAt, r.RemoveAt = fromNanos(retired), fromNanos(removes)
	return &r, nil
}

// SigningKeys returns every record, oldest (CreatedAt, then KID) first.
func (db *DB) SigningKeys(ctx context.Context) ([]*keys.Record, error) {
	rows, err := db.pool.Query(ctx, keysSQL)
	if err != nil {
		return nil, fmt.Errorf("postgres: list signing keys: %w", err)
	}
	recs, err := collect(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("postgres: list signing keys: %w", err)
	}
	return recs, nil
}

// UpdateSigningKey replaces the lifecycle of the record kid; Removed stays
// true once set. A missing record is store.ErrNotFound.
func (db *DB) UpdateSigningKey(ctx context.Context, kid string, l keys.Lifecycle) error {
	if !storable(kid) {
		return notFound("update signing key")
	}
	ts, err := times(l.SignsFrom, l.RetiredAt, l.RemoveAt)
	if err != nil {
		return fmt.Errorf("postgres: update signing key: %w", err)
	}
	tag, err := db.pool.Exec(ctx, updateKeySQL, ts[0], ts[1], ts[2], l.Removed, kid)
	return affected("update signing key", tag, err)
}
