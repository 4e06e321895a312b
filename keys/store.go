package keys

import (
	"context"
	"time"
)

// Record is a signing key as the store keeps it. Everything but the
// Lifecycle is written once, at creation.
type Record struct {
	// KID is the key id: the RFC 7638 JWK thumbprint (SHA-256, base64url) of
	// the public key. It is unique.
	KID string
	// Alg is the JWS algorithm of the key: EdDSA, ES256 or RS256.
	Alg string
	// Sealed is the private key, PKCS #8 DER, sealed with AES-256-GCM under
	// the key-encryption key: a random 12-byte nonce, then the ciphertext and
	// its tag. The additional data binds it to KID and Alg, so a sealed key
	// moved to another record does not open.
	Sealed []byte
	// PublicKey is the public key, SubjectPublicKeyInfo DER. The ring checks
	// on loading that it matches both KID and the private key.
	PublicKey []byte
	// CreatedAt is when the key was generated.
	CreatedAt time.Time
	Lifecycle
}

// Lifecycle is the part of a Record that changes after creation.
type Lifecycle struct {
	// SignsFrom is when the key starts signing. It is in the JWKS from its
	// creation, so verifiers learn it before it signs (the publish delay).
	SignsFrom time.Time
	// RetiredAt is when the key stops signing: the SignsFrom of its
	// successor. Zero while it has no successor.
	RetiredAt time.Time
	// RemoveAt is when the key leaves the JWKS and stops verifying:
	// RetiredAt plus the longest access-token lifetime plus the leeway, so
	// that every token it signed has expired by then. Zero while RetiredAt is.
	RemoveAt time.Time
	// Removed marks an emergency removal: the key neither signs nor verifies,
	// whatever the times say. It never goes back to false.
	Removed bool
}

// Store is what the key ring needs from a storage backend. Returned records
// are copies; times come back in UTC, equal (time.Time.Equal) to what was
// stored.
type Store interface {
	// CreateSigningKey saves a new record. A record with the same KID is
	// store.ErrConflict.
	CreateSigningKey(ctx context.Context, r *Record) error
	// SigningKeys returns every record, removed ones included, oldest
	// (CreatedAt, then KID) first.
	SigningKeys(ctx context.Context) ([]*Record, error)
	// UpdateSigningKey replaces the lifecycle of the record with that KID;
	// nothing else of the record changes. Removed is sticky: once true it
	// stays true, whatever l says. A missing record is store.ErrNotFound.
	UpdateSigningKey(ctx context.Context, kid string, l Lifecycle) error
}
