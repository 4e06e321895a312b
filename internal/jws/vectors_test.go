package jws

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// The published examples: RFC 8037 A.4 (Ed25519), RFC 7515 A.3 (ES256) and
// RFC 7515 A.2 (RS256). Their headers have no kid and no typ, so they go
// through the signature layer directly, not through Parse.
const (
	rfc8037X     = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfc8037D     = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfc8037Token = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." +
		"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

	rfc7515Payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"

	rfc7515ES256X     = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
	rfc7515ES256Y     = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
	rfc7515ES256Token = "eyJhbGciOiJFUzI1NiJ9." + rfc7515Payload + "." +
		"DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

	rfc7515RS256N = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qP" +
		"CJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7" +
		"OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uD" +
		"Zlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcD" +
		"TW9gb54h4FRWyuXpoQ"
	rfc7515RS256Token = "eyJhbGciOiJSUzI1NiJ9." + rfc7515Payload + "." +
		"cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5" +
		"jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHl" +
		"b1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9" +
		"QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
)

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// splitVector returns a vector's signing input and decoded signature.
func splitVector(t *testing.T, token string) ([]byte, []byte) {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	return []byte(token[:i]), mustB64(t, token[i+1:])
}

func rfcKeys(t *testing.T) map[string]crypto.PublicKey {
	t.Helper()
	point := append([]byte{4}, append(mustB64(t, rfc7515ES256X), mustB64(t, rfc7515ES256Y)...)...)
	ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatalf("RFC 7515 A.3 key: %v", err)
	}
	return map[string]crypto.PublicKey{
		EdDSA: ed25519.PublicKey(mustB64(t, rfc8037X)),
		ES256: ec,
		RS256: &rsa.PublicKey{N: new(big.Int).SetBytes(mustB64(t, rfc7515RS256N)), E: 65537},
	}
}

func TestPublishedVectors(t *testing.T) {
	keys := rfcKeys(t)
	vectors := []struct {
		name, alg, token string
	}{
		{"RFC 8037 A.4 Ed25519", EdDSA, rfc8037Token},
		{"RFC 7515 A.3 ES256", ES256, rfc7515ES256Token},
		{"RFC 7515 A.2 RS256", RS256, rfc7515RS256Token},
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			input, sig := splitVector(t, v.token)
			if err := Verify(v.alg, keys[v.alg], input, sig); err != nil {
				t.Fatalf("the published signature does not verify: %v", err)
			}
			// The same signature over a changed input, or changed itself, fails.
			changed := bytes.Clone(input)
			changed[len(changed)-1] ^= 1
			if err := Verify(v.alg, keys[v.alg], changed, sig); !errors.Is(err, ErrSignature) {
				t.Errorf("changed input: %v, want ErrSignature", err)
			}
			bad := bytes.Clone(sig)
			bad[len(bad)/2] ^= 0x10
			if err := Verify(v.alg, keys[v.alg], input, bad); !errors.Is(err, ErrSignature) {
				t.Errorf("changed signature: %v, want ErrSignature", err)
			}
			// The algorithm is the key's: under another alg, the key is refused.
			for other, key := range keys {
				if other != v.alg {
					if err := Verify(other, keys[v.alg], input, sig); err == nil {
						t.Errorf("verified as %s with the %s key", other, v.alg)
					}
					if err := Verify(v.alg, key, input, sig); err == nil {
						t.Errorf("verified with the %s key", other)
					}
				}
			}
			// The vectors lack kid: Parse refuses them as tokens.
			if _, err := Parse(v.token); !errors.Is(err, errNoKid) {
				t.Errorf("Parse: %v, want errNoKid", err)
			}
		})
	}
}

// TestSignEd25519Vector reproduces RFC 8037 A.4: Ed25519 is deterministic,
// so Sign must give the published signature byte for byte.
func TestSignEd25519Vector(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(mustB64(t, rfc8037D))
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), mustB64(t, rfc8037X)) {
		t.Fatal("RFC 8037 A.1: the seed does not give the published public key")
	}
	input, want := splitVector(t, rfc8037Token)
	got, err := Sign(EdDSA, priv, input)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("signature %x, want %x", got, want)
	}
}

func TestES256SignatureForm(t *testing.T) {
	keys := rfcKeys(t)
	input, sig := splitVector(t, rfc7515ES256Token)
	pub := keys[ES256].(*ecdsa.PublicKey)

	// The same signature in ASN.1 DER form (what crypto/ecdsa produces) is refused.
	der := rawToDER(nil, sig)
	if !ecdsa.VerifyASN1(pub, sha256Sum(input), der) {
		t.Fatal("rawToDER does not give the DER form of the vector's signature")
	}
	// Its high-S twin (r, n-s) is also a valid ECDSA signature; it is accepted (documented).
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	twin := bytes.Clone(sig)
	new(big.Int).Sub(n, s).FillBytes(twin[32:])

	zeroR := bytes.Clone(sig)
	clear(zeroR[:32])
	cases := []struct {
		name string
		sig  []byte
		ok   bool
	}{
		{"raw R||S", sig, true},
		{"high-S twin", twin, true},
		{"DER", der, false},
		{"truncated", sig[:63], false},
		{"extended", append(bytes.Clone(sig), 0), false},
		{"R zero", zeroR, false},
		{"all zero", make([]byte, 64), false},
		{"R and S swapped", append(bytes.Clone(sig[32:]), sig[:32]...), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(ES256, pub, input, tc.sig)
			if (err == nil) != tc.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestSignRoundTrip(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := rsa.GenerateKey(nil, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for alg, key := range map[string]crypto.Signer{EdDSA: edPriv, ES256: ecPriv, RS256: rsaPriv} {
		t.Run(alg, func(t *testing.T) {
			input := []byte("header.payload")
			sig, err := Sign(alg, key, input)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(alg, key.Public(), input, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for other := range map[string]bool{EdDSA: true, ES256: true, RS256: true, "none": true, "HS256": true} {
				if other == alg {
					continue
				}
				if _, err := Sign(other, key, input); err == nil {
					t.Errorf("signed as %s with a %s key", other, alg)
				}
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	small, err := rsa.GenerateKey(nil, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := rfcKeys(t)
	cases := []struct {
		name string
		alg  string
		key  crypto.PublicKey
		ok   bool
	}{
		{"ed25519", EdDSA, keys[EdDSA], true},
		{"short ed25519", EdDSA, ed25519.PublicKey(make([]byte, 31)), false},
		{"p-256", ES256, keys[ES256], true},
		{"p-384 for ES256", ES256, &p384.PublicKey, false},
		{"rsa 2048", RS256, keys[RS256], true},
		{"rsa 1024", RS256, &small.PublicKey, false},
		{"rsa without modulus", RS256, &rsa.PublicKey{E: 65537}, false},
		{"none", "none", keys[EdDSA], false},
		{"HS256 with a public key", "HS256", keys[RS256], false},
		{"nil key", EdDSA, nil, false},
		{"bytes as key", EdDSA, []byte(rfc8037X), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckKey(tc.alg, tc.key); (err == nil) != tc.ok {
				t.Fatalf("CheckKey: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func sha256Sum(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}
