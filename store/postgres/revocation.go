package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/revocation"
)

var _ revocation.Store = (*Revocations)(nil)

// Revocations is the revocation.Store of a DB: denylisted jtis, revoked
// sids and users' revoke-all times, one table each. It is a view of its DB
// rather than methods of DB itself because DB.Purge already purges
// sessions. Get it with DB.Revocations; it is safe for concurrent use and
// needs no closing of its own.
type Revocations struct {
	db *DB
}

// Revocations returns the revocation.Store of db.
func (db *DB) Revocations() *Revocations { return &Revocations{db: db} }

// Upserts merge an existing entry: GREATEST keeps the later of the stored
// and the written time, and ignores NULL (the zero time), so neither time
// ever moves backwards. Each is one statement: two writers of one entry
// queue on its row.
const (
	denyTokenSQL = `INSERT INTO revoked_tokens AS r (jti, until) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET until = GREATEST(r.until, excluded.until)`
	revokeSIDSQL = `INSERT INTO revoked_sids AS r (sid, until) VALUES ($1, $2)
		ON CONFLICT (sid) DO UPDATE SET until = GREATEST(r.until, excluded.until)`
	revokeUserSQL = `INSERT INTO revoked_users AS r (user_id, revoked_before, until) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET revoked_before = GREATEST(r.revoked_before, excluded.revoked_before),
		until = GREATEST(r.until, excluded.until)`
	// One statement: the three deletes are one atomic step.
	purgeRevocationsSQL = `WITH
		t AS (DELETE FROM revoked_tokens WHERE until IS NULL OR until <= $1 RETURNING 1),
		s AS (DELETE FROM revoked_sids WHERE until IS NULL OR until <= $1 RETURNING 1),
		u AS (DELETE FROM revoked_users WHERE until IS NULL OR until <= $1 RETURNING 1)
		SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM s) + (SELECT count(*) FROM u)`
)

// loadRevocationsSQL is one statement, so that Load reads one snapshot of
// the three tables.
var loadRevocationsSQL = fmt.Sprintf(`SELECT %d, jti, NULL::bigint, until FROM revoked_tokens WHERE until > $1
		UNION ALL SELECT %d, sid, NULL::bigint, until FROM revoked_sids WHERE until > $1
		UNION ALL SELECT %d, user_id, revoked_before, until FROM revoked_users WHERE until > $1`,
	revocation.KindToken, revocation.KindSID, revocation.KindUser)

// DenyToken records the jti until `until`, or later if it already is.
func (s *Revocations) DenyToken(ctx context.Context, jti string, until time.Time) error {
	return s.put(ctx, "deny token", denyTokenSQL, jti, until)
}

// RevokeSID records the sid until `until`, or later if it already is.
func (s *Revocations) RevokeSID(ctx context.Context, sid string, until time.Time) error {
	return s.put(ctx, "revoke sid", revokeSIDSQL, sid, until)
}

// RevokeUser records the user's revoke-all time until `until`; the stored
// times only move forward.
func (s *Revocations) RevokeUser(ctx context.Context, userID string, before, until time.Time) error {
	return s.put(ctx, "revoke user", revokeUserSQL, userID, before, until)
}

// put runs the upsert query with id and the times.
func (s *Revocations) put(ctx context.Context, what, query, id string, ts ...time.Time) error {
	args, err := times(ts...)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if _, err := s.db.pool.Exec(ctx, query, append([]any{id}, args...)...); err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nil
}

// scanEntry reads one row of loadRevocationsSQL.
func scanEntry(row scanner) (revocation.Entry, error) {
	var (
		e             revocation.Entry
		kind          int32
		before, until *int64
	)
	if err := row.Scan(&kind, &e.ID, &before, &until); err != nil {
		return e, err
	}
	e.Kind = revocation.Kind(kind)
	e.Before, e.Until = fromNanos(before), fromNanos(until)
	return e, nil
}

// Load returns the entries live by the DB's clock.
func (s *Revocations) Load(ctx context.Context) ([]revocation.Entry, error) {
	now, err := s.db.now()
	if err != nil {
		return nil, fmt.Errorf("postgres: load revocations: %w", err)
	}
	rows, err := s.db.pool.Query(ctx, loadRevocationsSQL, now)
	if err != nil {
		return nil, fmt.Errorf("postgres: load revocations: %w", err)
	}
	es, err := collect(rows, scanEntry)
	if err != nil {
		return nil, fmt.Errorf("postgres: load revocations: %w", err)
	}
	return es, nil
}

// Purge deletes, in one statement, the entries no longer live by the DB's
// clock, and returns how many it deleted.
func (s *Revocations) Purge(ctx context.Context) (int, error) {
	now, err := s.db.now()
	if err != nil {
		return 0, fmt.Errorf("postgres: purge revocations: %w", err)
	}
	var n int64
	if err := s.db.pool.QueryRow(ctx, purgeRevocationsSQL, now).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: purge revocations: %w", err)
	}
	return int(n), nil
}
