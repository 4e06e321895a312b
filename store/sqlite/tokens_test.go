package sqlite

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
)

func TestKeys(t *testing.T) {
	storetest.TestKeys(t, func(t *testing.T, c clock.Clock) keys.Store { return openTest(t, c) })
}

func TestRefresh(t *testing.T) {
	storetest.TestRefresh(t, func(t *testing.T, c clock.Clock) refresh.Store { return openTest(t, c).Refresh() })
}

func TestRevocation(t *testing.T) {
	storetest.TestRevocation(t, func(t *testing.T, c clock.Clock) revocation.Store { return openTest(t, c).Revocations() })
}

// newHash returns a random 32-byte hash.
func newHash(t testing.TB) []byte {
	t.Helper()
	h := make([]byte, 32)
	if _, err := rand.Read(h); err != nil {
		t.Fatal(err)
	}
	return h
}

// newFamily returns a family of userID created at now, live for an hour,
// and its first token.
func newFamily(t testing.TB, id, userID string, now time.Time) (*refresh.Family, *refresh.Token) {
	t.Helper()
	f := &refresh.Family{ID: id, UserID: userID, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour), Delivery: refresh.DeliveryBody}
	tok := &refresh.Token{Hash: newHash(t), FamilyID: id, Generation: 1, CreatedAt: now, IdleExpiresAt: now.Add(time.Hour)}
	return f, tok
}

func TestTokenQueryPlans(t *testing.T) {
	db := openTest(t, nil)
	cases := []struct {
		name     string
		query    string
		args     []any
		want     []string // each must be in the plan
		noSort   bool     // the index gives the order: no temporary b-tree
		noScanOf []string // these tables must not be scanned
	}{
		{"Rotate read", rotateReadSQL, []any{[]byte("h"), []byte("n")},
			[]string{"SEARCH t USING PRIMARY KEY (hash=?)", "SEARCH f USING PRIMARY KEY (id=?)", "SEARCH refresh_tokens USING PRIMARY KEY (hash=?)"},
			true, []string{"refresh_tokens", "refresh_families", "t", "f"}},
		{"FamilyByTokenHash", familyByHashSQL, []any{[]byte("h")},
			[]string{"USING PRIMARY KEY (id=?)", "SEARCH refresh_tokens USING PRIMARY KEY (hash=?)"}, true, []string{"refresh_families", "refresh_tokens"}},
		{"FamiliesByUser", familiesByUserSQL, []any{int64(1), "u1"},
			[]string{"USING INDEX refresh_families_user_created (user_id=?)"}, false, []string{"refresh_families"}},
		{"RevokeUserFamilies", revokeUserFamiliesSQL, []any{int64(1), "u1"},
			[]string{"USING INDEX refresh_families_user_created (user_id=?)"}, true, []string{"refresh_families"}},
		{"Purge refresh tokens", purgeRefreshTokensSQL, []any{int64(1)},
			[]string{"USING INDEX refresh_tokens_family (family_id=?)"}, true, []string{"refresh_tokens"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := queryPlan(t, db, tc.query, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(plan, w) {
					t.Errorf("plan does not use %q:\n%s", w, plan)
				}
			}
			for _, table := range tc.noScanOf {
				for _, line := range strings.Split(plan, "\n") {
					if line == "SCAN "+table || strings.HasPrefix(line, "SCAN "+table+" ") {
						t.Errorf("plan scans %s:\n%s", table, plan)
					}
				}
			}
			if tc.noSort && strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("plan sorts:\n%s", plan)
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
	if err := db.r.QueryRow(`SELECT count(*) FROM refresh_tokens`).Scan(&tokens); err != nil {
		t.Fatal(err)
	}
	if tokens != 1 {
		t.Errorf("%d refresh tokens left, want 1: the purged family's token stayed", tokens)
	}
	purge("PurgeTokens again", db.PurgeTokens, 0)
}

// TestTokensReopen checks that token-mode state survives closing and
// reopening the file.
func TestTokensReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	c := clock.NewFake(start)
	db, err := Open(ctx, path, Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	f, tok := newFamily(t, "fam", "alice", start)
	if err := db.Refresh().CreateFamily(ctx, f, tok); err != nil {
		t.Fatal(err)
	}
	req := refresh.RotateRequest{Presented: tok.Hash, NextHash: newHash(t), Now: start.Add(time.Minute),
		IdleExpiresAt: start.Add(time.Hour + time.Minute), Grace: 10 * time.Second, MaxSiblings: 4}
	if res, err := db.Refresh().Rotate(ctx, req); err != nil || res.Outcome != refresh.OutcomeRotated {
		t.Fatalf("Rotate = %v, %v", res.Outcome, err)
	}
	rec := &keys.Record{KID: "kid", Alg: keys.EdDSA, Sealed: []byte("sealed"), PublicKey: []byte("pub"), CreatedAt: start}
	if err := db.CreateSigningKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := db.Revocations().RevokeSID(ctx, "fam", start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, c)
	// Presented again long after: reuse, which revokes the family.
	req.NextHash, req.Now = newHash(t), start.Add(2*time.Minute)
	res, err := db.Refresh().Rotate(ctx, req)
	if err != nil || res.Outcome != refresh.OutcomeReuse {
		t.Fatalf("Rotate of the rotated token after reopening = %v, %v; want reuse", res.Outcome, err)
	}
	if recs, err := db.SigningKeys(ctx); err != nil || len(recs) != 1 || recs[0].KID != "kid" {
		t.Errorf("SigningKeys after reopening = %v, %v", recs, err)
	}
	if es, err := db.Revocations().Load(ctx); err != nil || len(es) != 1 || es[0].ID != "fam" {
		t.Errorf("Load after reopening = %v, %v", es, err)
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

// BenchmarkRefreshRotate measures one rotation of a chain: each iteration
// presents the token the previous one minted, on a file database with
// synchronous commits.
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
