package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
)

// ErrSchemaTooOld is returned by OpenExport for a database whose schema is
// older than this binary's: open it once with this binary (any command
// migrates it, after a backup), then export it.
var ErrSchemaTooOld = errors.New("sqlite: database schema is older than this binary")

// exportedTables are the tables that Export reads, each in full: every table
// of the schema but schema_migrations. A test checks that this list names
// every table the migrations create, so that a new table cannot be left
// out of an export unnoticed.
var exportedTables = []string{
	"users", "sessions", "audit_events",
	"signing_keys", "refresh_families", "refresh_tokens",
	"revoked_tokens", "revoked_sids", "revoked_users",
}

// Export is a read-only, consistent view of a Gatehouse SQLite file, for
// copying it elsewhere (gatehouse migrate). It holds one read transaction
// from OpenExport to Close: every method sees the database as it was when
// the export was opened, whatever other processes write meanwhile. It never
// writes the database file (it is opened with mode=ro); SQLite may still
// create the -wal and -shm files next to it when they are missing. The
// methods return every record, dead ones (expired, revoked) included: what
// to copy is the caller's decision. An Export is not safe for concurrent
// use.
type Export struct {
	db *sql.DB
	tx *sql.Tx
}

// ExportCounts is how many records of each kind an Export holds, dead ones
// included.
type ExportCounts struct {
	Users           int
	Sessions        int
	RefreshFamilies int
	RefreshTokens   int
	SigningKeys     int
	Revocations     int // the three kinds together
	AuditEvents     int
}

// OpenExport opens the database at path read-only and starts the read
// transaction of the export. The file must exist and have exactly this
// binary's schema: a newer one is ErrSchemaTooNew, an older one
// ErrSchemaTooOld.
func OpenExport(ctx context.Context, path string) (_ *Export, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: export: %w", err)
	}
	if _, err := os.Stat(abs); err != nil { // a clearer error than SQLite's
		return nil, fmt.Errorf("sqlite: export: %w", err)
	}
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// A "file:" URI, so that SQLite applies mode=ro: the file is never
	// created or written. The path is escaped as a URI path.
	dsn := (&url.URL{Scheme: "file", Path: abs}).String() + "?mode=ro&" + busyPragma
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: export %s: %w", path, err)
	}
	// One connection: the transaction below holds it until Close.
	db.SetMaxOpenConns(1)
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: export %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The first read fixes the snapshot of the transaction.
	var version int
	err = tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version)
	if err != nil {
		return nil, fmt.Errorf("sqlite: export %s: read schema version (is it a Gatehouse database?): %w", path, err)
	}
	switch latest := ms[len(ms)-1].version; {
	case version > latest:
		return nil, fmt.Errorf("sqlite: export %s: %w: schema version %d, this binary knows up to %d",
			path, ErrSchemaTooNew, version, latest)
	case version < latest:
		return nil, fmt.Errorf("sqlite: export %s: %w: schema version %d, this binary's is %d",
			path, ErrSchemaTooOld, version, latest)
	}
	return &Export{db: db, tx: tx}, nil
}

// Close ends the read transaction and closes the database.
func (e *Export) Close() error {
	err := e.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) { // closed before
		err = nil
	}
	if err := errors.Join(err, e.db.Close()); err != nil {
		return fmt.Errorf("sqlite: close export: %w", err)
	}
	return nil
}

// Counts returns how many records of each kind the export holds.
func (e *Export) Counts(ctx context.Context) (ExportCounts, error) {
	var c ExportCounts
	err := e.tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM sessions),
		(SELECT count(*) FROM refresh_families),
		(SELECT count(*) FROM refresh_tokens),
		(SELECT count(*) FROM signing_keys),
		(SELECT count(*) FROM revoked_tokens) + (SELECT count(*) FROM revoked_sids) + (SELECT count(*) FROM revoked_users),
		(SELECT count(*) FROM audit_events)`).Scan(
		&c.Users, &c.Sessions, &c.RefreshFamilies, &c.RefreshTokens, &c.SigningKeys, &c.Revocations, &c.AuditEvents)
	if err != nil {
		return ExportCounts{}, fmt.Errorf("sqlite: export: count records: %w", err)
	}
	return c, nil
}

// each runs query and calls scan on each row, stopping at the first error.
func (e *Export) each(ctx context.Context, what, query string, scan func(*sql.Rows) error) error {
	rows, err := e.tx.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("sqlite: export %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: export %s: %w", what, err)
	}
	return nil
}

// Users calls fn with every user, by id, stopping at fn's first error,
// which it returns.
func (e *Export) Users(ctx context.Context, fn func(*account.User) error) error {
	return e.each(ctx, "users", `SELECT `+userColumns+` FROM users ORDER BY id`, func(rows *sql.Rows) error {
		u, err := scanUser(rows)
		if err != nil {
			return fmt.Errorf("sqlite: export users: %w", err)
		}
		return fn(u)
	})
}

// Sessions calls fn with every session, dead ones included, by hash,
// stopping at fn's first error, which it returns.
func (e *Export) Sessions(ctx context.Context, fn func(*session.Session) error) error {
	return e.each(ctx, "sessions", `SELECT `+sessionColumns+` FROM sessions ORDER BY hash`, func(rows *sql.Rows) error {
		s, err := scanSession(rows)
		if err != nil {
			return fmt.Errorf("sqlite: export sessions: %w", err)
		}
		return fn(s)
	})
}

// RefreshFamilies calls fn with every refresh family, revoked and expired
// ones included, by id, and with all its tokens, current and rotated, by
// generation then hash. It stops at fn's first error, which it returns.
func (e *Export) RefreshFamilies(ctx context.Context, fn func(*refresh.Family, []*refresh.Token) error) error {
	const q = `SELECT f.id, f.user_id, f.created_at, f.last_used_at, f.idle_expires_at, f.expires_at, f.revoked_at,
		f.delivery, f.user_agent, f.ip,
		t.hash, t.generation, t.parent_hash, t.created_at, t.idle_expires_at, t.rotated_at, t.children
		FROM refresh_families f LEFT JOIN refresh_tokens t ON t.family_id = f.id
		ORDER BY f.id, t.generation, t.hash`
	var (
		fam    *refresh.Family
		tokens []*refresh.Token
	)
	err := e.each(ctx, "refresh families", q, func(rows *sql.Rows) error {
		var (
			f                                       refresh.Family
			created, used, idle, expiresAt, revoked sql.NullInt64
			hash, parent                            []byte
			generation, children                    sql.NullInt64
			tCreated, tIdle, tRotated               sql.NullInt64
		)
		if err := rows.Scan(&f.ID, &f.UserID, &created, &used, &idle, &expiresAt, &revoked,
			&f.Delivery, &f.UserAgent, &f.IP,
			&hash, &generation, &parent, &tCreated, &tIdle, &tRotated, &children); err != nil {
			return fmt.Errorf("sqlite: export refresh families: %w", err)
		}
		if fam == nil || fam.ID != f.ID {
			if fam != nil {
				if err := fn(fam, tokens); err != nil {
					return err
				}
			}
			f.CreatedAt, f.LastUsedAt = fromNanos(created), fromNanos(used)
			f.IdleExpiresAt, f.ExpiresAt, f.RevokedAt = fromNanos(idle), fromNanos(expiresAt), fromNanos(revoked)
			fam, tokens = &f, nil
		}
		if hash == nil { // a family without tokens (LEFT JOIN)
			return nil
		}
		tokens = append(tokens, &refresh.Token{
			Hash:          hash,
			FamilyID:      f.ID,
			Generation:    int(generation.Int64),
			ParentHash:    parent,
			CreatedAt:     fromNanos(tCreated),
			IdleExpiresAt: fromNanos(tIdle),
			RotatedAt:     fromNanos(tRotated),
			Children:      int(children.Int64),
		})
		return nil
	})
	if err != nil {
		return err
	}
	if fam != nil {
		return fn(fam, tokens)
	}
	return nil
}

// SigningKeys calls fn with every signing key record, removed ones
// included, oldest (CreatedAt, then KID) first, stopping at fn's first
// error, which it returns.
func (e *Export) SigningKeys(ctx context.Context, fn func(*keys.Record) error) error {
	return e.each(ctx, "signing keys", keysSQL, func(rows *sql.Rows) error {
		var (
			r                                keys.Record
			created, signs, retired, removes sql.NullInt64
		)
		if err := rows.Scan(&r.KID, &r.Alg, &r.Sealed, &r.PublicKey,
			&created, &signs, &retired, &removes, &r.Removed); err != nil {
			return fmt.Errorf("sqlite: export signing keys: %w", err)
		}
		r.CreatedAt, r.SignsFrom = fromNanos(created), fromNanos(signs)
		r.RetiredAt, r.RemoveAt = fromNanos(retired), fromNanos(removes)
		return fn(&r)
	})
}

// Revocations calls fn with every revocation entry, dead ones included:
// the denylisted jtis, then the revoked sids, then the users' revoke-all
// times, each by id. It stops at fn's first error, which it returns.
func (e *Export) Revocations(ctx context.Context, fn func(revocation.Entry) error) error {
	q := fmt.Sprintf(`SELECT %d, jti, NULL, until FROM revoked_tokens
		UNION ALL SELECT %d, sid, NULL, until FROM revoked_sids
		UNION ALL SELECT %d, user_id, revoked_before, until FROM revoked_users
		ORDER BY 1, 2`, revocation.KindToken, revocation.KindSID, revocation.KindUser)
	return e.each(ctx, "revocations", q, func(rows *sql.Rows) error {
		var (
			en            revocation.Entry
			before, until sql.NullInt64
		)
		if err := rows.Scan(&en.Kind, &en.ID, &before, &until); err != nil {
			return fmt.Errorf("sqlite: export revocations: %w", err)
		}
		en.Before, en.Until = fromNanos(before), fromNanos(until)
		return fn(en)
	})
}

// AuditEvents calls fn with every audit event in the order they were
// appended, stopping at fn's first error, which it returns. Appending them
// elsewhere in this order keeps the order of events of the same time.
func (e *Export) AuditEvents(ctx context.Context, fn func(*audit.Event) error) error {
	return e.each(ctx, "audit events", `SELECT `+eventColumns+` FROM audit_events ORDER BY seq`, func(rows *sql.Rows) error {
		var (
			ev audit.Event
			t  sql.NullInt64
		)
		if err := rows.Scan(&ev.ID, &t, &ev.Type, &ev.Severity, &ev.UserID, &ev.Username,
			&ev.SessionID, &ev.ActorID, &ev.IP, &ev.UserAgent, &ev.Reason); err != nil {
			return fmt.Errorf("sqlite: export audit events: %w", err)
		}
		ev.Time = fromNanos(t)
		return fn(&ev)
	})
}
