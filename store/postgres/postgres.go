// Package postgres is the storage backend for several instances of
// Gatehouse: one PostgreSQL database, reached through a pgx connection pool,
// holding users, sessions, audit events, signing keys, refresh families and
// revocations. It passes the conformance suite in store/storetest.
//
// Every method is one statement, or one transaction when it reads before it
// writes: Refresh.Rotate locks the presented token's family row, then the
// token's row (SELECT … FOR UPDATE, always in that order), so that
// concurrent presentations of one token, from any number of instances, are
// decided one after the other. Statements that lock several families lock
// them in id order, so that two of them cannot deadlock.
//
// Times are stored as BIGINT unix nanoseconds, not timestamptz (which keeps
// only microseconds), so they keep their full precision and can be stored
// only between the years 1678 and 2262; the zero time is stored as NULL.
//
// The schema is created and upgraded by the numbered migrations embedded in
// the binary, applied by Open in one transaction that holds an advisory lock:
// instances that start at once wait for each other, and the migrations run
// once. Options.Schema puts the tables in a schema of their own (the
// connections' search_path), created by Open when missing.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

// Options configures Open.
type Options struct {
	// Clock tells liveness of sessions, refresh families and revocations;
	// nil means clock.System{}.
	Clock clock.Clock
	// Schema, when set, is the schema that holds Gatehouse's tables: the
	// only one on the connections' search_path, created by Open when
	// missing. It is a lower-case SQL identifier (a-z, 0-9, _; at most 63
	// bytes). Empty keeps the server's search_path (normally "public").
	Schema string
}

// DB is a Gatehouse database on a PostgreSQL server. It implements
// account.Store, session.Store, audit.Store and keys.Store; Refresh and
// Revocations return its refresh.Store and revocation.Store. It is safe for
// concurrent use. Open it with Open and close it with Close.
type DB struct {
	clock clock.Clock
	pool  *pgxpool.Pool

	closeOnce sync.Once
}

// schemaName is the form of Options.Schema.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as pgx reads it, pool_max_conns included), and applies
// the pending migrations. A database migrated by a newer binary is refused
// with ErrSchemaTooNew.
func Open(ctx context.Context, url string, opts Options) (_ *DB, err error) {
	c := opts.Clock
	if c == nil {
		c = clock.System{}
	}
	if opts.Schema != "" && !schemaName.MatchString(opts.Schema) {
		return nil, fmt.Errorf("postgres: open: schema %q is not a lower-case identifier", opts.Schema)
	}
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// pgx redacts the password from the errors of ParseConfig; the URL is
	// never quoted in an error of this package.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db := &DB{clock: c, pool: pool}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	if err := migrate(ctx, pool, opts.Schema, ms, c.Now()); err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return db, nil
}

// Close closes every connection of the pool, waiting for those in use to be
// released. It is safe to call more than once. It returns no error (pgx
// reports none) but has the signature of io.Closer, like the other
// backends' Close.
func (db *DB) Close() error {
	db.closeOnce.Do(db.pool.Close)
	return nil
}

// Ping checks that the server answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
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

// now returns the clock's time as stored.
func (db *DB) now() (int64, error) {
	n, err := nanos(db.clock.Now())
	if err != nil {
		return 0, err
	}
	if n == nil {
		return 0, errors.New("the clock reads the zero time")
	}
	return n.(int64), nil
}

// Bounds of the times that unix nanoseconds in an int64 can hold.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos returns t as stored: unix nanoseconds, or nil (NULL) for the zero
// time. A time that does not fit is an error.
func nanos(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, fmt.Errorf("time %v out of range", t)
	}
	return t.UnixNano(), nil
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// times converts each of ts with nanos.
func times(ts ...time.Time) ([]any, error) {
	out := make([]any, len(ts))
	for i, t := range ts {
		n, err := nanos(t)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// blob returns b, or an empty slice for nil: pgx sends a nil slice as NULL,
// which a NOT NULL column refuses and no hash equals.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// storable reports whether every one of ss can be stored in a TEXT
// column: PostgreSQL refuses invalid UTF-8 and the NUL character, where the
// other backends store any bytes. A key that cannot be stored cannot be
// found: lookups answer such a key (from a URL path, say) as missing,
// without asking the server, rather than with the server's encoding error.
func storable(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

// notFound is the error of a lookup of an unstorable key.
func notFound(what string) error {
	return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
}

// uniqueViolation is the SQLSTATE of a violated UNIQUE or PRIMARY KEY
// constraint.
const uniqueViolation = "23505"

// isConflict reports whether err is a violated UNIQUE or PRIMARY KEY
// constraint.
func isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation
}

// insertErr wraps the error of an INSERT, as store.ErrConflict when it broke
// a uniqueness constraint.
func insertErr(what string, err error) error {
	if isConflict(err) {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrConflict)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// rowErr wraps the error of a query that returns one row, as
// store.ErrNotFound when it returned none.
func rowErr(what string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// affected returns nil when tag says a row changed, store.ErrNotFound when
// none did, or the error.
func affected(what string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// scanner is a row that can be scanned: pgx.Row or pgx.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// collect scans every row of rows with scan and closes rows. It returns an
// empty, non-nil slice when there is none.
func collect[T any](rows pgx.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
