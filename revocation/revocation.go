// Package revocation is what a Gatehouse verifier consults before it accepts
// an access token that is otherwise valid: a denylist of token ids, a list of
// revoked sessions and refresh families, and a revoke-all time per user.
//
// An Index keeps every live entry in memory, so that a check is a few map
// lookups under a read lock and never touches a store; writes go to a Store
// first and then to the memory index. A new Index loads every live entry from
// its Store, so revocations survive a restart and are shared by every
// instance that reads the same store when it starts. For changes made by
// other instances while it runs, Apply takes an entry received from elsewhere
// (a notification channel) and OnChange publishes the local ones.
//
// # What is revoked
//
// Revoked(ctx, jti, sid, userID, issuedAt) is true when any of these holds:
//
//   - the jti is denylisted (DenyToken: a logout, or RFC 7009 revocation of
//     an access token). The list is keyed by the jti claim, never by the
//     token's bytes: a token re-encoded differently (another base64
//     spelling, other whitespace, a re-signed copy) still carries its jti and
//     is still refused;
//   - the sid is revoked (RevokeSID): the refresh family or session the
//     token was minted for has ended, and with it every access token
//     carrying its id;
//   - issuedAt is before the user's revoked-before time (RevokeUser: forced
//     logout, password change).
//
// # The revoked-before boundary
//
// A JWT's iat has one-second granularity: a token issued at 12:00:00.300
// says iat 12:00:00. A forced logout at 12:00:00.700 must refuse it, although
// 12:00:00 is before 12:00:00.700 only by the truncation. The rule is
// therefore stated in whole seconds:
//
//	refused  ⇔  floor(issuedAt) < ceil(before)
//
// where floor and ceil round to the whole second. A credential is refused
// when the second it was issued in began before the revoke-all time, rounded
// up to the next whole second:
//
//   - before = 12:00:00.700: iat 12:00:00 is refused, iat 12:00:01 is
//     accepted;
//   - before = 12:00:00.000 exactly: iat 11:59:59 is refused, iat 12:00:00 is
//     accepted (such a token was issued at or after 12:00:00.000).
//
// The price is that a credential issued after a forced logout but within the
// same second (from 12:00:00.700 to 12:00:00.999 above) is refused too: a
// client that logs in again at once gets a token that fails until it
// refreshes in the next second. Refusing a legitimate token for under a
// second is preferred to accepting one issued before the logout. issuedAt is
// read at one-second granularity whatever its precision, so the rule is the
// same for a session's creation time. The rule trusts the issuers' clocks: an
// instance whose clock runs ahead would stamp an iat later than the real one.
//
// # Lifetime of entries
//
// An entry is needed only while a credential it refuses can still be
// accepted: a jti until its token's exp, a sid until the last access token
// minted for it expires, a user's revoke-all time until every access token
// issued before it has expired. Callers give those times; the Index keeps
// each entry Retention (60 s, the largest leeway a verifier may allow on
// exp) longer, and Purge drops it after that.
package revocation

import (
	"context"
	"time"
)

// Retention is how much longer than the time its caller gives an entry is
// kept: the largest exp leeway a Gatehouse verifier may be configured with.
const Retention = 60 * time.Second

// Kind says what an Entry's ID names.
type Kind uint8

// The kinds of entries.
const (
	// KindToken: ID is a token's jti.
	KindToken Kind = iota + 1
	// KindSID: ID is a session id or a refresh family id (the sid claim).
	KindSID
	// KindUser: ID is a user id; Before is the user's revoke-all time.
	KindUser
)

// String returns "token", "sid", "user", or "invalid" for any other value.
func (k Kind) String() string {
	switch k {
	case KindToken:
		return "token"
	case KindSID:
		return "sid"
	case KindUser:
		return "user"
	default:
		return "invalid"
	}
}

// Entry is one revocation as the store keeps it and as instances exchange
// it.
type Entry struct {
	// Kind says what ID names.
	Kind Kind
	// ID is the jti, the sid or the user id.
	ID string
	// Before is, for KindUser, the revoke-all time; zero otherwise.
	Before time.Time
	// Until is when the entry may be dropped (Retention included).
	Until time.Time
}

// Store is what the revocation package needs from a storage backend.
//
// Entries of the three kinds live in three separate namespaces (a jti "x"
// and a sid "x" are different entries). Writing an entry that exists merges
// it: Until becomes the later of the two, and so does Before; neither ever
// moves backwards. An entry is live while the backend's clock is before its
// Until. Each method is one atomic operation.
type Store interface {
	// DenyToken records the jti until `until`.
	DenyToken(ctx context.Context, jti string, until time.Time) error
	// RevokeSID records the session or family id until `until`.
	RevokeSID(ctx context.Context, sid string, until time.Time) error
	// RevokeUser records the user's revoke-all time, kept until `until`.
	RevokeUser(ctx context.Context, userID string, before, until time.Time) error
	// Load returns every live entry, in no particular order.
	Load(ctx context.Context) ([]Entry, error)
	// Purge deletes the entries that are no longer live and returns how many
	// it deleted.
	Purge(ctx context.Context) (int, error)
}
