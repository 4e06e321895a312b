package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/testenv"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
)

// openTest opens a database in a new schema of the test server, closed and
// dropped at the end of the test.
func openTest(t testing.TB, c clock.Clock) *DB {
	t.Helper()
	url, schema := testenv.PostgresSchema(t)
	return openAt(t, url, schema, c)
}

// openAt opens the database in schema, closed at the end of the test.
func openAt(t testing.TB, url, schema string, c clock.Clock) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, Options{Clock: c, Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
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

func TestKeys(t *testing.T) {
	storetest.TestKeys(t, func(t *testing.T, c clock.Clock) keys.Store { return openTest(t, c) })
}

func TestRefresh(t *testing.T) {
	storetest.TestRefresh(t, func(t *testing.T, c clock.Clock) refresh.Store { return openTest(t, c).Refresh() })
}

func TestRevocation(t *testing.T) {
	storetest.TestRevocation(t, func(t *testing.T, c clock.Clock) revocation.Store { return openTest(t, c).Revocations() })
}

// start is the time of the fake clocks below.
var start = time.Date(2031, time.May, 17, 9, 41, 7, 123456789, time.UTC)

// newHash returns a random 32-byte token hash.
func newHash(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// newFamily returns a family of userID created at now, and its first token.
func newFamily(t testing.TB, id, userID string, now time.Time) (*refresh.Family, *refresh.Token) {
	f := &refresh.Family{ID: id, UserID: userID, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(10 * time.Hour), Delivery: refresh.DeliveryBody}
	tok := &refresh.Token{Hash: newHash(t), FamilyID: id, Generation: 1, CreatedAt: now, IdleExpiresAt: now.Add(time.Hour)}
	return f, tok
}

// migrationCount returns how many migrations the binary embeds.
func migrationCount(t testing.TB) int {
	t.Helper()
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

// TestConcurrentOpen opens one fresh schema from several goroutines at once,
// as instances starting together do: every Open succeeds, and the
// migrations ran once (a second run of 0001 would fail on its CREATE
// TABLEs, and schema_migrations holds one row per migration).
func TestConcurrentOpen(t *testing.T) {
	const n = 5
	url, schema := testenv.PostgresSchema(t)
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dbs[i], errs[i] = Open(context.Background(), url, Options{Clock: clock.NewFake(start), Schema: schema})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if t.Failed() {
		return
	}
	var rows, versions int
	if err := dbs[0].pool.QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if want := migrationCount(t); rows != want || versions != want {
		t.Errorf("schema_migrations holds %d rows of %d versions, want %d", rows, versions, want)
	}
	// Every instance works on the same tables.
	for i, db := range dbs {
		u := &account.User{ID: fmt.Sprintf("u%d", i), Username: fmt.Sprintf("user%d", i), PasswordHash: "h"}
		if err := db.CreateUser(context.Background(), u); err != nil {
			t.Errorf("CreateUser through instance %d: %v", i, err)
		}
	}
	if us, err := dbs[0].ListUsers(context.Background(), "", 0); err != nil || len(us) != n {
		t.Errorf("ListUsers = %d users, %v; want %d", len(us), err, n)
	}
}

// TestOpenCreatesSchema checks that Open creates a schema that does not
// exist yet, and that reopening an up-to-date schema changes nothing.
func TestOpenCreatesSchema(t *testing.T) {
	url, parent := testenv.PostgresSchema(t)
	// A name no other test uses; dropped before the parent's cleanup runs.
	schema := parent + "_new"
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Error(err)
		}
	})
	db := openAt(t, url, schema, clock.NewFake(start))
	u := &account.User{ID: "u1", Username: "alice", PasswordHash: "h", CreatedAt: start}
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	db.Close()
	db = openAt(t, url, schema, clock.NewFake(start))
	got, err := db.UserByUsername(context.Background(), "alice")
	if err != nil || got.ID != "u1" {
		t.Errorf("UserByUsername after reopening = %+v, %v", got, err)
	}
	var rows int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := migrationCount(t); rows != want {
		t.Errorf("schema_migrations holds %d rows after reopening, want %d", rows, want)
	}
}

// TestSchemaTooNew checks that Open refuses a schema migrated by a newer
// binary, and changes nothing in it.
func TestSchemaTooNew(t *testing.T) {
	url, schema := testenv.PostgresSchema(t)
	db := openAt(t, url, schema, nil)
	next := migrationCount(t) + 1
	if _, err := db.pool.Exec(context.Background(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future.sql', 0)`, next); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(context.Background(), url, Options{Schema: schema})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestOpenRefuses checks the options and URLs Open refuses before it
// touches a database.
func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		schema string
	}{
		{"schema with a quote", "postgres://127.0.0.1/test", `a"b`},
		{"schema with upper case", "postgres://127.0.0.1/test", "Gatehouse"},
		{"schema with a dot", "postgres://127.0.0.1/test", "a.b"},
		{"schema starting with a digit", "postgres://127.0.0.1/test", "1abc"},
		{"schema too long", "postgres://127.0.0.1/test", strings.Repeat("a", 64)},
		{"schema with a search path", "postgres://127.0.0.1/test", "a,public"},
		{"malformed URL", "postgres://user:secret@[::1/test", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(context.Background(), tt.url, Options{Schema: tt.schema})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error quotes the password: %v", err)
			}
		})
	}
}

// TestSchemasAreIsolated checks that two databases in two schemas of one
// server see nothing of each other.
func TestSchemasAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := openTest(t, nil), openTest(t, nil)
	u := &account.User{ID: "u1", Username: "alice", PasswordHash: "h"}
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UserByID(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID in the other schema: %v, want ErrNotFound", err)
	}
	if err := b.CreateUser(ctx, u); err != nil {
		t.Errorf("CreateUser of the same user in the other schema: %v", err)
	}
}

// TestUnstorableKeys checks that a key PostgreSQL cannot hold in a TEXT
// column (invalid UTF-8, NUL), as a URL path may carry, is not found, as in
// the other backends, rather than an encoding error from the server; and
// that writing one is an error, not a conflict.
func TestUnstorableKeys(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	db := openTest(t, c)
	rs := db.Refresh()
	for _, key := range []string{"\xff", "a\x00b", "caf\xc3"} {
		notFound := []struct {
			name string
			f    func() error
		}{
			{"UserByID", func() error { _, err := db.UserByID(ctx, key); return err }},
			{"UserByUsername", func() error { _, err := db.UserByUsername(ctx, key); return err }},
			{"SetPasswordHash", func() error { return db.SetPasswordHash(ctx, key, "h", start) }},
			{"SetRoles", func() error { return db.SetRoles(ctx, key, nil, start) }},
			{"SetRevokedBefore", func() error { return db.SetRevokedBefore(ctx, key, start) }},
			{"UpdateSigningKey", func() error { return db.UpdateSigningKey(ctx, key, keys.Lifecycle{}) }},
			{"Family", func() error { _, err := rs.Family(ctx, key); return err }},
			{"RevokeFamily", func() error { _, err := rs.RevokeFamily(ctx, key, start); return err }},
			{"DeleteUserSession user", func() error { _, err := db.DeleteUserSession(ctx, key, "s"); return err }},
			{"DeleteUserSession id", func() error { _, err := db.DeleteUserSession(ctx, "u", key); return err }},
		}
		for _, tt := range notFound {
			t.Run(fmt.Sprintf("%s(%q)", tt.name, key), func(t *testing.T) {
				if err := tt.f(); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("error %v, want ErrNotFound", err)
				}
			})
		}
		empty := []struct {
			name string
			f    func() (int, error)
		}{
			{"Events by user", func() (int, error) { es, err := db.Events(ctx, audit.Filter{UserID: key}); return len(es), err }},
			{"Events by type", func() (int, error) { es, err := db.Events(ctx, audit.Filter{Type: key}); return len(es), err }},
			{"FamiliesByUser", func() (int, error) { fs, err := rs.FamiliesByUser(ctx, key); return len(fs), err }},
			{"RevokeUserFamilies", func() (int, error) { fs, err := rs.RevokeUserFamilies(ctx, key, start); return len(fs), err }},
			{"SessionsByUser", func() (int, error) { ss, err := db.SessionsByUser(ctx, key); return len(ss), err }},
			{"DeleteUserSessions", func() (int, error) { ss, err := db.DeleteUserSessions(ctx, key, nil); return len(ss), err }},
		}
		for _, tt := range empty {
			t.Run(fmt.Sprintf("%s(%q)", tt.name, key), func(t *testing.T) {
				if n, err := tt.f(); err != nil || n != 0 {
					t.Errorf("= %d results, %v; want none and no error", n, err)
				}
			})
		}
		t.Run(fmt.Sprintf("CreateUser(%q)", key), func(t *testing.T) {
			err := db.CreateUser(ctx, &account.User{ID: key, Username: "u", PasswordHash: "h"})
			if err == nil || errors.Is(err, store.ErrConflict) {
				t.Errorf("CreateUser = %v, want an error other than a conflict", err)
			}
		})
	}
}

// TestPurgeTokens checks that PurgeTokens purges refresh families and
// revocation entries, and that DB.Purge, which purges sessions, leaves them.
func TestPurgeTokens(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	db := openTest(t, c)
	rs, rv := db.Refresh(), db.Revocations()

	short, shortTok := newFamily(t, "fam-short", "alice", start)
	short.ExpiresAt = start.Add(time.Minute)
	long, longTok := newFamily(t, "fam-long", "alice", start)
	for _, f := range []struct {
		f   *refresh.Family
		tok *refresh.Token
	}{{short, shortTok}, {long, longTok}} {
		if err := rs.CreateFamily(ctx, f.f, f.tok); err != nil {
			t.Fatalf("CreateFamily: %v", err)
		}
	}
	if err := rv.DenyToken(ctx, "jti", start.Add(time.Minute)); err != nil {
		t.Fatalf("DenyToken: %v", err)
	}
	if err := rv.RevokeUser(ctx, "alice", start, start.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if err := rv.RevokeSID(ctx, "sid", start.Add(time.Hour)); err != nil {
		t.Fatalf("RevokeSID: %v", err)
	}
	sess := &session.Session{ID: "s1", Hash: newHash(t), UserID: "alice", CreatedAt: start, LastSeenAt: start,
		IdleExpiresAt: start.Add(time.Minute), ExpiresAt: start.Add(time.Hour)}
	if err := db.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}

	purge := func(name string, f func(context.Context) (int, error), want int) {
		t.Helper()
		n, err := f(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n != want {
			t.Errorf("%s = %d, want %d", name, n, want)
		}
	}
	purge("PurgeTokens before any expiry", db.PurgeTokens, 0)
	c.Advance(time.Minute)
	purge("DB.Purge", db.Purge, 1) // the session only
	if _, err := rs.Family(ctx, short.ID); err != nil {
		t.Errorf("DB.Purge deleted a refresh family: %v", err)
	}
	if es, err := rv.Load(ctx); err != nil || len(es) != 1 {
		t.Errorf("Load after DB.Purge = %v, %v; want the sid only", es, err)
	}
	purge("PurgeTokens", db.PurgeTokens, 3) // one family, two entries
	if _, err := rs.FamilyByTokenHash(ctx, shortTok.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FamilyByTokenHash of a purged family: %v, want ErrNotFound", err)
	}
	if _, err := rs.FamilyByTokenHash(ctx, longTok.Hash); err != nil {
		t.Errorf("FamilyByTokenHash of a live family: %v", err)
	}
	var tokens int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens`).Scan(&tokens); err != nil {
		t.Fatal(err)
	}
	if tokens != 1 {
		t.Errorf("%d refresh tokens left, want 1: the purged family's token stayed", tokens)
	}
	purge("PurgeTokens again", db.PurgeTokens, 0)
}

// TestTokensAcrossInstances checks that two DBs on one schema, as two
// instances, share token-mode state: a token rotated through one is reuse
// through the other.
func TestTokensAcrossInstances(t *testing.T) {
	ctx := context.Background()
	url, schema := testenv.PostgresSchema(t)
	c := clock.NewFake(start)
	a, b := openAt(t, url, schema, c), openAt(t, url, schema, c)
	f, tok := newFamily(t, "fam", "alice", start)
	if err := a.Refresh().CreateFamily(ctx, f, tok); err != nil {
		t.Fatal(err)
	}
	req := refresh.RotateRequest{Presented: tok.Hash, NextHash: newHash(t), Now: start.Add(time.Minute),
		IdleExpiresAt: start.Add(time.Hour + time.Minute), Grace: 10 * time.Second, MaxSiblings: 4}
	if res, err := a.Refresh().Rotate(ctx, req); err != nil || res.Outcome != refresh.OutcomeRotated {
		t.Fatalf("Rotate through a = %v, %v", res.Outcome, err)
	}
	req.NextHash, req.Now = newHash(t), start.Add(2*time.Minute)
	res, err := b.Refresh().Rotate(ctx, req)
	if err != nil || res.Outcome != refresh.OutcomeReuse {
		t.Fatalf("Rotate of the rotated token through b = %v, %v; want reuse", res.Outcome, err)
	}
	if got, err := a.Refresh().Family(ctx, "fam"); err != nil || !got.RevokedAt.Equal(req.Now) {
		t.Errorf("family through a = %+v, %v; want revoked at %v", got, err, req.Now)
	}
}

// TestRotateRefusesBadRequests checks the requests Rotate refuses before
// touching the database.
func TestRotateRefusesBadRequests(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, clock.NewFake(start))
	f, tok := newFamily(t, "fam", "alice", start)
	if err := db.Refresh().CreateFamily(ctx, f, tok); err != nil {
		t.Fatal(err)
	}
	good := refresh.RotateRequest{Presented: tok.Hash, NextHash: newHash(t), Now: start,
		IdleExpiresAt: start.Add(time.Hour), Grace: time.Second, MaxSiblings: 1}
	tests := []struct {
		name string
		edit func(r *refresh.RotateRequest)
	}{
		{"empty presented hash", func(r *refresh.RotateRequest) { r.Presented = nil }},
		{"empty next hash", func(r *refresh.RotateRequest) { r.NextHash = nil }},
		{"zero time", func(r *refresh.RotateRequest) { r.Now = time.Time{} }},
		{"time out of range", func(r *refresh.RotateRequest) { r.Now = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"idle expiry out of range", func(r *refresh.RotateRequest) {
			r.IdleExpiresAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.edit(&r)
			if _, err := db.Refresh().Rotate(ctx, r); err == nil {
				t.Fatal("Rotate accepted the request")
			}
		})
	}
	// None of them rotated the token.
	if res, err := db.Refresh().Rotate(ctx, good); err != nil || res.Outcome != refresh.OutcomeRotated {
		t.Errorf("Rotate of the good request = %v, %v; want rotated", res.Outcome, err)
	}
}

// TestQueryPlans checks that the queries that must not scan a whole table
// go through an index, and that the ordered ones need no sort: with
// sequential scans disabled, the planner picks a usable index if there is
// one.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, nil)
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	// Restore the setting before the connection goes back to the pool.
	defer func() {
		if _, err := conn.Exec(ctx, `RESET enable_seqscan`); err != nil {
			t.Error(err)
		}
	}()

	hash := newHash(t)
	tests := []struct {
		name   string
		query  string
		args   []any
		noSort bool
	}{
		{"UserByID", userByIDSQL, []any{"u"}, false},
		{"UserByUsername", userByUsernameSQL, []any{"alice"}, false},
		{"ListUsers", listUsersSQL, []any{"a", 10}, true},
		{"SessionByHash", sessionByHashSQL, []any{int64(1), hash}, false},
		{"SessionsByUser", sessionsByUserSQL, []any{int64(1), "u"}, false},
		{"Events", eventsSQL[0][0], []any{10}, true},
		{"Events by user", eventsSQL[1][0], []any{"u", 10}, true},
		{"Events by type", eventsSQL[0][1], []any{"login.success", 10}, true},
		{"FamilyByTokenHash", familyByHashSQL, []any{hash}, false},
		{"FamiliesByUser", familiesByUserSQL, []any{int64(1), "u"}, false},
		{"lock family", lockFamilySQL, []any{hash}, false},
		{"lock token", lockTokenSQL, []any{hash, hash}, false},
		{"RevokeUserFamilies", revokeUserFamiliesSQL, []any{int64(1), "u"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := conn.Query(ctx, "EXPLAIN "+tt.query, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("the query scans a table:\n%s", plan)
			}
			if tt.noSort && strings.Contains(plan, "Sort") {
				t.Errorf("the query sorts:\n%s", plan)
			}
		})
	}
}

// BenchmarkRefreshRotate measures one rotation of a chain: each iteration
// presents the token the previous one minted. Each rotation is one
// transaction of four round trips to the server, committed durably.
func BenchmarkRefreshRotate(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, clock.NewFake(start))
	rs := db.Refresh()
	f, tok := newFamily(b, "fam", "alice", start)
	if err := rs.CreateFamily(ctx, f, tok); err != nil {
		b.Fatal(err)
	}
	presented := tok.Hash
	now := start
	for b.Loop() {
		now = now.Add(time.Millisecond)
		res, err := rs.Rotate(ctx, refresh.RotateRequest{Presented: presented, NextHash: newHash(b), Now: now,
			IdleExpiresAt: now.Add(time.Hour), Grace: 10 * time.Second, MaxSiblings: 32})
		if err != nil {
			b.Fatal(err)
		}
		if res.Outcome != refresh.OutcomeRotated {
			b.Fatalf("outcome %v", res.Outcome)
		}
		presented = res.Minted.Hash
	}
}

// BenchmarkRefreshRotateParallel measures rotations of independent
// families from several goroutines, as several clients of one instance.
func BenchmarkRefreshRotateParallel(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, clock.NewFake(start))
	rs := db.Refresh()
	var (
		mu sync.Mutex
		id int
	)
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		id++
		famID := fmt.Sprintf("fam-%d", id)
		mu.Unlock()
		f, tok := newFamily(b, famID, "alice", start)
		if err := rs.CreateFamily(ctx, f, tok); err != nil {
			b.Error(err)
			return
		}
		presented, now := tok.Hash, start
		for pb.Next() {
			now = now.Add(time.Millisecond)
			res, err := rs.Rotate(ctx, refresh.RotateRequest{Presented: presented, NextHash: newHash(b), Now: now,
				IdleExpiresAt: now.Add(time.Hour), Grace: 10 * time.Second, MaxSiblings: 32})
			if err != nil || res.Outcome != refresh.OutcomeRotated {
				b.Errorf("Rotate = %v, %v", res.Outcome, err)
				return
			}
			presented = res.Minted.Hash
		}
	})
}
