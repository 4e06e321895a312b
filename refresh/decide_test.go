package refresh

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fam := Family{ID: "f", UserID: "u", CreatedAt: t0, IdleExpiresAt: t0.Add(14 * 24 * time.Hour), ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	cur := Token{Hash: []byte("cur"), FamilyID: "f", Generation: 3, ParentHash: []byte("parent"), IdleExpiresAt: t0.Add(14 * 24 * time.Hour)}
	first := cur
	first.ParentHash = nil
	rotated := cur
	rotated.RotatedAt, rotated.Children = t0, 1
	req := func(at time.Time, grace time.Duration) RotateRequest {
		return RotateRequest{Presented: []byte("cur"), NextHash: []byte("next"), Now: at, IdleExpiresAt: at.Add(14 * 24 * time.Hour), Grace: grace, MaxSiblings: 2}
	}
	revoked := fam
	revoked.RevokedAt = t0
	expired := fam
	expired.ExpiresAt = t0
	idleTok := cur
	idleTok.IdleExpiresAt = t0
	full := rotated
	full.Children = 3 // the first rotation and 2 siblings
	cases := []struct {
		name         string
		fam          Family
		tok          Token
		r            RotateRequest
		want         Outcome
		mint, revoke bool
	}{
		{"current token rotates", fam, cur, req(t0, 10*time.Second), OutcomeRotated, true, false},
		{"first token of a family rotates", fam, first, req(t0, 10*time.Second), OutcomeRotated, true, false},
		{"revoked family", revoked, cur, req(t0.Add(time.Second), 10*time.Second), OutcomeRevoked, false, false},
		{"expired family", expired, cur, req(t0, 10*time.Second), OutcomeExpired, false, false},
		{"idle-expired token", fam, idleTok, req(t0, 10*time.Second), OutcomeExpired, false, false},
		{"rotated within grace: sibling", fam, rotated, req(t0.Add(9*time.Second), 10*time.Second), OutcomeGraceReplay, true, false},
		{"rotated at the end of grace: reuse", fam, rotated, req(t0.Add(10*time.Second), 10*time.Second), OutcomeReuse, false, true},
		{"rotated, grace off: reuse", fam, rotated, req(t0, 0), OutcomeReuse, false, true},
		{"siblings exhausted: reuse", fam, full, req(t0.Add(time.Second), 10*time.Second), OutcomeReuse, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.fam, tc.tok, tc.r)
			if d.Outcome != tc.want || d.Mint != tc.mint || d.Revoke != tc.revoke {
				t.Fatalf("Decide = %v mint=%v revoke=%v, want %v mint=%v revoke=%v", d.Outcome, d.Mint, d.Revoke, tc.want, tc.mint, tc.revoke)
			}
			if want := tc.want == OutcomeRotated; d.RetireOthers != want {
				t.Fatalf("RetireOthers = %v, want %v", d.RetireOthers, want)
			}
			switch {
			case d.Mint:
				if d.Child.Generation != tc.tok.Generation+1 || string(d.Child.ParentHash) != "cur" || string(d.Child.Hash) != "next" ||
					d.Presented.RotatedAt.IsZero() || d.Presented.Children != tc.tok.Children+1 || !d.Family.LastUsedAt.Equal(tc.r.Now) {
					t.Fatalf("mint decision %+v", d)
				}
			case d.Revoke:
				if !d.Family.RevokedAt.Equal(tc.r.Now) {
					t.Fatalf("revoke decision %+v", d)
				}
			default:
				if d.Family.RevokedAt != tc.fam.RevokedAt || d.Presented.Children != tc.tok.Children {
					t.Fatal("a refusal changed something")
				}
			}
		})
	}
}
