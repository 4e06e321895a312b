package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
)

// TestExportCoversEveryTable fails when a migration adds a table that
// Export does not read: gatehouse migrate would leave it behind.
func TestExportCoversEveryTable(t *testing.T) {
	db := openTest(t, nil)
	rows, err := db.r.Query(`SELECT name FROM sqlite_schema WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(exportedTables))
	if !slices.Equal(tables, want) {
		t.Fatalf("tables of the schema %v, Export reads %v: add the new table to Export (and to gatehouse migrate)", tables, want)
	}
}

// exportFixture fills db with one or more records of every kind, dead ones
// included, and returns them as they must come out of an Export.
type exportFixture struct {
	users    []*account.User
	sessions []*session.Session
	families map[string][]*refresh.Token // by family id
	keys     []*keys.Record
	entries  []revocation.Entry
	events   []*audit.Event
}

func fillForExport(t *testing.T, db *DB, c *clock.Fake) exportFixture {
	t.Helper()
	ctx := context.Background()
	now := c.Now()
	var fx exportFixture
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"alice", "bob"} {
		u := &account.User{ID: "u-" + name, Username: name, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=1$c2FsdA$aGFzaA",
			CreatedAt: now, UpdatedAt: now.Add(time.Duration(i) * time.Second)}
		if i == 1 {
			u.Roles = []string{"admin", "ops"}
			u.RevokedBefore = now.Add(time.Minute)
		}
		must(db.CreateUser(ctx, u))
		fx.users = append(fx.users, u)
	}
	for i, idle := range []time.Duration{time.Hour, time.Second} { // live, then dead after the clock moves
		s := &session.Session{ID: "s" + string(rune('0'+i)), Hash: newHash(t), UserID: "u-alice", CreatedAt: now,
			LastSeenAt: now, IdleExpiresAt: now.Add(idle), ExpiresAt: now.Add(24 * time.Hour), UserAgent: "UA", IP: "192.0.2.1"}
		must(db.CreateSession(ctx, s))
		fx.sessions = append(fx.sessions, s)
	}
	fx.families = map[string][]*refresh.Token{}
	f, first := newFamily(t, "fam-a", "u-alice", now)
	must(db.Refresh().CreateFamily(ctx, f, first))
	next := newHash(t)
	res, err := db.Refresh().Rotate(ctx, refresh.RotateRequest{Presented: first.Hash, NextHash: next, Now: now.Add(time.Second),
		IdleExpiresAt: now.Add(time.Hour), Grace: 10 * time.Second, MaxSiblings: 2})
	must(err)
	fx.families["fam-a"] = []*refresh.Token{&res.Presented, &res.Minted}
	g, gfirst := newFamily(t, "fam-b", "u-bob", now)
	must(db.Refresh().CreateFamily(ctx, g, gfirst))
	_, err = db.Refresh().RevokeFamily(ctx, "fam-b", now)
	must(err)
	fx.families["fam-b"] = []*refresh.Token{gfirst}

	k := &keys.Record{KID: "kid-1", Alg: "EdDSA", Sealed: []byte("sealed"), PublicKey: []byte("public"), CreatedAt: now,
		Lifecycle: keys.Lifecycle{SignsFrom: now, RetiredAt: now.Add(time.Hour), RemoveAt: now.Add(2 * time.Hour), Removed: true}}
	must(db.CreateSigningKey(ctx, k))
	fx.keys = append(fx.keys, k)

	rv := db.Revocations()
	must(rv.DenyToken(ctx, "jti-1", now.Add(time.Hour)))
	must(rv.RevokeSID(ctx, "fam-b", now.Add(time.Second)))
	must(rv.RevokeUser(ctx, "u-bob", now.Add(time.Minute), now.Add(time.Hour)))
	fx.entries = []revocation.Entry{
		{Kind: revocation.KindToken, ID: "jti-1", Until: now.Add(time.Hour).UTC()},
		{Kind: revocation.KindSID, ID: "fam-b", Until: now.Add(time.Second).UTC()},
		{Kind: revocation.KindUser, ID: "u-bob", Before: now.Add(time.Minute).UTC(), Until: now.Add(time.Hour).UTC()},
	}
	// Two events at the same time: their order is the order of appending.
	for _, id := range []string{"ev-2", "ev-1", "ev-3"} {
		e := &audit.Event{ID: id, Time: now, Type: "login.success", Severity: "info", UserID: "u-alice", Username: "alice",
			SessionID: "s0", ActorID: "cli", IP: "192.0.2.1", UserAgent: "UA", Reason: "r"}
		must(db.AppendEvent(ctx, e))
		fx.events = append(fx.events, e)
	}
	c.Advance(time.Minute) // the second session and the sid entry are dead now
	return fx
}

// fileSum returns the SHA-256 of the file at path.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(time.Date(2031, 5, 17, 9, 41, 7, 123456789, time.UTC))
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := Open(ctx, path, Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	fx := fillForExport(t, db, c)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, path)

	e, err := OpenExport(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	counts, err := e.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ExportCounts{Users: 2, Sessions: 2, RefreshFamilies: 2, RefreshTokens: 3, SigningKeys: 1, Revocations: 3, AuditEvents: 3}
	if counts != want {
		t.Fatalf("Counts = %+v, want %+v", counts, want)
	}

	var users []*account.User
	if err := e.Users(ctx, func(u *account.User) error { users = append(users, u); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(users) != len(fx.users) {
		t.Fatalf("%d users, want %d", len(users), len(fx.users))
	}
	for i, u := range users {
		w := fx.users[i]
		if u.ID != w.ID || u.Username != w.Username || u.PasswordHash != w.PasswordHash || !slices.Equal(u.Roles, w.Roles) ||
			!u.CreatedAt.Equal(w.CreatedAt) || !u.UpdatedAt.Equal(w.UpdatedAt) || !u.RevokedBefore.Equal(w.RevokedBefore) {
			t.Errorf("user %d = %+v, want %+v", i, u, w)
		}
	}

	var sessions []*session.Session
	if err := e.Sessions(ctx, func(s *session.Session) error { sessions = append(sessions, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 2 {
		t.Fatalf("%d sessions, want 2 (dead ones included)", len(sessions))
	}
	for _, s := range sessions {
		i := slices.IndexFunc(fx.sessions, func(w *session.Session) bool { return bytes.Equal(w.Hash, s.Hash) })
		if i < 0 {
			t.Fatalf("unknown session %q", s.ID)
		}
		w := fx.sessions[i]
		if s.ID != w.ID || s.UserID != w.UserID || !s.CreatedAt.Equal(w.CreatedAt) || !s.LastSeenAt.Equal(w.LastSeenAt) ||
			!s.IdleExpiresAt.Equal(w.IdleExpiresAt) || !s.ExpiresAt.Equal(w.ExpiresAt) || s.UserAgent != w.UserAgent || s.IP != w.IP {
			t.Errorf("session = %+v, want %+v", s, w)
		}
	}

	var famIDs []string
	err = e.RefreshFamilies(ctx, func(f *refresh.Family, toks []*refresh.Token) error {
		famIDs = append(famIDs, f.ID)
		want := fx.families[f.ID]
		if len(toks) != len(want) {
			t.Fatalf("family %s: %d tokens, want %d", f.ID, len(toks), len(want))
		}
		for i, tok := range toks {
			w := want[i]
			if !bytes.Equal(tok.Hash, w.Hash) || tok.FamilyID != f.ID || tok.Generation != w.Generation ||
				!bytes.Equal(tok.ParentHash, w.ParentHash) || !tok.CreatedAt.Equal(w.CreatedAt) ||
				!tok.IdleExpiresAt.Equal(w.IdleExpiresAt) || !tok.RotatedAt.Equal(w.RotatedAt) || tok.Children != w.Children {
				t.Errorf("family %s token %d = %+v, want %+v", f.ID, i, tok, w)
			}
		}
		if f.ID == "fam-b" && f.RevokedAt.IsZero() {
			t.Errorf("family fam-b is not revoked")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(famIDs, []string{"fam-a", "fam-b"}) {
		t.Fatalf("families %v", famIDs)
	}

	var recs []*keys.Record
	if err := e.SigningKeys(ctx, func(r *keys.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].KID != "kid-1" || !bytes.Equal(recs[0].Sealed, []byte("sealed")) ||
		!bytes.Equal(recs[0].PublicKey, []byte("public")) || recs[0].Lifecycle != fx.keys[0].Lifecycle ||
		!recs[0].CreatedAt.Equal(fx.keys[0].CreatedAt) {
		t.Errorf("signing keys %+v, want %+v", recs, fx.keys)
	}

	var entries []revocation.Entry
	if err := e.Revocations(ctx, func(en revocation.Entry) error { entries = append(entries, en); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(entries, fx.entries) {
		t.Errorf("revocations %+v, want %+v", entries, fx.entries)
	}

	var events []*audit.Event
	if err := e.AuditEvents(ctx, func(ev *audit.Event) error { events = append(events, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(events) != len(fx.events) {
		t.Fatalf("%d events, want %d", len(events), len(fx.events))
	}
	for i, ev := range events {
		if *ev != *fx.events[i] {
			t.Errorf("event %d = %+v, want %+v (in the order of appending)", i, ev, fx.events[i])
		}
	}

	// An error from fn stops the iteration and comes back as is.
	stop := errors.New("stop")
	n := 0
	if err := e.Users(ctx, func(*account.User) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Users with a failing fn: %v after %d calls, want stop after 1", err, n)
	}
	n = 0
	if err := e.RefreshFamilies(ctx, func(*refresh.Family, []*refresh.Token) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("RefreshFamilies with a failing fn: %v after %d calls, want stop after 1", err, n)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Fatal("the export changed the database file")
	}
}

// TestExportSnapshot: an export sees the database as it was when it was
// opened, whatever is written after.
func TestExportSnapshot(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := openAt(t, path, nil)
	now := time.Now()
	if err := db.CreateUser(ctx, &account.User{ID: "u1", Username: "one", PasswordHash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	e, err := OpenExport(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := db.CreateUser(ctx, &account.User{ID: "u2", Username: "two", PasswordHash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	c, err := e.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := e.Users(ctx, func(u *account.User) error { ids = append(ids, u.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if c.Users != 1 || !slices.Equal(ids, []string{"u1"}) {
		t.Fatalf("export sees %d users %v, want only u1, written before it was opened", c.Users, ids)
	}
}

func TestOpenExportRefuses(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(t *testing.T, path string) // makes the file at path
		want  error                           // nil: any error
	}{
		{"missing file", func(*testing.T, string) {}, nil},
		{"not a database", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("not sqlite"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"schema too new", func(t *testing.T, path string) {
			db := openAt(t, path, nil)
			if _, err := db.w.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_x.sql', 0)`); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, ErrSchemaTooNew},
		{"schema too old", func(t *testing.T, path string) {
			db := openAt(t, path, nil)
			if _, err := db.w.Exec(`DELETE FROM schema_migrations WHERE version > 1`); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, ErrSchemaTooOld},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			tc.setup(t, path)
			e, err := OpenExport(ctx, path)
			if err == nil {
				e.Close()
				t.Fatal("OpenExport succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("OpenExport: %v, want %v", err, tc.want)
			}
			if tc.name == "missing file" {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("OpenExport created the missing file (stat: %v)", err)
				}
			}
		})
	}
}
