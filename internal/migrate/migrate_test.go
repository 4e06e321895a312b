package migrate

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/testenv"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/postgres"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
)

// t0 is when the source's records are made; the tests migrate at t0 +
// elapsed, when some of them are dead.
var t0 = time.Date(2031, time.May, 17, 9, 41, 7, 123456789, time.UTC)

const elapsed = 10 * time.Minute

// Sizes of the source.
const (
	nUsers        = 25
	nLiveSessions = 10
	nDeadSessions = 2
	nEvents       = 40
)

// source is an SQLite file with records of every kind, and what the tests
// know of them that no read method of sqlite.DB returns (refresh tokens).
type source struct {
	path string
	// tokens are every refresh token, by family id, in the order of
	// generation then hash.
	tokens map[string][]*refresh.Token
	// liveSessions and deadSessions are the hashes of the sessions.
	liveSessions, deadSessions [][]byte
	// current is the hash of the current (never rotated) token of
	// fam-chain.
	current []byte
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// newSource builds the source at t0, with c, which it leaves at t0 +
// elapsed.
func newSource(t *testing.T, c *clock.Fake) *source {
	t.Helper()
	ctx := context.Background()
	src := &source{path: filepath.Join(t.TempDir(), "gatehouse.db"), tokens: map[string][]*refresh.Token{}}
	db, err := sqlite.Open(ctx, src.path, sqlite.Options{Clock: c})
	must(t, "open source", err)
	defer func() { must(t, "close source", db.Close()) }()

	for i := range nUsers {
		u := &account.User{ID: fmt.Sprintf("user-%02d", i), Username: fmt.Sprintf("name%02d", i),
			PasswordHash: "$argon2id$v=19$m=65536,t=3,p=1$" + hex.EncodeToString(randomBytes(t, 8)),
			CreatedAt:    t0.Add(time.Duration(i) * time.Second), UpdatedAt: t0.Add(time.Duration(i) * time.Minute)}
		switch i {
		case 3:
			u.Roles = []string{"admin", "ops"}
		case 5:
			u.RevokedBefore = t0.Add(30 * time.Second)
		}
		must(t, "create user", db.CreateUser(ctx, u))
	}

	newSession := func(user string, idle, abs time.Duration) []byte {
		s := &session.Session{ID: hex.EncodeToString(randomBytes(t, 16)), Hash: randomBytes(t, 32), UserID: user,
			CreatedAt: t0, LastSeenAt: t0.Add(time.Second), IdleExpiresAt: t0.Add(idle), ExpiresAt: t0.Add(abs),
			UserAgent: "Mozilla/5.0 (" + user + ")", IP: "192.0.2.7"}
		must(t, "create session", db.CreateSession(ctx, s))
		return s.Hash
	}
	for i := range nLiveSessions {
		src.liveSessions = append(src.liveSessions, newSession(fmt.Sprintf("user-%02d", i%7), 2*time.Hour, 24*time.Hour))
	}
	src.deadSessions = append(src.deadSessions,
		newSession("user-01", time.Minute, 24*time.Hour),  // idle-expired
		newSession("user-02", 2*time.Hour, 2*time.Minute), // past its absolute expiry
	)

	// Refresh families, with real rotations.
	r := db.Refresh()
	tokens := map[string]*refresh.Token{} // by hex hash, the latest state
	keep := func(ts ...*refresh.Token) {
		for _, tok := range ts {
			cp := *tok
			tokens[hex.EncodeToString(tok.Hash)] = &cp
		}
	}
	newFamily := func(id, user string, idle time.Duration) *refresh.Token {
		f := &refresh.Family{ID: id, UserID: user, CreatedAt: t0, LastUsedAt: t0, IdleExpiresAt: t0.Add(idle),
			ExpiresAt: t0.Add(30 * 24 * time.Hour), Delivery: refresh.DeliveryCookie, UserAgent: "app/1.0", IP: "198.51.100.1"}
		first := &refresh.Token{Hash: randomBytes(t, 32), FamilyID: id, Generation: 1, CreatedAt: t0, IdleExpiresAt: t0.Add(idle)}
		must(t, "create family "+id, r.CreateFamily(ctx, f, first))
		keep(first)
		return first
	}
	rotate := func(tok []byte, at time.Duration, want refresh.Outcome) []byte {
		next := randomBytes(t, 32)
		res, err := r.Rotate(ctx, refresh.RotateRequest{Presented: tok, NextHash: next, Now: t0.Add(at),
			IdleExpiresAt: t0.Add(at + 14*24*time.Hour), Grace: 10 * time.Second, MaxSiblings: 2})
		must(t, "rotate", err)
		if res.Outcome != want {
			t.Fatalf("rotate: %v, want %v", res.Outcome, want)
		}
		keep(&res.Presented)
		if len(res.Minted.Hash) > 0 {
			keep(&res.Minted)
		}
		return next
	}
	// A chain of four generations.
	tok := newFamily("fam-chain", "user-00", 14*24*time.Hour).Hash
	for i := range 3 {
		tok = rotate(tok, time.Duration(i+1)*time.Second, refresh.OutcomeRotated)
	}
	src.current = tok
	// Siblings: a grace replay of a rotated token.
	first := newFamily("fam-siblings", "user-01", 14*24*time.Hour).Hash
	rotate(first, time.Second, refresh.OutcomeRotated)
	rotate(first, 3*time.Second, refresh.OutcomeGraceReplay)
	// Reuse: a rotated token presented after the grace period.
	first = newFamily("fam-reuse", "user-02", 14*24*time.Hour).Hash
	rotate(first, time.Second, refresh.OutcomeRotated)
	rotate(first, time.Minute, refresh.OutcomeReuse)
	// Revoked by a logout, and dead of idleness.
	newFamily("fam-revoked", "user-03", 14*24*time.Hour)
	_, err = r.RevokeFamily(ctx, "fam-revoked", t0.Add(2*time.Second))
	must(t, "revoke family", err)
	newFamily("fam-idle", "user-04", time.Minute)
	for _, tok := range tokens {
		src.tokens[tok.FamilyID] = append(src.tokens[tok.FamilyID], tok)
	}
	for _, ts := range src.tokens {
		slices.SortFunc(ts, func(a, b *refresh.Token) int {
			return cmp.Or(cmp.Compare(a.Generation, b.Generation), bytes.Compare(a.Hash, b.Hash))
		})
	}

	// Signing keys in each state of their lifecycle.
	for _, k := range []struct {
		kid string
		l   keys.Lifecycle
	}{
		{"kid-pending", keys.Lifecycle{SignsFrom: t0.Add(time.Hour)}},
		{"kid-active", keys.Lifecycle{SignsFrom: t0}},
		{"kid-retired", keys.Lifecycle{SignsFrom: t0.Add(-time.Hour), RetiredAt: t0, RemoveAt: t0.Add(time.Hour)}},
		{"kid-gone", keys.Lifecycle{SignsFrom: t0.Add(-2 * time.Hour), RetiredAt: t0.Add(-time.Hour), RemoveAt: t0.Add(time.Minute)}},
		{"kid-removed", keys.Lifecycle{SignsFrom: t0.Add(-3 * time.Hour), Removed: true}},
	} {
		rec := &keys.Record{KID: k.kid, Alg: "EdDSA", Sealed: randomBytes(t, 60), PublicKey: randomBytes(t, 44),
			CreatedAt: k.l.SignsFrom.Add(-time.Minute), Lifecycle: k.l}
		must(t, "create signing key", db.CreateSigningKey(ctx, rec))
	}

	// Revocation entries of each kind, live and dead.
	rv := db.Revocations()
	must(t, "deny", rv.DenyToken(ctx, "jti-live", t0.Add(time.Hour)))
	must(t, "deny", rv.DenyToken(ctx, "jti-dead", t0.Add(time.Minute)))
	must(t, "revoke sid", rv.RevokeSID(ctx, "fam-revoked", t0.Add(time.Hour)))
	must(t, "revoke sid", rv.RevokeSID(ctx, "sid-dead", t0.Add(time.Minute)))
	must(t, "revoke user", rv.RevokeUser(ctx, "user-05", t0.Add(30*time.Second), t0.Add(time.Hour)))
	must(t, "revoke user", rv.RevokeUser(ctx, "user-06", t0, t0.Add(time.Minute)))

	// Audit events, four per second: the order of events of the same
	// time is the order of appending, which is not the order of the ids.
	for i := range nEvents {
		e := &audit.Event{ID: fmt.Sprintf("ev-%02d", (i*7)%nEvents), Time: t0.Add(time.Duration(i/4) * time.Second),
			Type: "login.success", Severity: "info", UserID: fmt.Sprintf("user-%02d", i%nUsers), Username: "n",
			SessionID: "s", ActorID: "", IP: "203.0.113.9", UserAgent: "UA", Reason: fmt.Sprint(i)}
		must(t, "append event", db.AppendEvent(ctx, e))
	}
	c.Advance(elapsed)
	return src
}

// dest is a fresh destination: a PostgreSQL schema and a Redis prefix of
// its own, dropped and deleted when the test ends.
type dest struct {
	Destination
	rdb    redis.UniversalClient // for counting the keys under prefix
	prefix string
}

func newDest(t *testing.T, c clock.Clock) *dest {
	t.Helper()
	ctx := context.Background()
	pgURL, schema := testenv.PostgresSchema(t)
	redisURL := testenv.Redis(t)
	pg, err := postgres.Open(ctx, pgURL, postgres.Options{Clock: c, Schema: schema})
	must(t, "open PostgreSQL", err)
	t.Cleanup(func() { pg.Close() })
	prefix := "ghtest:mig:" + hex.EncodeToString(randomBytes(t, 8)) + ":"
	rd, err := redisstore.Open(ctx, redisURL, redisstore.Options{Clock: c, Prefix: prefix})
	must(t, "open Redis", err)
	opts, err := redis.ParseURL(redisURL)
	must(t, "parse Redis URL", err)
	d := &dest{Destination: Destination{Postgres: pg, Redis: rd}, rdb: redis.NewClient(opts), prefix: prefix}
	t.Cleanup(func() {
		if keys := d.redisKeys(t); len(keys) > 0 {
			if err := d.rdb.Del(context.Background(), keys...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
			}
		}
		d.rdb.Close()
		rd.Close()
	})
	return d
}

// redisKeys returns the keys under the destination's prefix.
func (d *dest) redisKeys(t *testing.T) []string {
	t.Helper()
	var out []string
	it := d.rdb.Scan(context.Background(), 0, d.prefix+"*", 1000).Iterator()
	for it.Next(context.Background()) {
		out = append(out, it.Val())
	}
	must(t, "scan Redis", it.Err())
	return out
}

// run migrates the source at path to d.
func run(t *testing.T, path string, d *dest, opts Options) (*Report, error) {
	t.Helper()
	ctx := context.Background()
	exp, err := sqlite.OpenExport(ctx, path)
	must(t, "open export", err)
	defer exp.Close()
	return Run(ctx, exp, d.Destination, opts)
}

// wantCounts are the counts of a first migration of newSource; copied and
// present are exchanged on a re-run.
func wantCounts(src *source) []Count {
	nTokens := 0
	for _, ts := range src.tokens {
		nTokens += len(ts)
	}
	c := func(kind string, source, skipped int) Count {
		n := source - skipped
		return Count{Kind: kind, Source: source, Skipped: skipped, Copied: n, Dest: n, Verified: n}
	}
	return []Count{
		c(KindUsers, nUsers, 0),
		c(KindSessions, nLiveSessions+nDeadSessions, nDeadSessions),
		c(KindFamilies, 5, 0),
		c(KindTokens, nTokens, 0),
		c(KindKeys, 5, 0),
		c(KindRevocations, 6, 3),
		c(KindAudit, nEvents, 0),
	}
}

func TestMigrate(t *testing.T) {
	c := clock.NewFake(t0)
	src := newSource(t, c)
	d := newDest(t, c)

	var progress bytes.Buffer
	rep, err := run(t, src.path, d, Options{Clock: c, Workers: 4, Progress: ProgressBar(&progress, false)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := wantCounts(src)
	if !reflect.DeepEqual(rep.Counts, want) {
		t.Fatalf("counts:\n got %+v\nwant %+v", rep.Counts, want)
	}
	if !rep.OK() || len(rep.Conflicts) != 0 {
		t.Fatalf("report not OK: %+v", rep)
	}
	var table bytes.Buffer
	must(t, "WriteTable", rep.WriteTable(&table))
	if !regexp.MustCompile(`(?m)^\s*users\s+25\s+0\s+25\s+0\s+25\s+OK\s*$`).Match(table.Bytes()) ||
		!regexp.MustCompile(`(?m)^\s*sessions\s+12\s+2\s+10\s+0\s+10\s+OK\s*$`).Match(table.Bytes()) {
		t.Errorf("table:\n%s", &table)
	}
	// One line per kind and pass: seven kinds (tokens go with families),
	// three passes.
	if lines := strings.Count(progress.String(), "\n"); lines != 3*6 {
		t.Errorf("%d progress lines, want 18:\n%s", lines, &progress)
	}
	if !strings.Contains(progress.String(), "copy    audit events      40/40 [##############################] 100%") {
		t.Errorf("progress:\n%s", &progress)
	}

	checkDestination(t, src, d, c)

	// A second run copies nothing and finds everything present.
	rep, err = run(t, src.path, d, Options{Clock: c})
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	for i := range want {
		want[i].Present, want[i].Copied = want[i].Copied, 0
	}
	if !reflect.DeepEqual(rep.Counts, want) {
		t.Fatalf("counts of the second run:\n got %+v\nwant %+v", rep.Counts, want)
	}
	checkDestination(t, src, d, c)

	// The copied families keep working: the current token of the chain
	// rotates, and a rotated one is reuse, which ends the family.
	rf := d.Postgres.Refresh()
	req := func(tok []byte) refresh.RotateRequest {
		now := c.Now()
		return refresh.RotateRequest{Presented: tok, NextHash: randomBytes(t, 32), Now: now,
			IdleExpiresAt: now.Add(time.Hour), Grace: 10 * time.Second, MaxSiblings: 2}
	}
	res, err := rf.Rotate(context.Background(), req(src.current))
	if err != nil || res.Outcome != refresh.OutcomeRotated {
		t.Fatalf("rotating the current token after the migration: %v, %v", res.Outcome, err)
	}
	res, err = rf.Rotate(context.Background(), req(src.tokens["fam-chain"][1].Hash))
	if err != nil || res.Outcome != refresh.OutcomeReuse {
		t.Fatalf("presenting a rotated token after the migration: %v, %v; want reuse", res.Outcome, err)
	}
}

// checkDestination compares, through the read methods of the stores, every
// record of the source with the destination's.
func checkDestination(t *testing.T, src *source, d *dest, c *clock.Fake) {
	t.Helper()
	ctx := context.Background()
	from, err := sqlite.Open(ctx, src.path, sqlite.Options{Clock: c})
	must(t, "open source", err)
	defer from.Close()
	pg, rd := d.Postgres, d.Redis

	srcUsers, err := from.ListUsers(ctx, "", 0)
	must(t, "list source users", err)
	dstUsers, err := pg.ListUsers(ctx, "", 0)
	must(t, "list destination users", err)
	if len(srcUsers) != nUsers || !reflect.DeepEqual(dstUsers, srcUsers) {
		t.Errorf("users:\n got %+v\nwant %+v", dstUsers, srcUsers)
	}
	for _, u := range srcUsers {
		got, err := pg.UserByID(ctx, u.ID)
		if err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("user %s: %+v, %v; want %+v", u.ID, got, err, u)
		}
		// Sessions, by owner, newest first.
		want, err := from.SessionsByUser(ctx, u.ID)
		must(t, "source sessions", err)
		have, err := rd.SessionsByUser(ctx, u.ID)
		must(t, "destination sessions", err)
		if !reflect.DeepEqual(have, want) {
			t.Errorf("sessions of %s:\n got %+v\nwant %+v", u.ID, have, want)
		}
		// Live refresh families, by owner.
		wantF, err := from.Refresh().FamiliesByUser(ctx, u.ID)
		must(t, "source families", err)
		haveF, err := pg.Refresh().FamiliesByUser(ctx, u.ID)
		must(t, "destination families", err)
		if !reflect.DeepEqual(haveF, wantF) {
			t.Errorf("families of %s:\n got %+v\nwant %+v", u.ID, haveF, wantF)
		}
	}
	for _, h := range src.liveSessions {
		want, err := from.SessionByHash(ctx, h)
		must(t, "source session", err)
		got, err := rd.SessionByHash(ctx, h)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("session %s: %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	for _, h := range src.deadSessions {
		if s, err := rd.SessionByHash(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("dead session copied: %+v, %v", s, err)
		}
	}

	for id, toks := range src.tokens {
		want, err := from.Refresh().Family(ctx, id)
		must(t, "source family", err)
		got, err := pg.Refresh().Family(ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("family %s: %+v, %v; want %+v", id, got, err, want)
		}
		gotToks, err := pg.Refresh().FamilyTokens(ctx, id)
		must(t, "destination tokens", err)
		if !reflect.DeepEqual(gotToks, toks) {
			t.Errorf("tokens of %s:\n got %+v\nwant %+v", id, gotToks, toks)
		}
		for _, tok := range toks {
			if f, err := pg.Refresh().FamilyByTokenHash(ctx, tok.Hash); err != nil || f.ID != id {
				t.Errorf("token of generation %d of %s leads to %+v, %v", tok.Generation, id, f, err)
			}
		}
	}
	if f, err := pg.Refresh().Family(ctx, "fam-reuse"); err != nil || f.RevokedAt.IsZero() {
		t.Errorf("the family ended by reuse is not revoked: %+v, %v", f, err)
	}

	wantKeys, err := from.SigningKeys(ctx)
	must(t, "source keys", err)
	gotKeys, err := pg.SigningKeys(ctx)
	must(t, "destination keys", err)
	if len(wantKeys) != 5 || !reflect.DeepEqual(gotKeys, wantKeys) {
		t.Errorf("signing keys:\n got %+v\nwant %+v", gotKeys, wantKeys)
	}

	byID := func(a, b revocation.Entry) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID)) }
	wantRv, err := from.Revocations().Load(ctx)
	must(t, "source revocations", err)
	gotRv, err := rd.Revocations().Load(ctx)
	must(t, "destination revocations", err)
	slices.SortFunc(wantRv, byID)
	slices.SortFunc(gotRv, byID)
	if len(wantRv) != 3 || !reflect.DeepEqual(gotRv, wantRv) {
		t.Errorf("revocations:\n got %+v\nwant %+v", gotRv, wantRv)
	}

	for _, f := range []audit.Filter{{}, {UserID: "user-03"}, {Limit: 7}} {
		want, err := from.Events(ctx, f)
		must(t, "source events", err)
		got, err := pg.Events(ctx, f)
		must(t, "destination events", err)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("events %+v (newest first, same-time events in the order of appending):\n got %+v\nwant %+v", f, got, want)
		}
	}
}

// TestMigrateConflict: a destination that holds one record of the source
// with different data is refused before anything is written.
func TestMigrateConflict(t *testing.T) {
	c := clock.NewFake(t0)
	src := newSource(t, c)
	ctx := context.Background()
	from, err := sqlite.Open(ctx, src.path, sqlite.Options{Clock: c})
	must(t, "open source", err)
	t.Cleanup(func() { from.Close() })
	user := func(id string) *account.User {
		u, err := from.UserByID(ctx, id)
		must(t, "source user", err)
		return u
	}
	cases := []struct {
		name       string
		setup      func(t *testing.T, d *dest)
		kind, id   string
		wantReason string
	}{
		{"user with another password hash", func(t *testing.T, d *dest) {
			u := user("user-01")
			u.PasswordHash = "$argon2id$other"
			must(t, "create", d.Postgres.CreateUser(ctx, u))
		}, KindUsers, "user-01", "password hash differs"},
		{"username held by another user", func(t *testing.T, d *dest) {
			must(t, "create", d.Postgres.CreateUser(ctx, &account.User{ID: "someone-else", Username: "name02", PasswordHash: "h"}))
		}, KindUsers, "user-02", "username is held by user someone-else"},
		{"session from another ip", func(t *testing.T, d *dest) {
			s, err := from.SessionByHash(ctx, src.liveSessions[0])
			must(t, "source session", err)
			s.IP = "192.0.2.99"
			must(t, "create", d.Redis.CreateSession(ctx, s))
		}, KindSessions, "", "ip differs"},
		{"family rotated since", func(t *testing.T, d *dest) {
			f, err := from.Refresh().Family(ctx, "fam-chain")
			must(t, "source family", err)
			toks := slices.Clone(src.tokens["fam-chain"])
			last := *toks[len(toks)-1]
			last.RotatedAt, last.Children = c.Now(), 1
			toks[len(toks)-1] = &last
			must(t, "import", d.Postgres.Refresh().ImportFamily(ctx, f, toks))
		}, KindFamilies, "fam-chain", "token 4 rotated at differs"},
		{"signing key removed since", func(t *testing.T, d *dest) {
			recs, err := from.SigningKeys(ctx)
			must(t, "source keys", err)
			i := slices.IndexFunc(recs, func(r *keys.Record) bool { return r.KID == "kid-active" })
			recs[i].Removed = true
			must(t, "create", d.Postgres.CreateSigningKey(ctx, recs[i]))
		}, KindKeys, "kid-active", "removed differs"},
		{"revocation kept longer", func(t *testing.T, d *dest) {
			must(t, "revoke", d.Redis.Revocations().RevokeUser(ctx, "user-05", t0.Add(30*time.Second), t0.Add(2*time.Hour)))
		}, KindRevocations, "user:user-05", "until differs"},
		{"audit event of another type", func(t *testing.T, d *dest) {
			evs, err := from.Events(ctx, audit.Filter{Limit: 1})
			must(t, "source events", err)
			evs[0].Type = "logout"
			must(t, "append", d.Postgres.AppendEvent(ctx, evs[0]))
		}, KindAudit, "", "type differs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDest(t, c)
			tc.setup(t, d)
			before, err := d.Postgres.Counts(ctx)
			must(t, "count", err)
			keysBefore := d.redisKeys(t)

			rep, err := run(t, src.path, d, Options{Clock: c})
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Run = %v, want ErrConflict", err)
			}
			if rep == nil || rep.Copied || len(rep.Conflicts) != 1 {
				t.Fatalf("report %+v, want one conflict and no copy", rep)
			}
			got := rep.Conflicts[0]
			if got.Kind != tc.kind || (tc.id != "" && got.ID != tc.id) || got.Reason != tc.wantReason {
				t.Errorf("conflict %+v, want %s %s: %s", got, tc.kind, tc.id, tc.wantReason)
			}
			var table bytes.Buffer
			must(t, "WriteTable", rep.WriteTable(&table))
			if !strings.Contains(table.String(), "CONFLICT (1)") || !strings.Contains(table.String(), got.String()) {
				t.Errorf("table does not show the conflict:\n%s", &table)
			}

			after, err := d.Postgres.Counts(ctx)
			must(t, "count", err)
			if after != before {
				t.Errorf("PostgreSQL rows %+v after the refused run, %+v before", after, before)
			}
			if keysAfter := d.redisKeys(t); !slices.Equal(slices.Sorted(slices.Values(keysAfter)), slices.Sorted(slices.Values(keysBefore))) {
				t.Errorf("Redis keys %v after the refused run, %v before", keysAfter, keysBefore)
			}
		})
	}
}

// TestMigrateDryRun: a dry run counts what it would copy and writes
// nothing.
func TestMigrateDryRun(t *testing.T) {
	c := clock.NewFake(t0)
	src := newSource(t, c)
	d := newDest(t, c)
	rep, err := run(t, src.path, d, Options{Clock: c, DryRun: true})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := wantCounts(src)
	for i := range want {
		want[i].Dest, want[i].Verified = 0, 0
	}
	if rep.Copied || rep.OK() || !reflect.DeepEqual(rep.Counts, want) {
		t.Fatalf("dry run report %+v, want counts %+v", rep, want)
	}
	var table bytes.Buffer
	must(t, "WriteTable", rep.WriteTable(&table))
	if !strings.Contains(table.String(), "TO COPY") || !regexp.MustCompile(`(?m)^\s*users\s+25\s+0\s+25\s+0\s+0\s+dry run\s*$`).Match(table.Bytes()) {
		t.Errorf("table:\n%s", &table)
	}
	counts, err := d.Postgres.Counts(context.Background())
	must(t, "count", err)
	if counts != (postgres.Counts{}) {
		t.Errorf("the dry run wrote to PostgreSQL: %+v", counts)
	}
	if keys := d.redisKeys(t); len(keys) != 0 {
		t.Errorf("the dry run wrote to Redis: %v", keys)
	}
}

// TestMigrateResumes: after a partial migration, a run copies what is
// missing and counts the rest as present.
func TestMigrateResumes(t *testing.T) {
	c := clock.NewFake(t0)
	src := newSource(t, c)
	d := newDest(t, c)
	ctx := context.Background()

	// What an interrupted run would have written: some of each kind, and
	// the first audit events in the order of appending.
	exp, err := sqlite.OpenExport(ctx, src.path)
	must(t, "open export", err)
	n := 0
	must(t, "users", exp.Users(ctx, func(u *account.User) error {
		if n++; n <= 10 {
			return d.Postgres.CreateUser(ctx, u)
		}
		return nil
	}))
	n = 0
	must(t, "families", exp.RefreshFamilies(ctx, func(f *refresh.Family, ts []*refresh.Token) error {
		if n++; n <= 2 {
			return d.Postgres.Refresh().ImportFamily(ctx, f, ts)
		}
		return nil
	}))
	n = 0
	must(t, "events", exp.AuditEvents(ctx, func(e *audit.Event) error {
		if n++; n <= 9 {
			return d.Postgres.AppendEvent(ctx, e)
		}
		return nil
	}))
	live, err := sqlite.Open(ctx, src.path, sqlite.Options{Clock: c})
	must(t, "open source", err)
	s, err := live.SessionByHash(ctx, src.liveSessions[3])
	must(t, "source session", err)
	must(t, "session", d.Redis.CreateSession(ctx, s))
	must(t, "revocation", d.Redis.Revocations().DenyToken(ctx, "jti-live", t0.Add(time.Hour)))
	must(t, "close source", live.Close())
	must(t, "close export", exp.Close())

	rep, err := run(t, src.path, d, Options{Clock: c})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := wantCounts(src)
	present := map[string]int{KindUsers: 10, KindSessions: 1, KindFamilies: 2, KindRevocations: 1, KindAudit: 9}
	for i := range want {
		p := present[want[i].Kind]
		if want[i].Kind == KindTokens {
			p = len(src.tokens["fam-chain"]) + len(src.tokens["fam-idle"]) // the first two by id
		}
		want[i].Present, want[i].Copied = p, want[i].Copied-p
	}
	if !reflect.DeepEqual(rep.Counts, want) {
		t.Fatalf("counts:\n got %+v\nwant %+v", rep.Counts, want)
	}
	checkDestination(t, src, d, c)
}

func TestMigrateCountOK(t *testing.T) {
	cases := []struct {
		name string
		c    Count
		want bool
	}{
		{"all verified", Count{Source: 5, Skipped: 1, Copied: 4, Dest: 4, Verified: 4}, true},
		{"destination holds more", Count{Source: 5, Copied: 5, Dest: 7, Verified: 5}, true},
		{"one not verified", Count{Source: 5, Copied: 5, Dest: 5, Verified: 4}, false},
		{"destination holds fewer", Count{Source: 5, Copied: 5, Dest: 4, Verified: 5}, false},
		{"a conflict", Count{Source: 5, Copied: 4, Conflicts: 1, Dest: 5, Verified: 5}, false},
		{"empty", Count{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.OK(); got != tc.want {
				t.Errorf("OK() = %v, want %v", got, tc.want)
			}
		})
	}
	r := &Report{Copied: true, Counts: []Count{cases[2].c}}
	r.Counts[0].Kind = KindUsers
	var b bytes.Buffer
	must(t, "WriteTable", r.WriteTable(&b))
	if r.OK() || !strings.Contains(b.String(), "MISMATCH (4 of 5 verified)") {
		t.Errorf("a mismatch: OK %v, table:\n%s", r.OK(), &b)
	}
}

func TestMigrateProgressBar(t *testing.T) {
	steps := []Progress{
		{Phase: PhaseCopy, Kind: KindUsers, Done: 0, Total: 4},
		{Phase: PhaseCopy, Kind: KindUsers, Done: 1, Total: 4},
		{Phase: PhaseCopy, Kind: KindUsers, Done: 2, Total: 4},
		{Phase: PhaseCopy, Kind: KindUsers, Done: 4, Total: 4},
		{Phase: PhaseCopy, Kind: KindUsers, Done: 4, Total: 4, End: true},
		{Phase: PhaseCopy, Kind: KindKeys, Done: 0, Total: 0},
		{Phase: PhaseCopy, Kind: KindKeys, Done: 0, Total: 0, End: true},
	}
	cases := []struct {
		name     string
		terminal bool
		want     string
	}{
		{"log", false, "" +
			"copy    users             4/4 [##############################] 100%\n" +
			"copy    signing keys      0/0 [##############################] 100%\n"},
		{"terminal", true, "" +
			"\rcopy    users             0/4 [..............................]   0%" +
			"\rcopy    users             1/4 [#######.......................]  25%" +
			"\rcopy    users             2/4 [###############...............]  50%" +
			"\rcopy    users             4/4 [##############################] 100%\n" +
			"\rcopy    signing keys      0/0 [##############################] 100%\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			p := ProgressBar(&b, tc.terminal)
			for _, s := range steps {
				p(s)
			}
			if b.String() != tc.want {
				t.Errorf("output:\n%q\nwant:\n%q", b.String(), tc.want)
			}
		})
	}
}
