package refresh

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

const (
	// secretBytes is the size of a refresh token before encoding: 256 bits.
	secretBytes = 32
	// encodedLen is the length of its unpadded base64url encoding.
	encodedLen = 43
	// familyIDBytes is the size of a family id before encoding.
	familyIDBytes = 16
)

// strict decodes unpadded base64url and refuses non-zero trailing bits, so
// that one token has exactly one spelling.
var strict = base64.RawURLEncoding.Strict()

// newSecret returns a fresh refresh token and its hash.
func newSecret() (token string, hash []byte, err error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("refresh token: %w", err)
	}
	h := sha256.Sum256(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:]), h[:], nil
}

// newFamilyID returns a fresh family id.
func newFamilyID() (string, error) {
	var b [familyIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("family id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// parseToken checks the shape of a presented refresh token and returns its
// hash. It refuses anything but exactly 43 characters of canonical unpadded
// base64url, without touching a store.
func parseToken(s string) (hash []byte, ok bool) {
	if len(s) != encodedLen {
		return nil, false
	}
	var b [secretBytes]byte
	n, err := strict.Decode(b[:], []byte(s))
	if err != nil || n != secretBytes {
		return nil, false
	}
	h := sha256.Sum256(b[:])
	return h[:], true
}
