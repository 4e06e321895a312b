package keys

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
)

// ed25519Algorithm is EdDSA over Ed25519 (RFC 8037): small keys, fast
// deterministic signatures, the default.
var ed25519Algorithm = algorithm{
	generate: func() (crypto.Signer, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	},
	members: func(pub crypto.PublicKey) ([]member, error) {
		return []member{
			{"crv", "Ed25519"},
			{"kty", "OKP"},
			{"x", b64.EncodeToString(pub.(ed25519.PublicKey))},
		}, nil
	},
}
