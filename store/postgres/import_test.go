package postgres

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/store"
)

// rotatedFamily returns a family whose first token was rotated once and
// grace-replayed once (two children, siblings), as a store would hold it.
func rotatedFamily(t testing.TB, id string) (*refresh.Family, []*refresh.Token) {
	f, first := newFamily(t, id, "u1", start)
	first.RotatedAt, first.Children = start.Add(time.Minute), 2
	f.LastUsedAt = start.Add(time.Minute + time.Second)
	kids := make([]*refresh.Token, 2)
	for i := range kids {
		kids[i] = &refresh.Token{Hash: newHash(t), FamilyID: id, Generation: 2, ParentHash: first.Hash,
			CreatedAt: start.Add(time.Minute + time.Duration(i)*time.Second), IdleExpiresAt: start.Add(2 * time.Hour)}
	}
	if bytes.Compare(kids[0].Hash, kids[1].Hash) > 0 {
		kids[0], kids[1] = kids[1], kids[0]
	}
	return f, append([]*refresh.Token{first}, kids...)
}

func sameToken(a, b *refresh.Token) bool {
	return bytes.Equal(a.Hash, b.Hash) && a.FamilyID == b.FamilyID && a.Generation == b.Generation &&
		bytes.Equal(a.ParentHash, b.ParentHash) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.IdleExpiresAt.Equal(b.IdleExpiresAt) && a.RotatedAt.Equal(b.RotatedAt) && a.Children == b.Children
}

func TestImportFamily(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, clock.NewFake(start))
	r := db.Refresh()
	f, toks := rotatedFamily(t, "fam-1")
	f.RevokedAt = start.Add(time.Hour)
	if err := r.ImportFamily(ctx, f, toks); err != nil {
		t.Fatal(err)
	}
	got, err := r.Family(ctx, "fam-1")
	if err != nil {
		t.Fatal(err)
	}
	if *got != *f {
		t.Errorf("Family = %+v, want %+v", got, f)
	}
	gotToks, err := r.FamilyTokens(ctx, "fam-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(gotToks) != len(toks) {
		t.Fatalf("FamilyTokens: %d tokens, want %d", len(gotToks), len(toks))
	}
	for i := range toks {
		if !sameToken(gotToks[i], toks[i]) {
			t.Errorf("token %d = %+v, want %+v", i, gotToks[i], toks[i])
		}
	}
	if gotToks[0].ParentHash != nil {
		t.Errorf("first token's parent hash %x, want nil", gotToks[0].ParentHash)
	}
	// Every token leads to the family, rotated ones included.
	for i, tok := range toks {
		if fam, err := r.FamilyByTokenHash(ctx, tok.Hash); err != nil || fam.ID != "fam-1" {
			t.Errorf("FamilyByTokenHash(token %d) = %v, %v", i, fam, err)
		}
	}
	if none, err := r.FamilyTokens(ctx, "nope"); err != nil || len(none) != 0 {
		t.Errorf("FamilyTokens(unknown) = %v, %v; want none", none, err)
	}

	cases := []struct {
		name   string
		family func() (*refresh.Family, []*refresh.Token)
		want   error // nil: any error
	}{
		{"taken family id", func() (*refresh.Family, []*refresh.Token) {
			_, ts := rotatedFamily(t, "fam-1")
			g := *f
			return &g, ts
		}, store.ErrConflict},
		{"taken token hash", func() (*refresh.Family, []*refresh.Token) {
			g, ts := rotatedFamily(t, "fam-2")
			ts[2].Hash = toks[1].Hash
			return g, ts
		}, store.ErrConflict},
		{"token of another family", func() (*refresh.Family, []*refresh.Token) {
			g, ts := rotatedFamily(t, "fam-3")
			ts[1].FamilyID = "fam-1"
			return g, ts
		}, nil},
		{"no user", func() (*refresh.Family, []*refresh.Token) {
			g, ts := rotatedFamily(t, "fam-4")
			g.UserID = ""
			return g, ts
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, ts := tc.family()
			err := r.ImportFamily(ctx, g, ts)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("ImportFamily = %v, want %v", err, tc.want)
			}
			if g.ID != "fam-1" {
				if _, err := r.Family(ctx, g.ID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("a refused import left family %s (%v)", g.ID, err)
				}
			}
		})
	}
	c, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.RefreshFamilies != 1 || c.RefreshTokens != 3 {
		t.Errorf("after the refused imports: %d families, %d tokens; want 1 and 3", c.RefreshFamilies, c.RefreshTokens)
	}
}

func TestEventByIDAndCounts(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(start)
	db := openTest(t, c)
	e := &audit.Event{ID: "ev-1", Time: start, Type: "login.success", Severity: "info", UserID: "u1", Username: "one",
		SessionID: "s", ActorID: "a", IP: "192.0.2.1", UserAgent: "UA", Reason: "r"}
	if err := db.AppendEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := db.EventByID(ctx, "ev-1")
	if err != nil || *got != *e {
		t.Fatalf("EventByID = %+v, %v; want %+v", got, err, e)
	}
	for _, id := range []string{"ev-2", "bad\x00id"} {
		if _, err := db.EventByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EventByID(%q) = %v, want ErrNotFound", id, err)
		}
	}

	if err := db.CreateUser(ctx, &account.User{ID: "u1", Username: "one", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Revocations().DenyToken(ctx, "j", start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.Revocations().RevokeUser(ctx, "u1", start, start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	counts, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Users: 1, Revocations: 2, AuditEvents: 1}
	if counts != want {
		t.Errorf("Counts = %+v, want %+v", counts, want)
	}
}
