package sqlite

import (
	"context"
	"database/sql"
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

// laterOf is the later of the stored time col and the written one, for an
// upsert: NULL, the zero time, is earlier than any other.
func laterOf(col string) string {
	return `CASE WHEN ` + col + ` IS NULL OR excluded.` + col + ` > ` + col +
		` THEN excluded.` + col + ` ELSE ` + col + ` END`
}

var (
	denyTokenSQL = `INSERT INTO revoked_tokens (jti, until) VALUES (?, ?)
		ON CONFLICT (jti) DO UPDATE SET until = ` + laterOf("until")
	revokeSIDSQL = `INSERT INTO revoked_sids (sid, until) VALUES (?, ?)
		ON CONFLICT (sid) DO UPDATE SET until = ` + laterOf("until")
	revokeUserSQL = `INSERT INTO revoked_users (user_id, revoked_before, until) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET revoked_before = ` + laterOf("revoked_before") +
		`, until = ` + laterOf("until")
	// One statement, so that Load reads one snapshot of the three tables.
	loadRevocationsSQL = fmt.Sprintf(`SELECT %d, jti, NULL, until FROM revoked_tokens WHERE until > ?1
		UNION ALL SELECT %d, sid, NULL, until FROM revoked_sids WHERE until > ?1
		UNION ALL SELECT %d, user_id, revoked_before, until FROM revoked_users WHERE until > ?1`,
		revocation.KindToken, revocation.KindSID, revocation.KindUser)
	purgeRevocationsSQL = [...]string{
		`DELETE FROM revoked_tokens WHERE until IS NULL OR until <= ?1`,
		`DELETE FROM revoked_sids WHERE until IS NULL OR until <= ?1`,
		`DELETE FROM revoked_users WHERE until IS NULL OR until <= ?1`,
	}
)

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
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if _, err := s.db.w.ExecContext(ctx, query, append([]any{id}, args...)...); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return nil
}

// Load returns the entries live by the DB's clock.
func (s *Revocations) Load(ctx context.Context) ([]revocation.Entry, error) {
	now, err := s.db.now()
	if err != nil {
		return nil, fmt.Errorf("sqlite: load revocations: %w", err)
	}
	rows, err := s.db.r.QueryContext(ctx, loadRevocationsSQL, now)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load revocations: %w", err)
	}
	defer rows.Close()
	es := []revocation.Entry{}
	for rows.Next() {
		var (
			e             revocation.Entry
			before, until sql.NullInt64
		)
		if err := rows.Scan(&e.Kind, &e.ID, &before, &until); err != nil {
			return nil, fmt.Errorf("sqlite: load revocations: %w", err)
		}
		e.Before, e.Until = fromNanos(before), fromNanos(until)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: load revocations: %w", err)
	}
	return es, nil
}

// Purge deletes, in one transaction, the entries no longer live by the DB's
// clock, and returns how many it deleted.
func (s *Revocations) Purge(ctx context.Context) (_ int, err error) {
	now, err := s.db.now()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge revocations: %w", err)
	}
	tx, err := s.db.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge revocations: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	total := 0
	for _, q := range purgeRevocationsSQL {
		res, err := tx.ExecContext(ctx, q, now)
		if err != nil {
			return 0, fmt.Errorf("sqlite: purge revocations: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("sqlite: purge revocations: %w", err)
		}
		total += int(n)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: purge revocations: %w", err)
	}
	return total, nil
}
