package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ refresh.Store = (*Refresh)(nil)

// Refresh is the refresh.Store of a DB: the refresh families and tokens of
// token mode. It is a view of its DB rather than methods of DB itself
// because DB.Purge already purges sessions. Get it with DB.Refresh; it is
// safe for concurrent use and needs no closing of its own.
type Refresh struct {
	db *DB
}

// Refresh returns the refresh.Store of db.
func (db *DB) Refresh() *Refresh { return &Refresh{db: db} }

const (
	familyColumns = `id, user_id, created_at, last_used_at, idle_expires_at, expires_at, revoked_at,
		delivery, user_agent, ip`
	tokenColumns = `hash, family_id, generation, parent_hash, created_at, idle_expires_at, rotated_at, children`
	// isFamilyLive is true for a family live at ?1 (NULL, the zero time,
	// never is).
	isFamilyLive = `revoked_at IS NULL AND idle_expires_at > ?1 AND expires_at > ?1`
	// isFamilyDead is true for a family past its absolute or idle expiry at
	// ?1, revoked or not.
	isFamilyDead = `(idle_expires_at IS NULL OR expires_at IS NULL OR idle_expires_at <= ?1 OR expires_at <= ?1)`

	createFamilySQL = `INSERT INTO refresh_families (` + familyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	createTokenSQL  = `INSERT INTO refresh_tokens (` + tokenColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	familySQL       = `SELECT ` + familyColumns + ` FROM refresh_families WHERE id = ?`
	familyByHashSQL = `SELECT ` + familyColumns + ` FROM refresh_families
		WHERE id = (SELECT family_id FROM refresh_tokens WHERE hash = ?)`
	// FamiliesByUser goes through refresh_families_user_created, newest
	// first.
	familiesByUserSQL = `SELECT ` + familyColumns + ` FROM refresh_families WHERE user_id = ?2 AND ` + isFamilyLive +
		` ORDER BY created_at DESC, id`
	revokeFamilySQL = `UPDATE refresh_families SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2
		RETURNING ` + familyColumns
	revokeUserFamiliesSQL = `UPDATE refresh_families SET revoked_at = ?1 WHERE user_id = ?2 AND ` + isFamilyLive +
		` RETURNING ` + familyColumns
	purgeRefreshTokensSQL = `DELETE FROM refresh_tokens WHERE family_id IN
		(SELECT id FROM refresh_families WHERE ` + isFamilyDead + `)`
	purgeFamiliesSQL = `DELETE FROM refresh_families WHERE ` + isFamilyDead

	// rotateReadSQL reads, in the rotation's transaction, the presented
	// token (?1), its family, and whether the next hash (?2) is taken.
	rotateReadSQL = `SELECT t.family_id, t.generation, t.parent_hash, t.created_at, t.idle_expires_at,
		t.rotated_at, t.children,
		f.user_id, f.created_at, f.last_used_at, f.idle_expires_at, f.expires_at, f.revoked_at,
		f.delivery, f.user_agent, f.ip,
		EXISTS (SELECT 1 FROM refresh_tokens WHERE hash = ?2)
		FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.hash = ?1`
	// markParentSQL records a child of the presented token (?2), and its
	// rotation at ?1 unless it was already rotated.
	markParentSQL = `UPDATE refresh_tokens SET rotated_at = coalesce(rotated_at, ?1), children = children + 1
		WHERE hash = ?2`
	// useFamilySQL records a token minted at ?1 with idle expiry ?2 in the
	// family ?3; the family's idle expiry never moves backwards.
	useFamilySQL = `UPDATE refresh_families SET last_used_at = ?1,
		idle_expires_at = CASE WHEN idle_expires_at IS NULL OR idle_expires_at < ?2 THEN ?2 ELSE idle_expires_at END
		WHERE id = ?3`
	// retireOthersSQL marks rotated at ?1 every unrotated token of family ?2
	// but the new child ?3 (see refresh.Decision); the presented token is
	// already marked.
	retireOthersSQL = `UPDATE refresh_tokens SET rotated_at = ?1
		WHERE family_id = ?2 AND hash <> ?3 AND rotated_at IS NULL`
	reuseFamilySQL = `UPDATE refresh_families SET revoked_at = ?1 WHERE id = ?2`
)

// scanFamily reads one row of familyColumns.
func scanFamily(row interface{ Scan(...any) error }) (*refresh.Family, error) {
	var (
		f                                       refresh.Family
		created, used, idle, expiresAt, revoked sql.NullInt64
	)
	if err := row.Scan(&f.ID, &f.UserID, &created, &used, &idle, &expiresAt, &revoked,
		&f.Delivery, &f.UserAgent, &f.IP); err != nil {
		return nil, err
	}
	f.CreatedAt, f.LastUsedAt = fromNanos(created), fromNanos(used)
	f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt = fromNanos(idle), fromNanos(expiresAt), fromNanos(revoked)
	return &f, nil
}

// scanFamilies reads every row of rows and closes it.
func scanFamilies(rows *sql.Rows) ([]*refresh.Family, error) {
	defer rows.Close()
	fs := []*refresh.Family{}
	for rows.Next() {
		f, err := scanFamily(rows)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, rows.Err()
}

// queryFamily returns the one family that row holds.
func queryFamily(what string, row *sql.Row) (*refresh.Family, error) {
	f, err := scanFamily(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return f, nil
}

// newestFamilyFirst orders families by CreatedAt, newest first, then by id.
func newestFamilyFirst(a, b *refresh.Family) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// insertToken inserts t in tx.
func insertToken(ctx context.Context, tx *sql.Tx, t *refresh.Token) error {
	ts, err := times(t.CreatedAt, t.IdleExpiresAt, t.RotatedAt)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, createTokenSQL, blob(t.Hash), t.FamilyID, t.Generation, t.ParentHash,
		ts[0], ts[1], ts[2], t.Children)
	return err
}

// CreateFamily inserts f and its first token in one transaction. A taken
// family id or token hash is store.ErrConflict and inserts nothing.
func (s *Refresh) CreateFamily(ctx context.Context, f *refresh.Family, first *refresh.Token) (err error) {
	if f.ID == "" || f.UserID == "" || len(first.Hash) == 0 || first.FamilyID != f.ID {
		return errors.New("sqlite: create refresh family: incomplete family or token")
	}
	ts, err := times(f.CreatedAt, f.LastUsedAt, f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt)
	if err != nil {
		return fmt.Errorf("sqlite: create refresh family: %w", err)
	}
	tx, err := s.db.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return fmt.Errorf("sqlite: create refresh family: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, createFamilySQL, f.ID, f.UserID, ts[0], ts[1], ts[2], ts[3], ts[4],
		f.Delivery, f.UserAgent, f.IP); err != nil {
		return insertErr("create refresh family", err)
	}
	if err := insertToken(ctx, tx, first); err != nil {
		return insertErr("create refresh family: first token", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create refresh family: %w", err)
	}
	return nil
}

// Rotate applies the rotation decisions of package refresh to the token
// whose hash is r.Presented, in one immediate transaction: it reads the
// token and its family, decides, writes and commits, so that concurrent
// presentations of one token are decided one after the other.
func (s *Refresh) Rotate(ctx context.Context, r refresh.RotateRequest) (_ refresh.RotateResult, err error) {
	if len(r.Presented) == 0 || len(r.NextHash) == 0 {
		return refresh.RotateResult{}, errors.New("sqlite: rotate refresh token: empty hash")
	}
	nowN, err := nanos(r.Now)
	if err != nil || nowN == nil {
		return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: bad time %v", r.Now)
	}
	if _, err := nanos(r.IdleExpiresAt); err != nil {
		return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	now := time.Unix(0, nowN.(int64)).UTC()

	tx, err := s.db.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	var (
		tok                                       = refresh.Token{Hash: bytes.Clone(r.Presented)}
		fam                                       refresh.Family
		tCreated, tIdle, tRotated                 sql.NullInt64
		fCreated, fUsed, fIdle, fExpires, fRevoke sql.NullInt64
		taken                                     bool
	)
	err = tx.QueryRowContext(ctx, rotateReadSQL, r.Presented, r.NextHash).Scan(
		&tok.FamilyID, &tok.Generation, &tok.ParentHash, &tCreated, &tIdle, &tRotated, &tok.Children,
		&fam.UserID, &fCreated, &fUsed, &fIdle, &fExpires, &fRevoke, &fam.Delivery, &fam.UserAgent, &fam.IP,
		&taken)
	if errors.Is(err, sql.ErrNoRows) {
		return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", store.ErrNotFound)
	}
	if err != nil {
		return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	if taken {
		return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: next hash: %w", store.ErrConflict)
	}
	fam.ID = tok.FamilyID
	tok.CreatedAt, tok.IdleExpiresAt, tok.RotatedAt = fromNanos(tCreated), fromNanos(tIdle), fromNanos(tRotated)
	fam.CreatedAt, fam.LastUsedAt = fromNanos(fCreated), fromNanos(fUsed)
	fam.IdleExpiresAt, fam.ExpiresAt, fam.RevokedAt = fromNanos(fIdle), fromNanos(fExpires), fromNanos(fRevoke)

	tok.Hash = bytes.Clone(r.Presented)
	r.Now = now // in UTC, as stored
	d := refresh.Decide(fam, tok, r)
	res := refresh.RotateResult{Outcome: d.Outcome}
	switch {
	case d.Mint:
		child := d.Child
		if _, err := tx.ExecContext(ctx, markParentSQL, nowN, r.Presented); err != nil {
			return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
		}
		if err := insertToken(ctx, tx, &child); err != nil {
			return refresh.RotateResult{}, insertErr("rotate refresh token: mint", err)
		}
		idleN, _ := nanos(d.Family.IdleExpiresAt)
		if _, err := tx.ExecContext(ctx, useFamilySQL, nowN, idleN, fam.ID); err != nil {
			return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
		}
		if d.RetireOthers {
			if _, err := tx.ExecContext(ctx, retireOthersSQL, nowN, fam.ID, child.Hash); err != nil {
				return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: retire other branches: %w", err)
			}
		}
		res.Minted = child
	case d.Revoke:
		if _, err := tx.ExecContext(ctx, reuseFamilySQL, nowN, fam.ID); err != nil {
			return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: revoke family: %w", err)
		}
	default:
		// A refusal changes nothing: the transaction ends without a write.
		if err := tx.Rollback(); err != nil {
			return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
		}
		res.Family, res.Presented = d.Family, d.Presented
		return res, nil
	}
	if err := tx.Commit(); err != nil {
		return refresh.RotateResult{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	res.Family, res.Presented = d.Family, d.Presented
	return res, nil
}

// Family returns the family with that id, in any state.
func (s *Refresh) Family(ctx context.Context, id string) (*refresh.Family, error) {
	return queryFamily("load refresh family", s.db.r.QueryRowContext(ctx, familySQL, id))
}

// FamilyByTokenHash returns the family of the token with that hash, current
// or rotated.
func (s *Refresh) FamilyByTokenHash(ctx context.Context, hash []byte) (*refresh.Family, error) {
	return queryFamily("load refresh family by token", s.db.r.QueryRowContext(ctx, familyByHashSQL, blob(hash)))
}

// FamiliesByUser returns the user's live families by the DB's clock, newest
// first.
func (s *Refresh) FamiliesByUser(ctx context.Context, userID string) ([]*refresh.Family, error) {
	now, err := s.db.now()
	if err != nil {
		return nil, fmt.Errorf("sqlite: list refresh families: %w", err)
	}
	rows, err := s.db.r.QueryContext(ctx, familiesByUserSQL, now, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list refresh families: %w", err)
	}
	fs, err := scanFamilies(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list refresh families: %w", err)
	}
	return fs, nil
}

// RevokeFamily revokes the family at `at` unless it is already revoked, and
// returns it.
func (s *Refresh) RevokeFamily(ctx context.Context, id string, at time.Time) (*refresh.Family, error) {
	atN, err := nanos(at)
	if err != nil || atN == nil {
		return nil, fmt.Errorf("sqlite: revoke refresh family: bad time %v", at)
	}
	// With RETURNING, SQLite makes every change at the first step.
	return queryFamily("revoke refresh family", s.db.w.QueryRowContext(ctx, revokeFamilySQL, atN, id))
}

// RevokeUserFamilies revokes, at `at`, the user's families live at `at`, and
// returns them, newest first.
func (s *Refresh) RevokeUserFamilies(ctx context.Context, userID string, at time.Time) ([]*refresh.Family, error) {
	atN, err := nanos(at)
	if err != nil || atN == nil {
		return nil, fmt.Errorf("sqlite: revoke user refresh families: bad time %v", at)
	}
	rows, err := s.db.w.QueryContext(ctx, revokeUserFamiliesSQL, atN, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke user refresh families: %w", err)
	}
	fs, err := scanFamilies(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoke user refresh families: %w", err)
	}
	slices.SortFunc(fs, newestFamilyFirst)
	return fs, nil
}

// Purge deletes, with their tokens, the families past their absolute or idle
// expiry by the DB's clock, revoked or not, and returns how many families it
// deleted.
func (s *Refresh) Purge(ctx context.Context) (_ int, err error) {
	now, err := s.db.now()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge refresh families: %w", err)
	}
	tx, err := s.db.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge refresh families: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The tokens go first, explicitly: the foreign key would cascade only
	// on a connection with foreign_keys on.
	if _, err := tx.ExecContext(ctx, purgeRefreshTokensSQL, now); err != nil {
		return 0, fmt.Errorf("sqlite: purge refresh tokens: %w", err)
	}
	res, err := tx.ExecContext(ctx, purgeFamiliesSQL, now)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge refresh families: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge refresh families: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: purge refresh families: %w", err)
	}
	return int(n), nil
}

// PurgeTokens purges the state of token mode that is no longer needed: the
// refresh families past their expiry (Refresh.Purge) and the revocation
// entries no longer live (Revocations.Purge). It returns how many families
// and entries it deleted in all. DB.Purge purges only sessions: a server
// running token mode calls both.
func (db *DB) PurgeTokens(ctx context.Context) (int, error) {
	families, err := db.Refresh().Purge(ctx)
	if err != nil {
		return 0, err
	}
	entries, err := db.Revocations().Purge(ctx)
	if err != nil {
		return families, err
	}
	return families + entries, nil
}
