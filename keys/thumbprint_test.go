package keys

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"testing"
)

// TestThumbprintVectors checks kids against the published RFC 7638
// thumbprints: RFC 8037 A.3 (Ed25519) and RFC 7638 §3.1 (RSA).
func TestThumbprintVectors(t *testing.T) {
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaN := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	cases := []struct {
		name, alg string
		key       any
		kid       string
	}{
		{"RFC 8037 A.3", EdDSA, ed25519.PublicKey(dec("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
		{"RFC 7638 3.1", RS256, &rsa.PublicKey{N: new(big.Int).SetBytes(dec(rsaN)), E: 65537}, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := newPublicKey(tc.alg, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if pub.kid != tc.kid {
				t.Fatalf("kid %s, want %s", pub.kid, tc.kid)
			}
		})
	}
}
