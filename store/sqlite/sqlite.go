// Package sqlite is the default storage backend: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode, holding users, sessions and audit events.
// It passes the conformance suite in store/storetest.
//
// A DB holds connection pools on the file: a single writer connection, so
// that writers queue in Go instead of meeting SQLITE_BUSY, and read-only
// (query_only) connections, so that readers never wait for a writer (WAL
// lets them read the last committed state while a write is under way). The
// lookups that every authenticated request makes (SessionByHash, UserByID)
// have read connections of their own, with statements prepared at the
// driver level. Every write transaction is BEGIN IMMEDIATE and every commit
// is synced (synchronous=FULL): a write that returned has reached the disk.
// Other processes (a CLI command) may open the same file: they wait for each
// other's locks for up to 10 seconds.
//
// The point lookups (SessionByHash, UserByID, UserByUsername) refuse a
// context that is already done but are not interrupted by one that ends
// while they run: they take microseconds, and a cancellable context would
// cost two goroutines per query. Every other method honours cancellation.
//
// Times are stored as INTEGER unix nanoseconds, so they keep their full
// precision and can be stored only between the years 1678 and 2262; the zero
// time is stored as NULL. The schema is created and upgraded by the numbered
// migrations embedded in the binary, applied by Open.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

// Options configures Open.
type Options struct {
	// Clock tells liveness of sessions; nil means clock.System{}.
	Clock clock.Clock
}

// DB is a Gatehouse database in one SQLite file. It implements
// account.Store, session.Store and audit.Store, and is safe for concurrent
// use. Open it with Open and close it with Close.
type DB struct {
	clock clock.Clock
	path  string

	w    *sql.DB    // the writer: one connection
	r    *sql.DB    // readers: query_only connections
	fast *fastReads // the hot path's lookups, on query_only connections

	touchSession *sql.Stmt // on w, prepared: once per request at most

	closeOnce sync.Once
	closeErr  error
}

// Pool sizes, and how long a connection waits for a lock held by another
// process before giving up with SQLITE_BUSY.
const (
	readConns  = 4
	fastConns  = 4
	busyPragma = "_pragma=busy_timeout(10000)" // milliseconds
)

// Open opens the database at path, creating it (mode 0600, and its directory
// with mode 0700) when missing, and applies the pending migrations. A
// database migrated by a newer binary is refused with ErrSchemaTooNew.
func Open(ctx context.Context, path string, opts Options) (_ *DB, err error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: open %q: want a plain file path", path)
	}
	c := opts.Clock
	if c == nil {
		c = clock.System{}
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	db := &DB{clock: c, path: path}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	db.w, err = sql.Open("sqlite", path+"?_txlock=immediate&"+busyPragma+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db.w, ms, c.Now()); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	// The readers are opened once the file is in WAL mode and migrated.
	readDSN := path + "?" + busyPragma + "&_pragma=query_only(1)&_pragma=foreign_keys(1)"
	db.r, err = sql.Open("sqlite", readDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.r.SetMaxOpenConns(readConns)
	db.r.SetMaxIdleConns(readConns)
	db.r.SetConnMaxLifetime(0)
	db.r.SetConnMaxIdleTime(0)

	fast, err := sql.Open("sqlite", readDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	fast.SetMaxOpenConns(fastConns)
	fast.SetMaxIdleConns(fastConns)
	db.fast = newFastReads(fast, fastConns)

	if db.touchSession, err = db.w.PrepareContext(ctx, touchSessionSQL); err != nil {
		return nil, fmt.Errorf("sqlite: prepare %q: %w", touchSessionSQL, err)
	}
	return db, nil
}

// createFile creates the database file with mode 0600, and its directory
// with mode 0700, when they are missing. SQLite gives the -wal and -shm
// files the mode of the database file.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: create directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create database file: %w", err)
	}
	return nil
}

// Close closes the database. It is safe to call more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		var errs []error
		if db.fast != nil {
			errs = append(errs, db.fast.close())
		}
		if db.touchSession != nil {
			errs = append(errs, db.touchSession.Close())
		}
		for _, p := range []*sql.DB{db.r, db.w} {
			if p != nil {
				errs = append(errs, p.Close())
			}
		}
		db.closeErr = errors.Join(errs...)
	})
	if err := db.closeErr; err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers, for both writing and reading.
func (db *DB) Ping(ctx context.Context) error {
	for _, p := range []*sql.DB{db.w, db.r} {
		var one int
		if err := p.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("sqlite: ping: %w", err)
		}
	}
	return nil
}

// Purge deletes the dead sessions and returns how many it deleted. Lookups
// never return dead sessions; Purge only reclaims their space.
func (db *DB) Purge(ctx context.Context) (int, error) {
	now, err := db.now()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge sessions: %w", err)
	}
	res, err := db.w.ExecContext(ctx, purgeSessionsSQL, now)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge sessions: %w", err)
	}
	return int(n), nil
}

// Backup writes a consistent copy of the database to dstPath (mode 0600)
// with VACUUM INTO, without stopping readers or writers for long. It refuses
// a dstPath that exists.
func (db *DB) Backup(ctx context.Context, dstPath string) (err error) {
	// An absolute path is never taken for a "file:" URI by SQLite.
	if dstPath, err = filepath.Abs(dstPath); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	f, err := os.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(dstPath)
		}
	}()
	// VACUUM INTO fills the empty file just created (it refuses a non-empty
	// one), keeping its mode. It only reads the database, in one read
	// transaction, but query_only refuses it: it runs on a connection of
	// its own, so that writers do not wait for it.
	conn, err := sql.Open("sqlite", db.path+"?"+busyPragma)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", dstPath)
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", dstPath, err)
	}
	if err := syncPath(dstPath); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := syncPath(filepath.Dir(dstPath)); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	return nil
}

// syncPath flushes a file or directory to disk.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// lookupContext returns the context for a point lookup on the hot path (a
// primary-key or unique-index read that takes microseconds): ctx, unless it
// is already done, without its cancellation. A cancellable context costs
// two goroutines per query (one in database/sql, one in the driver), which
// would double the cost of the lookup it could never usefully interrupt.
func lookupContext(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
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
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
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

// isConflict reports whether err is a violated UNIQUE or PRIMARY KEY
// constraint.
func isConflict(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// insertErr wraps the error of an INSERT, as store.ErrConflict when it broke
// a uniqueness constraint.
func insertErr(what string, err error) error {
	if isConflict(err) {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrConflict)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// affected returns nil when res changed a row, store.ErrNotFound when it
// changed none, or the error.
func affected(what string, res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	return nil
}
