package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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
	// isFamilyLive is true for a family live at $1 (NULL, the zero time,
	// never is).
	isFamilyLive = `revoked_at IS NULL AND idle_expires_at > $1 AND expires_at > $1`
	// isFamilyDead is true for a family past its absolute or idle expiry at
	// $1, revoked or not.
	isFamilyDead = `(idle_expires_at IS NULL OR expires_at IS NULL OR idle_expires_at <= $1 OR expires_at <= $1)`

	createFamilySQL = `INSERT INTO refresh_families (` + familyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	createTokenSQL  = `INSERT INTO refresh_tokens (` + tokenColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	familySQL       = `SELECT ` + familyColumns + ` FROM refresh_families WHERE id = $1`
	familyByHashSQL = `SELECT ` + familyColumns + ` FROM refresh_families
		WHERE id = (SELECT family_id FROM refresh_tokens WHERE hash = $1)`
	// FamiliesByUser goes through refresh_families_user_created, newest
	// first.
	familiesByUserSQL = `SELECT ` + familyColumns + ` FROM refresh_families WHERE user_id = $2 AND ` + isFamilyLive +
		` ORDER BY created_at DESC NULLS LAST, id`
	revokeFamilySQL = `UPDATE refresh_families SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2
		RETURNING ` + familyColumns
	// The families are locked in id order, so that two statements locking
	// several families cannot deadlock; READ COMMITTED checks the condition
	// again on a row changed while it waited for its lock.
	revokeUserFamiliesSQL = `WITH locked AS (
			SELECT id FROM refresh_families WHERE user_id = $2 AND ` + isFamilyLive + ` ORDER BY id FOR UPDATE
		)
		UPDATE refresh_families f SET revoked_at = $1 FROM locked WHERE f.id = locked.id
		RETURNING f.id, f.user_id, f.created_at, f.last_used_at, f.idle_expires_at, f.expires_at, f.revoked_at,
		f.delivery, f.user_agent, f.ip`
	// The tokens go with their families (ON DELETE CASCADE).
	purgeFamiliesSQL = `DELETE FROM refresh_families WHERE id IN (
		SELECT id FROM refresh_families WHERE ` + isFamilyDead + ` ORDER BY id FOR UPDATE)`

	// lockFamilySQL locks, first, the family of the presented token ($1).
	// The token-to-family mapping never changes, so it is read without a
	// lock.
	lockFamilySQL = `SELECT ` + familyColumns + ` FROM refresh_families
		WHERE id = (SELECT family_id FROM refresh_tokens WHERE hash = $1) FOR UPDATE`
	// lockTokenSQL locks, second, the presented token ($1), and tells
	// whether the next hash ($2) is taken.
	lockTokenSQL = `SELECT family_id, generation, parent_hash, created_at, idle_expires_at, rotated_at, children,
		EXISTS (SELECT 1 FROM refresh_tokens WHERE hash = $2)
		FROM refresh_tokens WHERE hash = $1 FOR UPDATE`
	// markParentSQL records a child of the presented token ($2), and its
	// rotation at $1 unless it was already rotated.
	markParentSQL = `UPDATE refresh_tokens SET rotated_at = coalesce(rotated_at, $1), children = children + 1
		WHERE hash = $2`
	// useFamilySQL records a token minted at $1 with idle expiry $2 in the
	// family $3; the family's idle expiry never moves backwards (GREATEST
	// ignores NULL).
	useFamilySQL = `UPDATE refresh_families SET last_used_at = $1, idle_expires_at = GREATEST(idle_expires_at, $2) WHERE id = $3`
	// retireOthersSQL marks rotated at $1 every unrotated token of family $2
	// but the new child $3 (see refresh.Decision); the presented token is
	// already marked.
	retireOthersSQL = `UPDATE refresh_tokens SET rotated_at = $1
		WHERE family_id = $2 AND hash <> $3 AND rotated_at IS NULL`
	reuseFamilySQL = `UPDATE refresh_families SET revoked_at = $1 WHERE id = $2`
)

// scanFamily reads one row of familyColumns.
func scanFamily(row scanner) (*refresh.Family, error) {
	var (
		f                                       refresh.Family
		created, used, idle, expiresAt, revoked *int64
	)
	if err := row.Scan(&f.ID, &f.UserID, &created, &used, &idle, &expiresAt, &revoked,
		&f.Delivery, &f.UserAgent, &f.IP); err != nil {
		return nil, err
	}
	f.CreatedAt, f.LastUsedAt = fromNanos(created), fromNanos(used)
	f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt = fromNanos(idle), fromNanos(expiresAt), fromNanos(revoked)
	return &f, nil
}

// queryFamily returns the one family that row holds.
func queryFamily(what string, row pgx.Row) (*refresh.Family, error) {
	f, err := scanFamily(row)
	if err != nil {
		return nil, rowErr(what, err)
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

// queueToken queues the insertion of t in b.
func queueToken(b *pgx.Batch, t *refresh.Token) error {
	ts, err := times(t.CreatedAt, t.IdleExpiresAt, t.RotatedAt)
	if err != nil {
		return err
	}
	b.Queue(createTokenSQL, blob(t.Hash), t.FamilyID, t.Generation, t.ParentHash, ts[0], ts[1], ts[2], t.Children)
	return nil
}

// CreateFamily inserts f and its first token in one transaction. A taken
// family id or token hash is store.ErrConflict and inserts nothing.
func (s *Refresh) CreateFamily(ctx context.Context, f *refresh.Family, first *refresh.Token) (err error) {
	if f.ID == "" || f.UserID == "" || len(first.Hash) == 0 || first.FamilyID != f.ID {
		return errors.New("postgres: create refresh family: incomplete family or token")
	}
	ts, err := times(f.CreatedAt, f.LastUsedAt, f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt)
	if err != nil {
		return fmt.Errorf("postgres: create refresh family: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(createFamilySQL, f.ID, f.UserID, ts[0], ts[1], ts[2], ts[3], ts[4], f.Delivery, f.UserAgent, f.IP)
	if err := queueToken(b, first); err != nil {
		return fmt.Errorf("postgres: create refresh family: first token: %w", err)
	}
	// A batch outside a transaction runs in one implicit transaction: the
	// first error rolls both inserts back.
	if err := s.db.pool.SendBatch(ctx, b).Close(); err != nil {
		return insertErr("create refresh family", err)
	}
	return nil
}

// Rotate applies the rotation decisions of package refresh to the token
// whose hash is r.Presented, in one transaction: it locks the token's
// family row, then the token's row, decides, writes and commits, so that
// concurrent presentations of one token are decided one after the other.
// It makes four round trips to the server: BEGIN, the two locking reads in
// one batch, the writes in another, COMMIT.
func (s *Refresh) Rotate(ctx context.Context, r refresh.RotateRequest) (_ refresh.RotateResult, err error) {
	if len(r.Presented) == 0 || len(r.NextHash) == 0 {
		return refresh.RotateResult{}, errors.New("postgres: rotate refresh token: empty hash")
	}
	nowN, err := nanos(r.Now)
	if err != nil || nowN == nil {
		return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: bad time %v", r.Now)
	}
	if _, err := nanos(r.IdleExpiresAt); err != nil {
		return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: %w", err)
	}
	now := time.Unix(0, nowN.(int64)).UTC()

	tx, err := s.db.pool.Begin(ctx)
	if err != nil {
		return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()

	fam, tok, taken, err := lockForRotation(ctx, tx, r.Presented, r.NextHash)
	if err != nil {
		return refresh.RotateResult{}, rowErr("rotate refresh token", err)
	}
	if taken {
		return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: next hash: %w", store.ErrConflict)
	}

	tok.Hash = bytes.Clone(r.Presented)
	r.Now = now // in UTC, as stored
	d := refresh.Decide(*fam, *tok, r)
	res := refresh.RotateResult{Outcome: d.Outcome}
	switch {
	case d.Mint:
		child := d.Child
		idleN, _ := nanos(d.Family.IdleExpiresAt)
		b := &pgx.Batch{}
		b.Queue(markParentSQL, nowN, r.Presented)
		if err := queueToken(b, &child); err != nil {
			return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: %w", err)
		}
		b.Queue(useFamilySQL, nowN, idleN, fam.ID)
		if d.RetireOthers {
			b.Queue(retireOthersSQL, nowN, fam.ID, child.Hash)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return refresh.RotateResult{}, insertErr("rotate refresh token: mint", err)
		}
		res.Minted = child
	case d.Revoke:
		if _, err := tx.Exec(ctx, reuseFamilySQL, nowN, fam.ID); err != nil {
			return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: revoke family: %w", err)
		}
	default:
		// A refusal changes nothing: the transaction ends without a write.
		if err := tx.Rollback(ctx); err != nil {
			return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: %w", err)
		}
		res.Family, res.Presented = d.Family, d.Presented
		return res, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return refresh.RotateResult{}, fmt.Errorf("postgres: rotate refresh token: %w", err)
	}
	res.Family, res.Presented = d.Family, d.Presented
	return res, nil
}

// lockForRotation locks, in tx, the family of the token presented, then the
// token, and reads both, in one round trip; taken tells whether next is
// already a token's hash. A token or family that is missing (never stored,
// or purged) is pgx.ErrNoRows.
func lockForRotation(ctx context.Context, tx pgx.Tx, presented, next []byte) (_ *refresh.Family, _ *refresh.Token, taken bool, err error) {
	b := &pgx.Batch{}
	b.Queue(lockFamilySQL, presented)
	b.Queue(lockTokenSQL, presented, next)
	br := tx.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	fam, err := scanFamily(br.QueryRow())
	if err != nil {
		return nil, nil, false, err
	}
	var (
		tok                       = refresh.Token{Hash: bytes.Clone(presented)}
		tCreated, tIdle, tRotated *int64
	)
	if err := br.QueryRow().Scan(&tok.FamilyID, &tok.Generation, &tok.ParentHash, &tCreated, &tIdle, &tRotated,
		&tok.Children, &taken); err != nil {
		return nil, nil, false, err
	}
	if tok.FamilyID != fam.ID {
		// Cannot happen: a token never changes family.
		return nil, nil, false, fmt.Errorf("token of family %q read with family %q", tok.FamilyID, fam.ID)
	}
	tok.CreatedAt, tok.IdleExpiresAt, tok.RotatedAt = fromNanos(tCreated), fromNanos(tIdle), fromNanos(tRotated)
	return fam, &tok, taken, nil
}

// Family returns the family with that id, in any state.
func (s *Refresh) Family(ctx context.Context, id string) (*refresh.Family, error) {
	if !storable(id) {
		return nil, notFound("load refresh family")
	}
	return queryFamily("load refresh family", s.db.pool.QueryRow(ctx, familySQL, id))
}

// FamilyByTokenHash returns the family of the token with that hash, current
// or rotated.
func (s *Refresh) FamilyByTokenHash(ctx context.Context, hash []byte) (*refresh.Family, error) {
	return queryFamily("load refresh family by token", s.db.pool.QueryRow(ctx, familyByHashSQL, blob(hash)))
}

// FamiliesByUser returns the user's live families by the DB's clock, newest
// first.
func (s *Refresh) FamiliesByUser(ctx context.Context, userID string) ([]*refresh.Family, error) {
	if !storable(userID) {
		return []*refresh.Family{}, nil
	}
	now, err := s.db.now()
	if err != nil {
		return nil, fmt.Errorf("postgres: list refresh families: %w", err)
	}
	rows, err := s.db.pool.Query(ctx, familiesByUserSQL, now, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list refresh families: %w", err)
	}
	fs, err := collect(rows, scanFamily)
	if err != nil {
		return nil, fmt.Errorf("postgres: list refresh families: %w", err)
	}
	return fs, nil
}

// RevokeFamily revokes the family at `at` unless it is already revoked, and
// returns it.
func (s *Refresh) RevokeFamily(ctx context.Context, id string, at time.Time) (*refresh.Family, error) {
	atN, err := nanos(at)
	if err != nil || atN == nil {
		return nil, fmt.Errorf("postgres: revoke refresh family: bad time %v", at)
	}
	if !storable(id) {
		return nil, notFound("revoke refresh family")
	}
	return queryFamily("revoke refresh family", s.db.pool.QueryRow(ctx, revokeFamilySQL, atN, id))
}

// RevokeUserFamilies revokes, at `at`, the user's families live at `at`, and
// returns them, newest first.
func (s *Refresh) RevokeUserFamilies(ctx context.Context, userID string, at time.Time) ([]*refresh.Family, error) {
	atN, err := nanos(at)
	if err != nil || atN == nil {
		return nil, fmt.Errorf("postgres: revoke user refresh families: bad time %v", at)
	}
	if !storable(userID) {
		return []*refresh.Family{}, nil
	}
	rows, err := s.db.pool.Query(ctx, revokeUserFamiliesSQL, atN, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: revoke user refresh families: %w", err)
	}
	fs, err := collect(rows, scanFamily)
	if err != nil {
		return nil, fmt.Errorf("postgres: revoke user refresh families: %w", err)
	}
	slices.SortFunc(fs, newestFamilyFirst)
	return fs, nil
}

// Purge deletes, with their tokens, the families past their absolute or idle
// expiry by the DB's clock, revoked or not, and returns how many families it
// deleted.
func (s *Refresh) Purge(ctx context.Context) (int, error) {
	now, err := s.db.now()
	if err != nil {
		return 0, fmt.Errorf("postgres: purge refresh families: %w", err)
	}
	tag, err := s.db.pool.Exec(ctx, purgeFamiliesSQL, now)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge refresh families: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
