package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/token"
)

// Tokens in these tests are forged byte by byte: header and claims JSON are
// written by hand, encoded with encoding/base64 and signed with the standard
// library's crypto. No JWT library is involved, and not this module's signing
// code either, so that a bug there cannot hide one in verification.

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "api.example.com"
)

var t0 = time.Date(2030, time.June, 1, 9, 0, 0, 0, time.UTC)

// b64 encodes a segment.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64s(s string) string { return b64([]byte(s)) }

// testKey is a key pair made with the standard library.
type testKey struct {
	alg  string
	priv crypto.Signer
}

// keySet is a static KeySource: kid → key, like a fetched JWKS.
type keySet map[string]testKey

func (ks keySet) Public(kid string) (string, crypto.PublicKey, bool) {
	k, ok := ks[kid]
	if !ok {
		return "", nil, false
	}
	return k.alg, k.priv.Public(), true
}

// testKeys are the verifier's trusted keys ("ed", "es", "rs") and an
// attacker's keys of each algorithm ("evil-…", not trusted).
var testKeys = sync.OnceValues(func() (keySet, error) {
	ks := keySet{}
	for _, prefix := range []string{"", "evil-"} {
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		rs, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		ks[prefix+"ed"] = testKey{"EdDSA", ed}
		ks[prefix+"es"] = testKey{"ES256", es}
		ks[prefix+"rs"] = testKey{"RS256", rs}
	}
	return ks, nil
})

func mustKeys(t testing.TB) keySet {
	t.Helper()
	ks, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// trusted returns the key set without the attacker's keys.
func trusted(ks keySet) keySet {
	out := keySet{}
	for _, kid := range []string{"ed", "es", "rs"} {
		out[kid] = ks[kid]
	}
	return out
}

// sign signs input with the standard library, in JWS form.
func sign(t testing.TB, k testKey, input string) []byte {
	t.Helper()
	switch k.alg {
	case "EdDSA":
		return ed25519.Sign(k.priv.(ed25519.PrivateKey), []byte(input))
	case "ES256":
		d := sha256.Sum256([]byte(input))
		der, err := ecdsa.SignASN1(rand.Reader, k.priv.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			t.Fatal(err)
		}
		return derToRaw(t, der)
	case "RS256":
		d := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(nil, k.priv.(*rsa.PrivateKey), crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("sign: alg %s", k.alg)
	return nil
}

// derToRaw turns an ECDSA DER signature into JOSE's 64-byte R||S, reading
// the DER by hand: SEQUENCE { INTEGER r, INTEGER s }.
func derToRaw(t testing.TB, der []byte) []byte {
	t.Helper()
	if der[0] != 0x30 || int(der[1]) != len(der)-2 {
		t.Fatalf("unexpected DER %x", der)
	}
	out := make([]byte, 64)
	rest := der[2:]
	for i := range 2 {
		if rest[0] != 0x02 {
			t.Fatalf("unexpected DER %x", der)
		}
		n := int(rest[1])
		v := rest[2 : 2+n]
		for len(v) > 32 && v[0] == 0 {
			v = v[1:]
		}
		copy(out[32*(i+1)-len(v):32*(i+1)], v)
		rest = rest[2+n:]
	}
	return out
}

// forge builds a compact token from hand-written header and claims JSON,
// signed by k.
func forge(t testing.TB, k testKey, header, claims string) string {
	t.Helper()
	input := b64s(header) + "." + b64s(claims)
	return input + "." + b64(sign(t, k, input))
}

// hs256 builds a token MACed with HMAC-SHA256 under secret.
func hs256(header, claims string, secret []byte) string {
	input := b64s(header) + "." + b64s(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

// header returns the usual header for alg and kid.
func header(alg, kid string) string {
	return `{"alg":"` + alg + `","typ":"at+jwt","kid":"` + kid + `"}`
}

// claimsAt returns valid claims issued at iat, expiring ten minutes later.
func claimsAt(iat time.Time, jti string) string {
	return fmt.Sprintf(`{"iss":%q,"sub":"user-1","aud":%q,"exp":%d,"iat":%d,"jti":%q,"sid":"sid-1","scope":"read write","roles":["admin","dev"]}`,
		testIssuer, testAudience, iat.Add(10*time.Minute).Unix(), iat.Unix(), jti)
}

// env is a verifier over a key set, with a fake clock and a real revocation
// index over the memory store.
type env struct {
	clock    *clock.Fake
	keys     keySet
	revoked  *revocation.Index
	verifier *token.Verifier
}

func newEnv(t testing.TB, ks token.KeySource, cacheSize int) *env {
	t.Helper()
	c := clock.NewFake(t0)
	idx, err := revocation.New(t.Context(), memory.NewRevocations(c), c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(ks, token.VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Clock: c, Revocation: idx, CacheSize: cacheSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clock: c, revoked: idx, verifier: v}
	if set, ok := ks.(keySet); ok {
		e.keys = set
	}
	return e
}
