package token

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/jws"
)

// Verifier settings.
const (
	// DefaultLeeway is the default clock leeway for exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest leeway a Verifier accepts.
	MaxLeeway = 60 * time.Second
	// DefaultCacheSize is the default number of verified tokens cached.
	DefaultCacheSize = 10000
)

// KeySource gives the verifier the public keys it trusts, by kid, with the
// algorithm that belongs to each. *keys.Ring implements it; so can a JWKS
// cache in another service.
type KeySource interface {
	// Public returns the algorithm and public key of the key kid, and false
	// when the key is unknown or no longer published.
	Public(kid string) (alg string, key crypto.PublicKey, ok bool)
}

// RevocationChecker is implemented by the revocation package.
type RevocationChecker interface {
	// Revoked reports whether a token with these claims is revoked: its
	// jti is denylisted, its sid revoked, or it was issued before the
	// user's revoke-all time.
	Revoked(ctx context.Context, jti, sid, userID string, issuedAt time.Time) (bool, error)
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer is the exact iss required. Required.
	Issuer string
	// Audience is the aud required (exactly, or as one element of an
	// array). Required.
	Audience string
	// Leeway is the clock leeway for exp, nbf and iat: default
	// DefaultLeeway, at most MaxLeeway.
	Leeway time.Duration
	// Clock tells the time; nil is the system clock.
	Clock clock.Clock
	// Revocation is consulted for every token, cached or not. Required
	// unless UnsafeSkipRevocation is set.
	Revocation RevocationChecker
	// UnsafeSkipRevocation verifies without consulting any revocation: a
	// revoked token is then accepted until it expires. It exists for
	// JWKS-only verification (the lab shows what it costs); Revocation must
	// be nil with it.
	UnsafeSkipRevocation bool
	// CacheSize bounds the cache of verified tokens (default
	// DefaultCacheSize); a negative size disables the cache.
	CacheSize int
}

// Verifier verifies access tokens. It is safe for concurrent use.
//
// It keeps a bounded cache of the tokens it has verified, keyed by the exact
// token string, so that a repeated token skips parsing and the signature
// check. A cached token is still refused at its exp, when its key leaves the
// key source, and whenever the revocation checker refuses it: revocation is
// consulted on every call.
type Verifier struct {
	keys       KeySource
	issuer     string
	audience   string
	leeway     time.Duration
	clock      clock.Clock
	revocation RevocationChecker
	cache      *cache // nil when disabled
}

// NewVerifier returns a Verifier that trusts the keys of ks.
func NewVerifier(ks KeySource, cfg VerifierConfig) (*Verifier, error) {
	switch {
	case ks == nil:
		return nil, errors.New("token: nil key source")
	case cfg.Issuer == "" || cfg.Audience == "":
		return nil, errors.New("token: issuer and audience are required")
	case cfg.Leeway < 0:
		return nil, errors.New("token: negative leeway")
	case cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("token: leeway %v exceeds the maximum %v", cfg.Leeway, MaxLeeway)
	case cfg.Revocation == nil && !cfg.UnsafeSkipRevocation:
		return nil, errors.New("token: no revocation checker (set UnsafeSkipRevocation to verify without one)")
	case cfg.Revocation != nil && cfg.UnsafeSkipRevocation:
		return nil, errors.New("token: UnsafeSkipRevocation set together with a revocation checker")
	}
	v := &Verifier{
		keys: ks, issuer: cfg.Issuer, audience: cfg.Audience, leeway: cfg.Leeway,
		clock: cfg.Clock, revocation: cfg.Revocation,
	}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.clock == nil {
		v.clock = clock.System{}
	}
	switch {
	case cfg.CacheSize == 0:
		v.cache = newCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		v.cache = newCache(cfg.CacheSize)
	}
	return v, nil
}

// Refusals found before or without parsing. Allocated once: the hot path of
// refusal costs nothing.
var (
	errTooLarge    = invalid("token larger than 8 KiB")
	errTyp         = invalid("header typ is not at+jwt")
	errUnknownKid  = invalid("header kid names no published key")
	errAlgMismatch = invalid("header alg does not match the key")
	errIssuer      = invalid("iss does not match")
	errAudience    = invalid("aud does not match")
	errNoSubject   = invalid("sub missing or empty")
	errNoJTI       = invalid("jti missing or empty")
	errNoSID       = invalid("sid missing or empty")
	errNoExp       = invalid("exp missing")
	errNoIat       = invalid("iat missing")
	errNoIssuer    = invalid("iss missing")
	errNoAudience  = invalid("aud missing")
	errExpOrder    = invalid("exp is not after iat")
	errNotYet      = invalid("nbf is in the future")
	errIatFuture   = invalid("iat is in the future")
	errExpired     = &refusal{ErrExpired, "exp passed"}
	errRevoked     = &refusal{ErrRevoked, "revoked"}
)

// Verify verifies the access token raw and returns its claims. It checks, in
// one go: size, structure, strict base64url, header rules, the key by kid,
// the header's alg against the key's, the signature, typ, iss, aud, sub,
// exp (ErrExpired), nbf, iat, jti, sid, and revocation (ErrRevoked). Any
// other refusal is ErrInvalidToken. An error of the revocation checker is
// returned wrapped, as none of the three: the token is not accepted.
// The returned claims are the caller's to keep.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > jws.MaxSize {
		return nil, errTooLarge
	}
	now := v.clock.Now()
	if v.cache != nil {
		if e := v.cache.get(raw); e != nil {
			if now.Before(e.claims.ExpiresAt) {
				if alg, _, ok := v.keys.Public(e.kid); ok && alg == e.alg {
					if err := v.checkRevoked(ctx, &e.claims); err != nil {
						return nil, err
					}
					return e.claims.clone(), nil
				}
			}
			v.cache.remove(raw) // expired, or its key left: verify afresh
		}
	}
	c, kid, alg, err := v.verify(raw, now)
	if err != nil {
		return nil, err
	}
	if err := v.checkRevoked(ctx, c); err != nil {
		return nil, err
	}
	if v.cache != nil && now.Before(c.ExpiresAt) {
		v.cache.put(raw, &cacheEntry{claims: *c.clone(), kid: kid, alg: alg}, now)
	}
	return c, nil
}

// verify does every check but revocation, and returns the claims and the
// token's key.
func (v *Verifier) verify(raw string, now time.Time) (c *Claims, kid, alg string, err error) {
	tok, err := jws.Parse(raw)
	if err != nil {
		return nil, "", "", invalid(err.Error())
	}
	if t := tok.Header.Typ; t != typ && t != "application/"+typ {
		return nil, "", "", errTyp
	}
	alg, key, ok := v.keys.Public(tok.Header.Kid)
	if !ok {
		return nil, "", "", errUnknownKid
	}
	if tok.Header.Alg != alg {
		return nil, "", "", errAlgMismatch
	}
	if err := jws.Verify(alg, key, tok.SigningInput, tok.Signature); err != nil {
		return nil, "", "", invalid(err.Error())
	}
	c, err = v.parseClaims(tok.Payload)
	if err != nil {
		return nil, "", "", err
	}
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return nil, "", "", errExpired
	}
	later := now.Add(v.leeway)
	switch {
	case !c.NotBefore.IsZero() && c.NotBefore.After(later):
		return nil, "", "", errNotYet
	case c.IssuedAt.After(later):
		return nil, "", "", errIatFuture
	}
	return c, tok.Header.Kid, alg, nil
}

// checkRevoked asks the revocation checker about c.
func (v *Verifier) checkRevoked(ctx context.Context, c *Claims) error {
	if v.revocation == nil {
		return nil
	}
	revoked, err := v.revocation.Revoked(ctx, c.JTI, c.SID, c.Subject, c.IssuedAt)
	if err != nil {
		return fmt.Errorf("token: check revocation: %w", err)
	}
	if revoked {
		return errRevoked
	}
	return nil
}

// Bits of the claims seen by parseClaims.
const (
	seenIss = 1 << iota
	seenSub
	seenAud
	seenExp
	seenIat
	seenNbf
	seenJTI
	seenSID
	seenScope
	seenRoles
)

// parseClaims reads the claims set strictly and checks iss, aud and the
// presence of the required claims.
func (v *Verifier) parseClaims(payload []byte) (*Claims, error) {
	c := &Claims{}
	var seen int
	var refused *refusal
	err := jws.ScanObject(payload, func(name []byte, val jws.Value) error {
		var err error
		var bit int
		switch string(name) {
		case "iss":
			bit = seenIss
			var ok bool
			if ok, err = stringIs(val, v.issuer); err == nil && !ok {
				refused = errIssuer
			}
			c.Issuer = v.issuer
		case "aud":
			bit = seenAud
			var ok bool
			if ok, err = audienceHas(val, v.audience); err == nil && !ok {
				refused = errAudience
			}
			c.Audience = v.audience
		case "sub":
			bit = seenSub
			c.Subject, err = val.Str()
		case "jti":
			bit = seenJTI
			c.JTI, err = val.Str()
		case "sid":
			bit = seenSID
			c.SID, err = val.Str()
		case "scope":
			bit = seenScope
			c.Scope, err = val.Str()
		case "roles":
			bit = seenRoles
			c.Roles, err = val.Strs()
		case "exp":
			bit = seenExp
			c.ExpiresAt, err = numericDate(val)
		case "iat":
			bit = seenIat
			c.IssuedAt, err = numericDate(val)
		case "nbf":
			bit = seenNbf
			c.NotBefore, err = numericDate(val)
		default:
			return nil // unknown claims are ignored (RFC 7519 §4)
		}
		if err != nil {
			refused = invalid("claim " + string(name) + " has the wrong type")
		}
		if refused != nil {
			return refused
		}
		seen |= bit
		return nil
	})
	switch {
	case refused != nil:
		return nil, refused
	case err != nil:
		return nil, invalid("claims: " + err.Error())
	case seen&seenIss == 0:
		return nil, errNoIssuer
	case seen&seenAud == 0:
		return nil, errNoAudience
	case seen&seenSub == 0 || c.Subject == "":
		return nil, errNoSubject
	case seen&seenJTI == 0 || c.JTI == "":
		return nil, errNoJTI
	case seen&seenSID == 0 || c.SID == "":
		return nil, errNoSID
	case seen&seenExp == 0:
		return nil, errNoExp
	case seen&seenIat == 0:
		return nil, errNoIat
	case !c.ExpiresAt.After(c.IssuedAt):
		return nil, errExpOrder
	}
	return c, nil
}

// stringIs reports whether a string value equals want, without allocating
// in the common case of a value without escapes.
func stringIs(v jws.Value, want string) (bool, error) {
	if v.Kind != jws.KindString {
		return false, errors.New("not a string")
	}
	body := v.Raw[1 : len(v.Raw)-1]
	if !strings.Contains(string(body), `\`) {
		return string(body) == want, nil
	}
	s, err := v.Str()
	return s == want, err
}

// audienceHas reports whether an aud value (a string or an array of
// strings) holds want.
func audienceHas(v jws.Value, want string) (bool, error) {
	if v.Kind == jws.KindString {
		return stringIs(v, want)
	}
	auds, err := v.Strs()
	if err != nil {
		return false, err
	}
	for _, a := range auds {
		if a == want {
			return true, nil
		}
	}
	return false, nil
}

// numericDate reads an integer NumericDate.
func numericDate(v jws.Value) (time.Time, error) {
	n, err := v.Int()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0).UTC(), nil
}

// cache holds verified tokens by their exact string.
type cache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*cacheEntry
}

// cacheEntry is a verified token: its claims and the key that signed it.
// Entries are never modified after they are put.
type cacheEntry struct {
	claims   Claims
	kid, alg string
}

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[string]*cacheEntry)}
}

func (c *cache) get(raw string) *cacheEntry {
	c.mu.RLock()
	e := c.m[raw]
	c.mu.RUnlock()
	return e
}

func (c *cache) remove(raw string) {
	c.mu.Lock()
	delete(c.m, raw)
	c.mu.Unlock()
}

// put adds an entry. When the cache is full it first drops the expired
// entries among a few, or else one entry: map iteration order is random, so
// this is random eviction, which needs no bookkeeping on hits.
func (c *cache) put(raw string, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[raw]; ok {
		return
	}
	if len(c.m) >= c.max {
		dropped, looked := false, 0
		for k, old := range c.m {
			if !now.Before(old.claims.ExpiresAt) {
				delete(c.m, k)
				dropped = true
			}
			if looked++; looked == 8 {
				break
			}
		}
		if !dropped {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
	}
	c.m[strings.Clone(raw)] = e
}
