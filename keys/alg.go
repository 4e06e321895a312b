package keys

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/jws"
)

// The algorithms a ring can sign with. EdDSA is the default.
const (
	EdDSA = jws.EdDSA // Ed25519
	ES256 = jws.ES256 // ECDSA on P-256 with SHA-256
	RS256 = jws.RS256 // RSASSA-PKCS1-v1_5 with SHA-256, 3072-bit keys
)

// algorithm is what the ring needs to know of a key type. Each lives in its
// own file.
type algorithm struct {
	// generate makes a new private key.
	generate func() (crypto.Signer, error)
	// members returns the public members of the key's JWK, in the
	// lexicographic order of RFC 7638 §3.2 (the thumbprint input).
	members func(pub crypto.PublicKey) ([]member, error)
}

// member is one JWK member; values are base64url or fixed ASCII names, so
// they need no JSON escaping.
type member struct{ name, value string }

var algorithms = map[string]*algorithm{
	EdDSA: &ed25519Algorithm,
	ES256: &ecdsaAlgorithm,
	RS256: &rsaAlgorithm,
}

var b64 = base64.RawURLEncoding

// publicKey is the parsed, checked public part of a record.
type publicKey struct {
	key crypto.PublicKey
	kid string // RFC 7638 thumbprint
	jwk string // the JWKS entry: JSON object with kid, alg and use
}

// newPublicKey checks that pub is a key of alg and derives its kid and JWK.
func newPublicKey(alg string, pub crypto.PublicKey) (*publicKey, error) {
	a, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("keys: unsupported algorithm %q (want EdDSA, ES256 or RS256)", alg)
	}
	if err := jws.CheckKey(alg, pub); err != nil {
		return nil, err
	}
	ms, err := a.members(pub)
	if err != nil {
		return nil, err
	}
	var tp strings.Builder
	tp.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			tp.WriteByte(',')
		}
		tp.WriteString(`"` + m.name + `":"` + m.value + `"`)
	}
	sum := sha256.Sum256([]byte(tp.String() + "}"))
	kid := b64.EncodeToString(sum[:])
	jwk := tp.String() + `,"kid":"` + kid + `","alg":"` + alg + `","use":"sig"}`
	return &publicKey{key: pub, kid: kid, jwk: jwk}, nil
}

// parsePublicKey reads a record's SubjectPublicKeyInfo.
func parsePublicKey(alg string, spki []byte) (*publicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("keys: parse public key: %w", err)
	}
	return newPublicKey(alg, pub)
}
