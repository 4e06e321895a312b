package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/token"
)

// The benchmarks compare Verifier.Verify with a minimal reference verifier,
// per algorithm, on the same token and key: the price of every check the
// reference leaves out (strict JSON, header rules, the key's algorithm, typ,
// nbf/iat, jti/sid, revocation). Run:
//
//	go test ./token -run XXX -bench . -benchtime=1s -count 1

var benchAlgs = []string{keys.EdDSA, keys.ES256, keys.RS256}

// referenceClaims is what the reference verifier reads.
type referenceClaims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Aud   string   `json:"aud"`
	Exp   int64    `json:"exp"`
	Iat   int64    `json:"iat"`
	JTI   string   `json:"jti"`
	SID   string   `json:"sid"`
	Roles []string `json:"roles"`
}

// referenceVerify is the minimal reference: split, strict base64url decode,
// json.Unmarshal of the header, the standard library's signature check with
// the key's algorithm, json.Unmarshal of the claims, iss/aud/exp.
func referenceVerify(raw string, ks token.KeySource, now time.Time) (*referenceClaims, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not three parts")
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, err
	}
	var h struct{ Alg, Kid, Typ string }
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, err
	}
	alg, key, ok := ks.Public(h.Kid)
	if !ok || alg != h.Alg {
		return nil, errors.New("bad key")
	}
	payload, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	if !referenceSignature(alg, key, []byte(raw[:len(parts[0])+1+len(parts[1])]), sig) {
		return nil, errors.New("bad signature")
	}
	var c referenceClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	if c.Iss != testIssuer || c.Aud != testAudience || now.Unix() >= c.Exp {
		return nil, errors.New("bad claims")
	}
	return &c, nil
}

func referenceSignature(alg string, key crypto.PublicKey, input, sig []byte) bool {
	switch alg {
	case keys.EdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(key.(ed25519.PublicKey), input, sig)
	case keys.ES256:
		if len(sig) != 64 {
			return false
		}
		d := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(key.(*ecdsa.PublicKey), d[:], r, s)
	case keys.RS256:
		d := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(key.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
	}
	return false
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			e := newRingEnv(b, alg, -1) // no cache: every call verifies in full
			raw, _ := e.issue(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.verifier.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReference(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			e := newRingEnv(b, alg, -1)
			raw, _ := e.issue(b)
			now := e.clock.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := referenceVerify(raw, e.ring, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	e := newRingEnv(b, keys.EdDSA, token.DefaultCacheSize)
	raw, _ := e.issue(b)
	ctx := context.Background()
	if _, err := e.verifier.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.verifier.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefuseOversized is the cost of refusing a 1 MiB token.
func BenchmarkRefuseOversized(b *testing.B) {
	e := newRingEnv(b, keys.EdDSA, token.DefaultCacheSize)
	huge := strings.Repeat("A", 1<<20)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.verifier.Verify(ctx, huge); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	e := newRingEnv(b, keys.EdDSA, -1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.issuer.Issue(ctx, "user-42", "family-7", []string{"admin"}, "read"); err != nil {
			b.Fatal(err)
		}
	}
}
