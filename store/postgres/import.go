package postgres

// What gatehouse migrate needs beyond the domain interfaces: writing a
// refresh family with its whole rotation history, and reading back the
// records that no interface returns (a family's tokens, an audit event by
// id, the number of rows).

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/refresh"
)

const (
	familyTokensSQL = `SELECT ` + tokenColumns + ` FROM refresh_tokens WHERE family_id = $1 ORDER BY generation, hash`
	eventByIDSQL    = `SELECT ` + eventColumns + ` FROM audit_events WHERE id = $1`
	countsSQL       = `SELECT
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM sessions),
		(SELECT count(*) FROM refresh_families),
		(SELECT count(*) FROM refresh_tokens),
		(SELECT count(*) FROM signing_keys),
		(SELECT count(*) FROM revoked_tokens) + (SELECT count(*) FROM revoked_sids) + (SELECT count(*) FROM revoked_users),
		(SELECT count(*) FROM audit_events)`
)

// ImportFamily inserts a refresh family and every one of its tokens, each
// field as given (rotation times and children included), in one
// transaction. It is for copying a family from another store: CreateFamily
// records a login, with one fresh token, and cannot express a family whose
// tokens have been rotated. Every token must be of f. A taken family id or
// token hash is store.ErrConflict and inserts nothing.
func (s *Refresh) ImportFamily(ctx context.Context, f *refresh.Family, tokens []*refresh.Token) error {
	if f.ID == "" || f.UserID == "" {
		return errors.New("postgres: import refresh family: incomplete family")
	}
	ts, err := times(f.CreatedAt, f.LastUsedAt, f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt)
	if err != nil {
		return fmt.Errorf("postgres: import refresh family: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(createFamilySQL, f.ID, f.UserID, ts[0], ts[1], ts[2], ts[3], ts[4], f.Delivery, f.UserAgent, f.IP)
	for _, t := range tokens {
		if len(t.Hash) == 0 || t.FamilyID != f.ID {
			return fmt.Errorf("postgres: import refresh family %q: a token without hash or of another family", f.ID)
		}
		if err := queueToken(b, t); err != nil {
			return fmt.Errorf("postgres: import refresh family: token: %w", err)
		}
	}
	// A batch outside a transaction runs in one implicit transaction: the
	// first error rolls every insert back.
	if err := s.db.pool.SendBatch(ctx, b).Close(); err != nil {
		return insertErr("import refresh family", err)
	}
	return nil
}

// FamilyTokens returns every token of the family with that id, current and
// rotated, by generation then hash; none (and no error) for an unknown
// family.
func (s *Refresh) FamilyTokens(ctx context.Context, familyID string) ([]*refresh.Token, error) {
	if !storable(familyID) {
		return []*refresh.Token{}, nil
	}
	rows, err := s.db.pool.Query(ctx, familyTokensSQL, familyID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list refresh tokens: %w", err)
	}
	toks, err := collect(rows, func(row scanner) (*refresh.Token, error) {
		var (
			t                         refresh.Token
			tCreated, tIdle, tRotated *int64
		)
		if err := row.Scan(&t.Hash, &t.FamilyID, &t.Generation, &t.ParentHash, &tCreated, &tIdle, &tRotated,
			&t.Children); err != nil {
			return nil, err
		}
		t.CreatedAt, t.IdleExpiresAt, t.RotatedAt = fromNanos(tCreated), fromNanos(tIdle), fromNanos(tRotated)
		return &t, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list refresh tokens: %w", err)
	}
	return toks, nil
}

// EventByID returns the audit event with that id, or store.ErrNotFound.
func (db *DB) EventByID(ctx context.Context, id string) (*audit.Event, error) {
	if !storable(id) {
		return nil, notFound("load audit event")
	}
	e, err := scanEvent(db.pool.QueryRow(ctx, eventByIDSQL, id))
	if err != nil {
		return nil, rowErr("load audit event", err)
	}
	return e, nil
}

// Counts is how many rows each table of a DB holds.
type Counts struct {
	Users           int
	Sessions        int
	RefreshFamilies int
	RefreshTokens   int
	SigningKeys     int
	Revocations     int // the three kinds together
	AuditEvents     int
}

// Counts returns how many rows each table holds, dead records (expired
// sessions, families and revocation entries not purged yet) included.
func (db *DB) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := db.pool.QueryRow(ctx, countsSQL).Scan(&c.Users, &c.Sessions, &c.RefreshFamilies, &c.RefreshTokens,
		&c.SigningKeys, &c.Revocations, &c.AuditEvents)
	if err != nil {
		return Counts{}, fmt.Errorf("postgres: count rows: %w", err)
	}
	return c, nil
}
