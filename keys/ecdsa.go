package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
)

// ecdsaAlgorithm is ES256: ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
var ecdsaAlgorithm = algorithm{
	generate: func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	},
	members: func(pub crypto.PublicKey) ([]member, error) {
		point, err := pub.(*ecdsa.PublicKey).Bytes() // 0x04 || X || Y
		if err != nil || len(point) != 65 {
			return nil, fmt.Errorf("keys: encode P-256 public key: %v", err)
		}
		return []member{
			{"crv", "P-256"},
			{"kty", "EC"},
			{"x", b64.EncodeToString(point[1:33])},
			{"y", b64.EncodeToString(point[33:])},
		}, nil
	},
}
