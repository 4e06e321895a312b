package sqlite

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
)

// openTest opens a new database in a temporary directory, closed at the end
// of the test.
func openTest(t testing.TB, c clock.Clock) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "gatehouse.db"), c)
}

// openAt opens the database at path, closed at the end of the test.
func openAt(t testing.TB, path string, c clock.Clock) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, Options{Clock: c})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestAccounts(t *testing.T) {
	storetest.TestAccounts(t, func(t *testing.T, c clock.Clock) account.Store { return openTest(t, c) })
}

func TestSessions(t *testing.T) {
	storetest.TestSessions(t, func(t *testing.T, c clock.Clock) session.Store { return openTest(t, c) })
}

func TestAudit(t *testing.T) {
	storetest.TestAudit(t, func(t *testing.T, c clock.Clock) audit.Store { return openTest(t, c) })
}

// start is the time of the fake clocks below.
var start = time.Date(2031, time.May, 17, 9, 41, 7, 123456789, time.UTC)

// fixtures writes one user, one session and one audit event.
func fixtures(t *testing.T, db *DB) (*account.User, *session.Session, *audit.Event) {
	t.Helper()
	ctx := context.Background()
	u := &account.User{ID: "u1", Username: "alice", PasswordHash: "$argon2id$x", Roles: []string{"admin"},
		CreatedAt: start, UpdatedAt: start}
	s := &session.Session{ID: "s1", Hash: []byte("0123456789abcdef0123456789abcdef"), UserID: "u1",
		CreatedAt: start, LastSeenAt: start, IdleExpiresAt: start.Add(time.Hour), ExpiresAt: start.Add(2 * time.Hour)}
	e := &audit.Event{ID: "e1", Time: start, Type: "login.success", Severity: "info", UserID: "u1"}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if err := db.AppendEvent(ctx, e); err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	return u, s, e
}

// checkFixtures fails unless db holds what fixtures wrote.
func checkFixtures(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	u, err := db.UserByUsername(ctx, "alice")
	if err != nil || u.ID != "u1" || !u.HasRole("admin") || !u.CreatedAt.Equal(start) {
		t.Errorf("UserByUsername(alice) = %+v, %v", u, err)
	}
	s, err := db.SessionByHash(ctx, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil || s.ID != "s1" || !s.ExpiresAt.Equal(start.Add(2*time.Hour)) {
		t.Errorf("SessionByHash = %+v, %v", s, err)
	}
	es, err := db.Events(ctx, audit.Filter{})
	if err != nil || len(es) != 1 || es[0].ID != "e1" {
		t.Errorf("Events = %v, %v", es, err)
	}
}

func TestPragmas(t *testing.T) {
	db := openTest(t, nil)
	ctx := context.Background()
	cases := []struct {
		name string
		pool string
		want string
	}{
		{"journal_mode", "w", "wal"},
		{"synchronous", "w", "2"}, // FULL
		{"foreign_keys", "w", "1"},
		{"busy_timeout", "w", "10000"},
		{"query_only", "w", "0"},
		{"journal_mode", "r", "wal"},
		{"foreign_keys", "r", "1"},
		{"busy_timeout", "r", "10000"},
		{"query_only", "r", "1"},
	}
	for _, tc := range cases {
		t.Run(tc.pool+"/"+tc.name, func(t *testing.T) {
			p := db.w
			if tc.pool == "r" {
				p = db.r
			}
			var got string
			if err := p.QueryRowContext(ctx, "PRAGMA "+tc.name).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tc.name, err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
	// The readers cannot write, even by mistake.
	if _, err := db.r.ExecContext(ctx, `DELETE FROM users`); err == nil {
		t.Error("a write on the read pool succeeded")
	}
}

// queryPlan returns the detail lines of EXPLAIN QUERY PLAN for query.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("scan plan: %v", err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("plan: %v", err)
	}
	return strings.Join(lines, "\n")
}

func TestQueryPlans(t *testing.T) {
	db := openTest(t, nil)
	fixtures(t, db)
	cases := []struct {
		name     string
		query    string
		args     []any
		want     []string // one of them must be in the plan
		noSort   bool     // the index gives the order: no temporary b-tree
		noScanOf string   // this table must not be scanned
	}{
		{"SessionByHash", sessionByHashSQL, []any{int64(1), []byte("h")}, []string{"USING PRIMARY KEY (hash=?)"}, true, "sessions"},
		{"SessionsByUser", sessionsByUserSQL, []any{int64(1), "u1"}, []string{"USING INDEX sessions_user_created (user_id=?)"}, false, "sessions"},
		{"DeleteUserSession", deleteUserSessionSQL, []any{int64(1), "u1", "s1"}, []string{"USING INDEX sessions_id (id=?)"}, true, "sessions"},
		{"DeleteUserSessions", deleteUserSessionsSQL, []any{"u1"}, []string{"USING INDEX sessions_user_created (user_id=?)"}, true, "sessions"},
		{"UserByID", userByIDSQL, []any{"u1"}, []string{"USING PRIMARY KEY (id=?)"}, true, "users"},
		{"UserByUsername", userByUsernameSQL, []any{"alice"}, []string{"USING INDEX users_username (username=?)"}, true, "users"},
		{"ListUsers", listUsersSQL, []any{"a", 10}, []string{"USING INDEX users_username (username>?)"}, true, "users"},
		{"Events", eventsSQL[0][0], []any{10}, []string{"USING INDEX audit_events_time"}, true, ""},
		{"Events by type", eventsSQL[0][1], []any{"login.success", 10}, []string{"USING INDEX audit_events_type_time (type=?)"}, true, "audit_events"},
		{"Events by user", eventsSQL[1][0], []any{"u1", 10}, []string{"USING INDEX audit_events_user_time (user_id=?)"}, true, "audit_events"},
		{"Events by user and type", eventsSQL[1][1], []any{"u1", "login.success", 10},
			[]string{"USING INDEX audit_events_user_time (user_id=?)", "USING INDEX audit_events_type_time (type=?)"}, true, "audit_events"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := queryPlan(t, db, tc.query, tc.args...)
			found := false
			for _, w := range tc.want {
				found = found || strings.Contains(plan, w)
			}
			if !found {
				t.Errorf("plan does not use %q:\n%s", tc.want, plan)
			}
			if tc.noScanOf != "" && strings.Contains(plan, "SCAN "+tc.noScanOf) {
				t.Errorf("plan scans %s:\n%s", tc.noScanOf, plan)
			}
			if tc.noSort && strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("plan sorts:\n%s", plan)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "gatehouse")
	path := filepath.Join(dir, "gatehouse.db")
	db := openAt(t, path, nil)
	fixtures(t, db) // so that the WAL has content

	cases := []struct {
		path string
		want fs.FileMode
	}{
		{dir, 0o700 | fs.ModeDir},
		{filepath.Dir(dir), 0o700 | fs.ModeDir},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (fs.ModePerm | fs.ModeDir); got != tc.want {
				t.Errorf("mode = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	fixtures(t, db)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	db = openAt(t, path, clock.NewFake(start))
	checkFixtures(t, db)
	// Migrations ran once, not once per Open.
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	var n, version int
	if err := db.r.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &version); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || version != len(ms) {
		t.Errorf("schema_migrations: %d rows, version %d; want %d, %d", n, version, len(ms), len(ms))
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := openAt(t, path, nil)
	fixtures(t, db)
	if _, err := db.w.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}

	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("error %q does not say the version", err)
	}
	checkFixtures(t, db) // the refused Open changed nothing
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	cases := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int
		wantErr string
	}{
		{"embedded", nil, nil, ""},
		{"in order", fstest.MapFS{"m/0002_b.sql": file("B"), "m/0001_a.sql": file("A")}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0003_c.sql": file("C")}, nil, "want 2"},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0001_b.sql": file("B")}, nil, "want 2"},
		{"not from one", fstest.MapFS{"m/0002_a.sql": file("A")}, nil, "want 1"},
		{"bad name", fstest.MapFS{"m/1_a.sql": file("A")}, nil, "NNNN_description.sql"},
		{"not sql", fstest.MapFS{"m/0001_a.txt": file("A")}, nil, "NNNN_description.sql"},
		{"stray file", fstest.MapFS{"m/.keep": file("")}, nil, "NNNN_description.sql"},
		{"empty dir", fstest.MapFS{"m": &fstest.MapFile{Mode: fs.ModeDir}}, nil, "no migrations"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fsys fs.FS = tc.fsys
			dir := "m"
			if tc.fsys == nil {
				fsys, dir = migrationFiles, "migrations"
			}
			ms, err := loadMigrations(fsys, dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadMigrations: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadMigrations: %v", err)
			}
			if len(ms) == 0 {
				t.Fatal("no migrations")
			}
			for i, m := range ms {
				if m.version != i+1 || m.sql == "" {
					t.Errorf("migration %d = version %d, %d bytes", i, m.version, len(m.sql))
				}
			}
			if tc.want != nil && len(ms) != len(tc.want) {
				t.Errorf("%d migrations, want %d", len(ms), len(tc.want))
			}
		})
	}
}

// TestMigrateIsAtomic checks that a failing migration leaves the database as
// it was: every pending migration is applied in one transaction.
func TestMigrateIsAtomic(t *testing.T) {
	db := openTest(t, nil)
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	bad := append(ms, // a valid step, then a broken one
		migration{version: len(ms) + 1, name: "good.sql", sql: `CREATE TABLE good (x INTEGER)`},
		migration{version: len(ms) + 2, name: "bad.sql", sql: `CREATE TABLE bad (`},
	)
	if err := migrate(context.Background(), db.w, bad, start); err == nil || !strings.Contains(err.Error(), "bad.sql") {
		t.Fatalf("migrate with a broken migration: %v, want an error naming it", err)
	}
	var version, tables int
	if err := db.r.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := db.r.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'good'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if version != len(ms) || tables != 0 {
		t.Errorf("after a failed migration: version %d, table good exists: %v; want %d, false", version, tables == 1, len(ms))
	}
	// Migrating again to the current version is a no-op.
	if err := migrate(context.Background(), db.w, ms, start); err != nil {
		t.Errorf("migrate again: %v", err)
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, filepath.Join(dir, "gatehouse.db"), clock.NewFake(start))
	fixtures(t, db)
	ctx := context.Background()

	dst := filepath.Join(dir, "backup.db")
	if err := db.Backup(ctx, dst); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode = %v, want 0600", fi.Mode().Perm())
	}
	// Writes after the backup are not in it.
	if err := db.CreateUser(ctx, &account.User{ID: "u2", Username: "bob", CreatedAt: start, UpdatedAt: start}); err != nil {
		t.Fatal(err)
	}
	copyDB := openAt(t, dst, clock.NewFake(start))
	checkFixtures(t, copyDB)
	if _, err := copyDB.UserByID(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID(u2) in the backup: %v, want store.ErrNotFound", err)
	}

	refused := []struct {
		name string
		dst  string
	}{
		{"existing backup", dst},
		{"the database itself", filepath.Join(dir, "gatehouse.db")},
		{"missing directory", filepath.Join(dir, "nope", "backup.db")},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(tc.dst)
			if err := db.Backup(ctx, tc.dst); err == nil {
				t.Fatal("Backup succeeded")
			}
			after, _ := os.ReadFile(tc.dst)
			if string(before) != string(after) {
				t.Error("a refused Backup changed the file")
			}
		})
	}
	checkFixtures(t, db)
}

func TestOpenRefusesNonPaths(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro", "x#y"} {
		t.Run(path, func(t *testing.T) {
			if db, err := Open(context.Background(), path, Options{}); err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", path)
			}
		})
	}
}

func TestTimeOutOfRange(t *testing.T) {
	db := openTest(t, clock.NewFake(start))
	ctx := context.Background()
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &session.Session{ID: "s", Hash: []byte("h"), UserID: "u", CreatedAt: start, LastSeenAt: start,
		IdleExpiresAt: start.Add(time.Hour), ExpiresAt: far}
	err := db.CreateSession(ctx, s)
	if err == nil || errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("CreateSession with a time past 2262: %v, want an out-of-range error", err)
	}
	if _, err := db.SessionByHash(ctx, []byte("h")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionByHash: %v, want store.ErrNotFound", err)
	}
}

// TestTwoHandles checks that two DBs on one file (a server and a CLI
// command) write side by side: the busy timeout and BEGIN IMMEDIATE make
// them wait for each other instead of failing with SQLITE_BUSY.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	dbs := []*DB{openAt(t, path, nil), openAt(t, path, nil)}
	ctx := context.Background()
	const perWorker = 20
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWorker)
	for w := range 4 {
		wg.Go(func() {
			db := dbs[w%2]
			for i := range perWorker {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := db.CreateUser(ctx, &account.User{ID: id, Username: id, CreatedAt: start, UpdatedAt: start}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, db := range dbs {
		users, err := db.ListUsers(ctx, "", 0)
		if err != nil || len(users) != 4*perWorker {
			t.Errorf("handle %d: ListUsers = %d users, %v; want %d", i, len(users), err, 4*perWorker)
		}
	}
}

// crashEnv, when set, makes TestMain's child write users to the database it
// names until it is killed.
const crashEnv = "GATEHOUSE_SQLITE_CRASH_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

// crashChild writes users one by one, printing the id of each once
// CreateUser has returned, until it is killed (or has written 10,000).
func crashChild(path string) int {
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range 10000 {
		id := fmt.Sprintf("user-%05d", i)
		if err := db.CreateUser(ctx, &account.User{ID: id, Username: id, CreatedAt: start, UpdatedAt: start}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(id)
	}
	return 0
}

// TestKillKeepsCommittedWrites kills a writing process with SIGKILL and
// checks that every write it reported as done is in the database.
func TestKillKeepsCommittedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var committed []string
	lines := bufio.NewScanner(out)
	for len(committed) < 30 && lines.Scan() {
		committed = append(committed, lines.Text())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // what the child wrote before it died
		committed = append(committed, lines.Text())
	}
	_ = cmd.Wait()
	if len(committed) < 30 {
		t.Fatalf("the child reported %d writes before dying, want at least 30", len(committed))
	}

	db := openAt(t, path, nil)
	for _, id := range committed {
		if _, err := db.UserByID(context.Background(), id); err != nil {
			t.Errorf("UserByID(%s) after the kill: %v", id, err)
		}
	}
}

// benchDB returns a database with n users, each with one live session, and
// the hashes and user ids.
func benchDB(b *testing.B, n int) (*DB, [][]byte, []string) {
	b.Helper()
	db := openTest(b, clock.NewFake(start))
	ctx := context.Background()
	hashes := make([][]byte, n)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("user-%06d", i)
		hashes[i] = make([]byte, 32)
		_, _ = rand.Read(hashes[i])
		u := &account.User{ID: ids[i], Username: ids[i], PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
			Roles: []string{"user"}, CreatedAt: start, UpdatedAt: start}
		s := &session.Session{ID: "sess-" + ids[i], Hash: hashes[i], UserID: ids[i], CreatedAt: start, LastSeenAt: start,
			IdleExpiresAt: start.Add(time.Hour), ExpiresAt: start.Add(12 * time.Hour), UserAgent: "bench", IP: "127.0.0.1"}
		if err := db.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		if err := db.CreateSession(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	return db, hashes, ids
}

// requestContext returns a context like a request's: cancellable.
func requestContext(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

func BenchmarkSessionByHash(b *testing.B) {
	db, hashes, _ := benchDB(b, 1000)
	ctx := requestContext(b)
	i := 0
	for b.Loop() {
		if _, err := db.SessionByHash(ctx, hashes[i%len(hashes)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkUserByID(b *testing.B) {
	db, _, ids := benchDB(b, 1000)
	ctx := requestContext(b)
	i := 0
	for b.Loop() {
		if _, err := db.UserByID(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAuthenticate is what a session-authenticated request costs the
// store: the session by hash, then its user.
func BenchmarkAuthenticate(b *testing.B) {
	db, hashes, _ := benchDB(b, 1000)
	ctx := requestContext(b)
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			authenticate(b, ctx, db, hashes[i%len(hashes)])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				authenticate(b, ctx, db, hashes[i%len(hashes)])
				i++
			}
		})
	})
}

// authenticate loads the session with that hash and its user.
func authenticate(b *testing.B, ctx context.Context, db *DB, hash []byte) {
	s, err := db.SessionByHash(ctx, hash)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.UserByID(ctx, s.UserID); err != nil {
		b.Fatal(err)
	}
}

// TestLookupsHonourDoneContext checks that the hot-path lookups, which run
// without their context's cancellation, still refuse a context already done.
func TestLookupsHonourDoneContext(t *testing.T) {
	db := openTest(t, clock.NewFake(start))
	fixtures(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		call func() error
	}{
		{"SessionByHash", func() error {
			_, err := db.SessionByHash(ctx, []byte("0123456789abcdef0123456789abcdef"))
			return err
		}},
		{"UserByID", func() error { _, err := db.UserByID(ctx, "u1"); return err }},
		{"UserByUsername", func() error { _, err := db.UserByUsername(ctx, "alice"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", tc.name, err)
			}
		})
	}
	checkFixtures(t, db)
}

// TestClosed checks that a closed DB answers errors, and never hangs.
func TestClosed(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"), Options{Clock: clock.NewFake(start)})
	if err != nil {
		t.Fatal(err)
	}
	fixtures(t, db)
	// Warm the hot path so that its connections are open when closed.
	checkFixtures(t, db)
	if _, err := db.UserByID(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
	}{
		{"SessionByHash", func() error { _, err := db.SessionByHash(ctx, []byte("0123456789abcdef0123456789abcdef")); return err }},
		{"UserByID", func() error { _, err := db.UserByID(ctx, "u1"); return err }},
		{"UserByUsername", func() error { _, err := db.UserByUsername(ctx, "alice"); return err }},
		{"TouchSession", func() error { return db.TouchSession(ctx, []byte("h"), start, start) }},
		{"CreateUser", func() error { return db.CreateUser(ctx, &account.User{ID: "u9", Username: "u9"}) }},
		{"Events", func() error { _, err := db.Events(ctx, audit.Filter{}); return err }},
		{"Ping", func() error { return db.Ping(ctx) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s on a closed DB: %v, want an error", tc.name, err)
			}
		})
	}
}

func TestDriverValues(t *testing.T) {
	ts := time.Unix(0, 1_900_000_000_123_456_789).UTC()
	cases := []struct {
		name     string
		v        any
		text     string
		textErr  bool
		time     time.Time
		timeErr  bool
		timeZero bool
	}{
		{name: "string", v: "abc", text: "abc", timeErr: true},
		{name: "bytes", v: []byte("abc"), text: "abc", timeErr: true},
		{name: "int64", v: int64(1_900_000_000_123_456_789), textErr: true, time: ts},
		{name: "null", v: nil, textErr: true, timeZero: true},
		{name: "float", v: 1.5, textErr: true, timeErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := textValue(tc.v)
			if (err != nil) != tc.textErr || (!tc.textErr && s != tc.text) {
				t.Errorf("textValue(%#v) = %q, %v", tc.v, s, err)
			}
			tm, err := timeValue(tc.v)
			switch {
			case tc.timeErr:
				if err == nil {
					t.Errorf("timeValue(%#v) = %v, want an error", tc.v, tm)
				}
			case err != nil:
				t.Errorf("timeValue(%#v): %v", tc.v, err)
			case tc.timeZero && !tm.IsZero():
				t.Errorf("timeValue(%#v) = %v, want the zero time", tc.v, tm)
			case !tc.timeZero && (!tm.Equal(tc.time) || tm.Location() != time.UTC):
				t.Errorf("timeValue(%#v) = %v, want %v in UTC", tc.v, tm, tc.time)
			}
		})
	}
	// A decoder keeps the first error.
	d := decoder{vals: []driver.Value{int64(1), "x", nil}}
	_, _, _ = d.text(), d.text(), d.time()
	if d.err == nil || !strings.Contains(d.err.Error(), "TEXT") {
		t.Errorf("decoder error = %v, want the first one (TEXT)", d.err)
	}
}
