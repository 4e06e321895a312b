package keys

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
)

// rsaBits is the size of the RSA keys the ring generates. Verification
// accepts 2048 bits and more (jws.MinRSABits).
const rsaBits = 3072

// rsaAlgorithm is RS256: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), for
// verifiers that know nothing else.
var rsaAlgorithm = algorithm{
	generate: func() (crypto.Signer, error) {
		return rsa.GenerateKey(rand.Reader, rsaBits)
	},
	members: func(pub crypto.PublicKey) ([]member, error) {
		k := pub.(*rsa.PublicKey)
		return []member{
			{"e", b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())},
			{"kty", "RSA"},
			{"n", b64.EncodeToString(k.N.Bytes())},
		}, nil
	},
}
