package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// The signature algorithms (RFC 7518, RFC 8037) that Gatehouse signs and
// verifies with. No other value of "alg" is ever accepted.
const (
	EdDSA = "EdDSA" // Ed25519
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
)

// MinRSABits is the smallest RSA modulus Verify accepts.
const MinRSABits = 2048

// es256Size is the length of a JOSE ES256 signature: R then S, 32 bytes each.
const es256Size = 64

// Errors of Verify and Sign.
var (
	// ErrSignature is a signature that does not verify.
	ErrSignature      = errors.New("jws: signature does not verify")
	errUnknownAlg     = errors.New("jws: unsupported algorithm")
	errKeyMismatch    = errors.New("jws: key does not belong to the algorithm")
	errSigLength      = errors.New("jws: signature has the wrong length")
	errRSAKeyTooSmall = fmt.Errorf("jws: RSA key shorter than %d bits", MinRSABits)
)

// CheckKey reports whether key is a usable public key for alg: an Ed25519
// key for EdDSA, a P-256 key for ES256, an RSA key of at least MinRSABits
// bits for RS256.
func CheckKey(alg string, key crypto.PublicKey) error {
	switch alg {
	case EdDSA:
		if k, ok := key.(ed25519.PublicKey); ok && len(k) == ed25519.PublicKeySize {
			return nil
		}
	case ES256:
		if k, ok := key.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
			return nil
		}
	case RS256:
		if k, ok := key.(*rsa.PublicKey); ok && k.N != nil {
			if k.N.BitLen() < MinRSABits {
				return errRSAKeyTooSmall
			}
			return nil
		}
	default:
		return errUnknownAlg
	}
	return errKeyMismatch
}

// Verify checks that sig is a valid alg signature of signingInput by key.
// alg must be the algorithm that belongs to the key, never one read from the
// token. ES256 signatures are the 64-byte R||S of RFC 7518 §3.4 (a DER
// signature is refused by its length); S above the group order's half is
// accepted, as RFC 7518 does not forbid it. Any failure is an error; a bad
// signature is ErrSignature.
func Verify(alg string, key crypto.PublicKey, signingInput, sig []byte) error {
	if err := CheckKey(alg, key); err != nil {
		return err
	}
	switch alg {
	case EdDSA:
		if len(sig) != ed25519.SignatureSize {
			return errSigLength
		}
		if !ed25519.Verify(key.(ed25519.PublicKey), signingInput, sig) {
			return ErrSignature
		}
	case ES256:
		if len(sig) != es256Size {
			return errSigLength
		}
		var der [72]byte
		d := rawToDER(der[:0], sig)
		if d == nil {
			return ErrSignature
		}
		digest := sha256.Sum256(signingInput)
		if !ecdsa.VerifyASN1(key.(*ecdsa.PublicKey), digest[:], d) {
			return ErrSignature
		}
	case RS256:
		k := key.(*rsa.PublicKey)
		if len(sig) != k.Size() {
			return errSigLength
		}
		digest := sha256.Sum256(signingInput)
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) != nil {
			return ErrSignature
		}
	}
	return nil
}

// rawToDER appends the ASN.1 DER ECDSA-Sig-Value of a 64-byte R||S
// signature to dst (which has room for 72 bytes), or returns nil when R or
// S is zero.
func rawToDER(dst, sig []byte) []byte {
	r, s := trimZeros(sig[:32]), trimZeros(sig[32:])
	if len(r) == 0 || len(s) == 0 {
		return nil
	}
	intLen := func(b []byte) int { return 2 + len(b) + int(b[0]>>7) }
	dst = append(dst, 0x30, byte(intLen(r)+intLen(s)))
	for _, n := range [2][]byte{r, s} {
		dst = append(dst, 0x02, byte(len(n)+int(n[0]>>7)))
		if n[0]&0x80 != 0 {
			dst = append(dst, 0) // keep the INTEGER positive
		}
		dst = append(dst, n...)
	}
	return dst
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// Sign returns the alg signature of signingInput by key, in JWS form (for
// ES256, R||S). key must be the private key of alg (ed25519.PrivateKey,
// *ecdsa.PrivateKey on P-256, *rsa.PrivateKey), or a crypto.Signer for one.
func Sign(alg string, key crypto.Signer, signingInput []byte) ([]byte, error) {
	if err := CheckKey(alg, key.Public()); err != nil {
		return nil, err
	}
	switch alg {
	case EdDSA:
		return key.Sign(nil, signingInput, crypto.Hash(0))
	case ES256:
		digest := sha256.Sum256(signingInput)
		der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("jws: sign: %w", err)
		}
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(der, &rs)
		if err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
			rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
			return nil, errors.New("jws: sign: unexpected ECDSA signature encoding")
		}
		sig := make([]byte, es256Size)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
		return sig, nil
	default: // RS256
		digest := sha256.Sum256(signingInput)
		sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("jws: sign: %w", err)
		}
		return sig, nil
	}
}
