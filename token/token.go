// Package token issues and verifies Gatehouse's access tokens: JWS compact
// JWTs in the RFC 9068 profile, signed by the keys of a keys.Ring.
//
// A token's header is {"alg","typ":"at+jwt","kid"}; its claims are iss, sub
// (the user id), aud, exp, iat, jti, sid (the refresh family or session it
// belongs to), and scope and roles where set.
//
// Verification is one call, Verifier.Verify, that cannot be half-done: size,
// structure, strict base64url, header rules, the key by kid, the algorithm
// from the key (never from the token), the signature, typ, iss, aud, exp,
// nbf, iat, jti and sid, and revocation, all together. What it refuses is
// ErrInvalidToken, ErrExpired or ErrRevoked; Reason tells the log which check
// failed, the client never learns it.
//
// Choices made where the RFCs leave room:
//   - typ must be exactly "at+jwt" or "application/at+jwt" (RFC 9068 §4,
//     compared case-sensitively: "AT+JWT" and "JWT" are refused).
//   - aud may be a string or an array of strings; one element must equal
//     the verifier's audience exactly (RFC 7519 §4.1.3).
//   - exp, iat, jti and sid are required; nbf is optional. NumericDates must
//     be integers (no fraction, no exponent).
//   - exp, nbf and iat are checked with one leeway (default 30 s, at most
//     60 s); exp must be after iat.
//   - Unknown claims are ignored (RFC 7519 §4), but the claims set must be
//     strict JSON: no duplicate or case-variant names, valid UTF-8.
//   - The header allows only alg, typ and kid (see internal/jws).
package token

import (
	"errors"
	"time"
)

// The errors Verify returns for a refused token. Callers branch on them with
// errors.Is; the error's text adds the reason, which is for logs only.
var (
	// ErrInvalidToken is any structural, signature or claim failure.
	ErrInvalidToken = errors.New("token: invalid token")
	// ErrExpired is a validly signed token past its exp (and the leeway).
	ErrExpired = errors.New("token: expired")
	// ErrRevoked is a validly signed, unexpired token that the revocation
	// checker refuses (its jti, its sid, or its user's revoke-all time).
	ErrRevoked = errors.New("token: revoked")
)

// refusal is a refused token: one of the sentinels and the check that failed.
type refusal struct {
	kind   error
	reason string
}

func (e *refusal) Error() string { return e.kind.Error() + ": " + e.reason }
func (e *refusal) Unwrap() error { return e.kind }

func invalid(reason string) *refusal { return &refusal{ErrInvalidToken, reason} }

// Reason returns why err refused a token, for the audit log: which check
// failed ("header alg does not match the key", "exp passed", ...). It never
// contains the token or a claim value. For an error that is not a refusal it
// returns err.Error(), and "" for nil.
func Reason(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// Claims are the claims of a verified or issued access token. Times have
// one-second precision (NumericDate) and are in UTC.
type Claims struct {
	// Issuer is iss.
	Issuer string
	// Subject is sub, the user id.
	Subject string
	// Audience is the aud that matched: the verifier's audience (also when
	// the token's aud is an array holding it).
	Audience string
	// ExpiresAt is exp.
	ExpiresAt time.Time
	// IssuedAt is iat.
	IssuedAt time.Time
	// NotBefore is nbf, zero when absent.
	NotBefore time.Time
	// JTI is jti, the token's unique id (the denylist key).
	JTI string
	// SID is sid: the refresh family or session the token belongs to.
	SID string
	// Scope is scope, empty when absent.
	Scope string
	// Roles is roles, nil when absent.
	Roles []string
}

// clone returns a copy of c that shares nothing mutable with it.
func (c *Claims) clone() *Claims {
	d := *c
	if c.Roles != nil {
		d.Roles = append(make([]string, 0, len(c.Roles)), c.Roles...)
	}
	return &d
}
