package refresh

import (
	"bytes"
	"time"
)

// Decision is what a Store must do, in its one atomic step, with a
// presented refresh token: the rules of rotation, grace and reuse, decided
// once here so that every backend applies the same ones.
type Decision struct {
	// Outcome is what happened.
	Outcome Outcome
	// Mint: insert Child; set the presented token's RotatedAt to the
	// request's Now if it is zero and add one to its Children; set the
	// family's LastUsedAt to Now and raise its IdleExpiresAt to
	// Child.IdleExpiresAt if later.
	Mint  bool
	Child Token
	// RetireOthers: set RotatedAt to Now on every other unrotated token of
	// the family (but Child): the branches that grace replays minted. From
	// then on each gets the grace period and then counts as reuse, so a
	// branch minted from a replayed token cannot live on undetected:
	// whichever branch rotates first retires all the others.
	RetireOthers bool
	// Revoke: set the family's RevokedAt to Now (reuse detected).
	Revoke bool
	// Family and Presented are the family and the presented token as they
	// are after the step: the RotateResult to return.
	Family    Family
	Presented Token
}

// Decide applies the rotation rules to a presented token tok of family fam
// (as read inside the store's atomic step) for request r:
//
//   - a revoked family: OutcomeRevoked; an expired family (absolute or
//     idle): OutcomeExpired;
//   - a current token: OutcomeExpired past its idle expiry, else
//     OutcomeRotated, a child is minted and every other unrotated token of
//     the family is retired (rotated now);
//   - a token rotated less than r.Grace ago (Grace > 0): OutcomeExpired
//     past its idle expiry; OutcomeReuse (family revoked) when it already
//     has MaxSiblings siblings; else OutcomeGraceReplay and a sibling is
//     minted;
//   - any other rotated token: OutcomeReuse, and the family is revoked.
//
// A refusal (Revoked, Expired) changes nothing.
func Decide(fam Family, tok Token, r RotateRequest) Decision {
	now := r.Now
	d := Decision{Family: fam, Presented: tok}
	switch {
	case !fam.RevokedAt.IsZero():
		d.Outcome = OutcomeRevoked
	case !now.Before(fam.ExpiresAt) || !now.Before(fam.IdleExpiresAt):
		d.Outcome = OutcomeExpired
	case tok.RotatedAt.IsZero():
		if !now.Before(tok.IdleExpiresAt) {
			d.Outcome = OutcomeExpired
			break
		}
		d.Outcome, d.Mint, d.RetireOthers = OutcomeRotated, true, true
	case r.Grace > 0 && now.Before(tok.RotatedAt.Add(r.Grace)):
		switch {
		case !now.Before(tok.IdleExpiresAt):
			d.Outcome = OutcomeExpired
		case tok.Children-1 >= r.MaxSiblings:
			d.Outcome, d.Revoke = OutcomeReuse, true
		default:
			d.Outcome, d.Mint = OutcomeGraceReplay, true
		}
	default:
		d.Outcome, d.Revoke = OutcomeReuse, true
	}
	switch {
	case d.Mint:
		idle := r.IdleExpiresAt.UTC()
		if idle.After(fam.ExpiresAt) {
			idle = fam.ExpiresAt
		}
		d.Child = Token{
			Hash:          bytes.Clone(r.NextHash),
			FamilyID:      fam.ID,
			Generation:    tok.Generation + 1,
			ParentHash:    bytes.Clone(tok.Hash),
			CreatedAt:     now,
			IdleExpiresAt: idle,
		}
		if d.Presented.RotatedAt.IsZero() {
			d.Presented.RotatedAt = now
		}
		d.Presented.Children++
		d.Family.LastUsedAt = now
		d.Family.IdleExpiresAt = later(fam.IdleExpiresAt, idle)
	case d.Revoke:
		d.Family.RevokedAt = now
	}
	return d
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
