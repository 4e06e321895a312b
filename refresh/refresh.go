// Package refresh keeps the refresh tokens of token mode: opaque, rotating
// tokens grouped in families, with reuse detection.
//
// # Tokens and families
//
// A refresh token is 32 bytes from crypto/rand, encoded as unpadded base64url
// (43 characters). Only the SHA-256 of the 32 decoded bytes is stored. A
// family is one login: every refresh token descended from that login belongs
// to it, and its id is the sid claim of the access tokens minted with it.
//
// A family has an absolute lifetime (default 30 days from the login) and each
// token an idle lifetime (default 14 days from the moment it was minted,
// capped at the family's absolute expiry). A family is live while it is not
// revoked, its absolute expiry has not passed, and at least one of its tokens
// has not idle-expired.
//
// # Rotation
//
// Every use of a refresh token rotates it: the presented token is marked
// rotated and a new token of the next generation is minted in the same family.
// Presenting a token that was already rotated is reuse: someone kept a copy of
// a token that its rightful holder has already exchanged, so the whole family
// is revoked, in the same atomic step, and the caller is told so (ErrReuse)
// to audit a high-severity event and to revoke the family's access tokens
// (the revocation package, by sid).
//
// # The grace rule
//
// Several tabs of one browser, or several threads of one app, may refresh
// with the same token at the same moment. The first request rotates it; under
// the strict rule the others would be reuse and would end the login. The
// grace rule lets them through:
//
//   - A rotated token presented again less than Grace after it was rotated
//     (now < RotatedAt + Grace) answers with a new token of the same family: a
//     sibling of the one minted by the rotation, a child of the presented
//     token with the same generation. The presented token stays rotated.
//   - Siblings are branches of one login, and only one may live on: when
//     any token rotates, every other unrotated token of the family is
//     retired (rotated at that moment). A retired sibling presented
//     within Grace of its retirement is again a grace replay; after that it
//     is reuse. A browser's tabs share one cookie jar and an app keeps one
//     token, so the retired siblings are simply never presented again; a
//     client that kept two of them (separate storage per tab) loses the
//     login at the second one's next refresh.
//   - At most MaxSiblings siblings are minted from one rotated token. One
//     presentation more within the grace period is reuse.
//   - From RotatedAt + Grace on (the bound is exclusive), presenting the
//     rotated token is reuse: the family is revoked, and every token of it,
//     the siblings included, stops working.
//   - Grace 0 turns the rule off: any second presentation is reuse.
//   - A grace presentation never revives anything: if the family is revoked
//     or expired, or the presented token has idle-expired, the answer is the
//     same refusal as for any other token.
//
// Every grace presentation is reported to the caller (OutcomeGraceReplay) so
// that it can be audited. The price of the rule is that a thief who presents
// a stolen token within Grace of its rotation gets a working token without
// killing the family, until either branch next rotates: from then on the
// other branch's next refresh is reuse and ends the login for both, which
// is what reuse detection is for. Grace is short (default 10 s, at most
// 60 s).
//
// # Decisions, in order
//
// For a presented token the store decides, atomically:
//
//  1. unknown token (or purged family): not found;
//  2. family revoked: OutcomeRevoked;
//  3. family past its absolute expiry, or every token of it idle-expired:
//     OutcomeExpired;
//  4. token current: if it has idle-expired, OutcomeExpired; otherwise it is
//     rotated (OutcomeRotated) and every other unrotated token of the family
//     is retired;
//  5. token rotated, within Grace of its rotation: if it has idle-expired,
//     OutcomeExpired; if MaxSiblings siblings were already minted from it,
//     reuse; otherwise a sibling is minted (OutcomeGraceReplay);
//  6. token rotated, outside Grace: reuse (OutcomeReuse), the family is
//     revoked now. A rotated token's own idle expiry does not matter here: an
//     old rotated token presented while its family lives is still evidence
//     of a copy.
//
// All time comparisons use exclusive upper bounds: a token whose idle expiry
// is now has expired.
package refresh

import (
	"context"
	"time"
)

// Delivery says how the client receives its tokens.
const (
	// DeliveryBody is token mode proper: tokens in the JSON body.
	DeliveryBody = "body"
	// DeliveryCookie is hybrid mode: tokens in HttpOnly cookies.
	DeliveryCookie = "cookie"
)

// Family is one login in token mode: the refresh tokens descended from it
// and, through its ID (the sid claim), the access tokens minted with them.
type Family struct {
	// ID is the opaque family id: 16 random bytes, base64url. It is the
	// access tokens' sid.
	ID string
	// UserID is the owner.
	UserID string
	// CreatedAt is the login time.
	CreatedAt time.Time
	// LastUsedAt is the last time a token of the family was minted (the
	// login or a refresh).
	LastUsedAt time.Time
	// IdleExpiresAt is the latest idle expiry among the family's tokens:
	// after it, no token of the family can be used.
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute expiry: CreatedAt plus the absolute lifetime.
	ExpiresAt time.Time
	// RevokedAt is when the family was revoked; zero while it is not.
	RevokedAt time.Time
	// Delivery is DeliveryBody or DeliveryCookie.
	Delivery string
	// UserAgent and IP describe the device, for the device list. Both are
	// sanitised (no control characters) and bounded in length.
	UserAgent string
	IP        string
}

// Live reports whether the family can still mint tokens at now: not
// revoked, and now before both its absolute and its idle expiry.
func (f *Family) Live(now time.Time) bool {
	return f.RevokedAt.IsZero() && now.Before(f.ExpiresAt) && now.Before(f.IdleExpiresAt)
}

// Token is a refresh token as the store keeps it. The token itself is never
// stored, only its hash.
type Token struct {
	// Hash is SHA-256 of the token's 32 decoded bytes; the primary key.
	Hash []byte
	// FamilyID is the family the token belongs to.
	FamilyID string
	// Generation is 1 for the login's token, and the parent's plus one after.
	Generation int
	// ParentHash is the Hash of the token it was minted from; nil for the
	// first token of a family.
	ParentHash []byte
	// CreatedAt is when it was minted.
	CreatedAt time.Time
	// IdleExpiresAt is CreatedAt plus the idle lifetime, capped at the
	// family's ExpiresAt.
	IdleExpiresAt time.Time
	// RotatedAt is when it was first exchanged; zero while it is current.
	RotatedAt time.Time
	// Children counts the tokens minted from it: 1 after its rotation, one
	// more per grace presentation.
	Children int
}

// Outcome says what happened to a presented refresh token.
type Outcome int

// The outcomes of a rotation.
const (
	// OutcomeInvalid: the token was malformed or unknown.
	OutcomeInvalid Outcome = iota
	// OutcomeRotated: a current token was exchanged for the next one.
	OutcomeRotated
	// OutcomeGraceReplay: a token rotated less than Grace ago was presented
	// again and a sibling was minted (see the grace rule).
	OutcomeGraceReplay
	// OutcomeReuse: a rotated token was presented outside the grace rule;
	// the family has been revoked.
	OutcomeReuse
	// OutcomeExpired: the family or the token has expired.
	OutcomeExpired
	// OutcomeRevoked: the family had already been revoked.
	OutcomeRevoked
)

// String returns a short machine-readable name, fit for an audit reason.
func (o Outcome) String() string {
	switch o {
	case OutcomeInvalid:
		return "invalid"
	case OutcomeRotated:
		return "rotated"
	case OutcomeGraceReplay:
		return "grace_replay"
	case OutcomeReuse:
		return "reuse"
	case OutcomeExpired:
		return "expired"
	case OutcomeRevoked:
		return "revoked"
	default:
		return "unknown"
	}
}

// RotateRequest is one call to Store.Rotate.
type RotateRequest struct {
	// Presented is the hash of the presented token.
	Presented []byte
	// NextHash is the hash of the token to mint, if one is minted.
	NextHash []byte
	// Now is the time of the request: the minted token's CreatedAt, the
	// presented token's RotatedAt, or the family's RevokedAt on reuse.
	Now time.Time
	// IdleExpiresAt is Now plus the idle lifetime; the store caps it at the
	// family's ExpiresAt.
	IdleExpiresAt time.Time
	// Grace is the grace period; 0 turns the grace rule off.
	Grace time.Duration
	// MaxSiblings is how many siblings one rotated token may give.
	MaxSiblings int
}

// RotateResult is what Store.Rotate did.
type RotateResult struct {
	// Outcome is never OutcomeInvalid: an unknown token is store.ErrNotFound.
	Outcome Outcome
	// Family is the presented token's family after the step (revoked on
	// OutcomeReuse).
	Family Family
	// Presented is the presented token's record after the step.
	Presented Token
	// Minted is the new token's record for OutcomeRotated and
	// OutcomeGraceReplay; zero otherwise.
	Minted Token
}

// Store is what the refresh package needs from a storage backend.
//
// Each method is one atomic operation: an SQL backend runs it in one
// transaction (BEGIN IMMEDIATE in SQLite, SELECT … FOR UPDATE on the family
// row in PostgreSQL), a Redis backend in one Lua script over keys of one hash
// slot ({fam:<id>}). The mapping from a token hash to its family id never
// changes once written, so a backend may keep it outside the family's atomic
// unit (in Redis Cluster, one key per hash, created with SET NX before the
// script that mints the token, which also detects a taken NextHash) and
// resolve it before the atomic step; a mapping to a family that does not hold
// the token is then treated as unknown.
//
// Lookups by id or hash return families in any state (revoked, expired) until
// they are purged; store.ErrNotFound means missing. Listing by user goes
// through an index on the user id and returns only live families, judged
// against the backend's clock. Returned values are copies, with times in UTC.
type Store interface {
	// CreateFamily inserts a family and its first token. A duplicate family
	// id or token hash is store.ErrConflict and inserts nothing.
	CreateFamily(ctx context.Context, f *Family, first *Token) error
	// Rotate applies the decisions listed in the package documentation to
	// the token whose hash is r.Presented, in one atomic step. An unknown
	// hash is store.ErrNotFound; a NextHash already stored is
	// store.ErrConflict; both change nothing.
	Rotate(ctx context.Context, r RotateRequest) (RotateResult, error)
	// Family returns the family with that id.
	Family(ctx context.Context, id string) (*Family, error)
	// FamilyByTokenHash returns the family of the token with that hash,
	// whether the token is current or rotated.
	FamilyByTokenHash(ctx context.Context, hash []byte) (*Family, error)
	// FamiliesByUser returns the user's live families, newest first.
	FamiliesByUser(ctx context.Context, userID string) ([]*Family, error)
	// RevokeFamily revokes the family at `at` and returns it. Revoking a
	// revoked family keeps its first RevokedAt and is not an error.
	RevokeFamily(ctx context.Context, id string, at time.Time) (*Family, error)
	// RevokeUserFamilies revokes, at `at`, every family of the user that is
	// live at `at`, and returns those, newest first.
	RevokeUserFamilies(ctx context.Context, userID string, at time.Time) ([]*Family, error)
	// Purge deletes, with their tokens, the families that are past their
	// absolute or idle expiry by the backend's clock, and returns how many
	// families it deleted. Revoked families are kept until then, so that a
	// late presentation is still reported as OutcomeRevoked.
	Purge(ctx context.Context) (int, error)
}
