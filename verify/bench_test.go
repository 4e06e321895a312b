package verify_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/token"
)

// The benchmarks compare verify.Verifier (EdDSA, feed connected, tokens not
// revoked) with the minimal reference verifier of token/bench_test.go on
// the same server's keys. Run:
//
//	go test ./verify -run XXX -bench . -benchtime=1s
//
// "cached" repeats one token: the token verifier's cache skips parsing and
// the signature, revocation and staleness are still checked. "uncached"
// cycles through more distinct tokens than the cache holds, so every call
// verifies in full (and replaces a cache entry), like the reference.

// benchPool is the number of distinct tokens of the uncached runs: twice
// the token verifier's cache.
const benchPool = 2 * token.DefaultCacheSize

// benchTokens mints n tokens with the server's signing key.
func benchTokens(b *testing.B, g *gatehouse, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		raw, _, err := g.issuer.Issue(context.Background(), "user-42", "family-7", []string{"reader"}, "")
		if err != nil {
			b.Fatal(err)
		}
		out[i] = raw
	}
	return out
}

func BenchmarkVerify(b *testing.B) {
	g := newGatehouse(b)
	v := newVerifier(b, g.config())
	ctx := context.Background()
	b.Run("EdDSA/cached", func(b *testing.B) {
		raw := benchTokens(b, g, 1)[0]
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EdDSA/uncached", func(b *testing.B) {
		pool := benchTokens(b, g, benchPool)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := v.Verify(ctx, pool[i%len(pool)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkReference(b *testing.B) {
	g := newGatehouse(b)
	pool := benchTokens(b, g, benchPool)
	b.Run("EdDSA", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := referenceVerify(pool[i%len(pool)], g.ring, g.url, time.Now()); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

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

// referenceVerify is the minimal reference of token/bench_test.go, EdDSA
// only: split, strict base64url decode, json.Unmarshal of the header, the
// standard library's signature check with the key's algorithm,
// json.Unmarshal of the claims, iss/aud/exp.
func referenceVerify(raw string, ks token.KeySource, issuer string, now time.Time) (*referenceClaims, error) {
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
	if !ok || alg != h.Alg || alg != keys.EdDSA {
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
	input := []byte(raw[:len(parts[0])+1+len(parts[1])])
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(key.(ed25519.PublicKey), input, sig) {
		return nil, errors.New("bad signature")
	}
	var c referenceClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	if c.Iss != issuer || c.Aud != audience || now.Unix() >= c.Exp {
		return nil, errors.New("bad claims")
	}
	return &c, nil
}
