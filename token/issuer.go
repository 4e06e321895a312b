package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/jws"
	"github.com/gatehouse-auth/gatehouse/keys"
)

// DefaultLifetime is the default access-token lifetime.
const DefaultLifetime = 10 * time.Minute

// typ is the header typ of access tokens (RFC 9068 §2.1).
const typ = "at+jwt"

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Issuer is the iss claim: the server's issuer URL. Required.
	Issuer string
	// Audience is the aud claim. Required.
	Audience string
	// Lifetime is the token lifetime, whole seconds (default
	// DefaultLifetime). It must not exceed the ring's TokenLifetime, or keys
	// would leave the JWKS while their tokens are still valid.
	Lifetime time.Duration
	// Clock tells the time; nil is the system clock.
	Clock clock.Clock
}

// Issuer mints access tokens with the current key of a ring. It is safe for
// concurrent use.
type Issuer struct {
	ring     *keys.Ring
	issuer   string
	audience string
	lifetime int64 // seconds
	clock    clock.Clock
}

// NewIssuer returns an Issuer signing with ring's current key.
func NewIssuer(ring *keys.Ring, cfg IssuerConfig) (*Issuer, error) {
	if ring == nil {
		return nil, errors.New("token: nil key ring")
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("token: issuer and audience are required")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	switch {
	case cfg.Lifetime < time.Second:
		return nil, fmt.Errorf("token: lifetime %v is under a second", cfg.Lifetime)
	case cfg.Lifetime > ring.TokenLifetime():
		return nil, fmt.Errorf("token: lifetime %v exceeds the key ring's TokenLifetime %v", cfg.Lifetime, ring.TokenLifetime())
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	return &Issuer{
		ring: ring, issuer: cfg.Issuer, audience: cfg.Audience,
		lifetime: int64(cfg.Lifetime / time.Second), clock: cfg.Clock,
	}, nil
}

// wireClaims is the JSON of the claims, in this order.
type wireClaims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Aud   string   `json:"aud"`
	Exp   int64    `json:"exp"`
	Iat   int64    `json:"iat"`
	JTI   string   `json:"jti"`
	SID   string   `json:"sid"`
	Scope string   `json:"scope,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// Issue mints an access token for the user subject, belonging to the refresh
// family or session sid, with the given roles and scope (either may be
// empty). It returns the compact token and its claims. The jti is 128
// random bits.
func (i *Issuer) Issue(ctx context.Context, subject, sid string, roles []string, scope string) (string, Claims, error) {
	if subject == "" || sid == "" {
		return "", Claims{}, errors.New("token: issue: subject and sid are required")
	}
	if !utf8.ValidString(subject) || !utf8.ValidString(sid) || !utf8.ValidString(scope) {
		return "", Claims{}, errors.New("token: issue: subject, sid and scope must be UTF-8")
	}
	for _, r := range roles {
		if r == "" || !utf8.ValidString(r) {
			return "", Claims{}, errors.New("token: issue: roles must be non-empty UTF-8")
		}
	}
	if len(roles) == 0 {
		roles = nil
	}
	key, err := i.ring.Signer(ctx)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: jti: %w", err)
	}
	iat := i.clock.Now().Unix()
	w := wireClaims{
		Iss: i.issuer, Sub: subject, Aud: i.audience, Exp: iat + i.lifetime, Iat: iat,
		JTI: base64.RawURLEncoding.EncodeToString(id[:]), SID: sid, Scope: scope, Roles: slices.Clone(roles),
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: encode claims: %w", err)
	}
	header := `{"alg":"` + key.Alg() + `","typ":"` + typ + `","kid":"` + key.KID() + `"}`
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := key.Sign([]byte(input))
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: sign: %w", err)
	}
	raw := input + "." + base64.RawURLEncoding.EncodeToString(sig)
	if len(raw) > jws.MaxSize {
		return "", Claims{}, fmt.Errorf("token: issue: token of %d bytes exceeds %d (too many roles?)", len(raw), jws.MaxSize)
	}
	return raw, Claims{
		Issuer: w.Iss, Subject: w.Sub, Audience: w.Aud,
		ExpiresAt: time.Unix(w.Exp, 0).UTC(), IssuedAt: time.Unix(w.Iat, 0).UTC(),
		JTI: w.JTI, SID: w.SID, Scope: w.Scope, Roles: slices.Clone(roles),
	}, nil
}
