package account

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// phcHash is a parsed Argon2id PHC string:
//
//	$argon2id$v=19$m=<memory KiB>,t=<time>,p=<threads>$<salt>$<key>
//
// with salt and key in standard base64 without padding, as the reference
// implementation and libsodium write them.
type phcHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// Bounds for stored hashes that are not bounds for new ones.
const (
	// minStoredSalt is the smallest salt the Argon2 specification allows;
	// the reference test vectors use 8-byte salts.
	minStoredSalt = 8
	// maxPHCLen bounds the input before any parsing. The longest valid
	// string is about 230 bytes.
	maxPHCLen = 256
)

var errMalformedPHC = errors.New("malformed Argon2id PHC string")

// b64 is the PHC string's base64: standard alphabet, no padding, and the
// unused bits of the last character must be zero.
var b64 = base64.RawStdEncoding.Strict()

// String returns the canonical PHC encoding of h.
func (h phcHash) String() string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s",
		h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parsePHC parses an Argon2id PHC string strictly: the algorithm must be
// argon2id, the version 19, the parameters exactly m, t and p in that order
// as decimals without sign or leading zeros, within bounds (m from 8p KiB to
// 4 GiB, t from 1 to 100, p from 1 to 16), and the salt (8 to 64 bytes) and
// the key (16 to 64 bytes) canonical unpadded standard base64. Anything else
// is refused: whatever parses re-encodes to exactly the input.
func parsePHC(s string) (phcHash, error) {
	malformed := func(what string) (phcHash, error) {
		return phcHash{}, fmt.Errorf("%w: %s", errMalformedPHC, what)
	}
	if len(s) > maxPHCLen {
		return malformed("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return malformed("want 5 fields, each after a $")
	}
	if parts[1] != "argon2id" {
		return malformed("algorithm is not argon2id")
	}
	if parts[2] != "v=19" {
		return malformed("version is not v=19")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return malformed("want parameters m, t and p")
	}
	var values [3]uint64
	for i, name := range [3]string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return malformed("want parameters m, t and p, in that order")
		}
		v, ok := parseDecimal(digits)
		if !ok {
			return malformed("parameter " + name[:1] + " is not a canonical decimal")
		}
		values[i] = v
	}
	m, t, p := values[0], values[1], values[2]
	switch {
	case p < 1 || p > maxThreads:
		return malformed("p out of range")
	case t < 1 || t > maxTime:
		return malformed("t out of range")
	case m < 8*p || m > maxMemory:
		return malformed("m out of range")
	}
	salt, ok := decodeB64(parts[4], minStoredSalt, maxSaltLen)
	if !ok {
		return malformed("bad salt")
	}
	key, ok := decodeB64(parts[5], minKeyLen, maxKeyLen)
	if !ok {
		return malformed("bad hash")
	}
	return phcHash{memory: uint32(m), time: uint32(t), threads: uint8(p), salt: salt, key: key}, nil
}

// parseDecimal parses a decimal of 1 to 10 ASCII digits without a leading
// zero (except "0" itself).
func parseDecimal(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// decodeB64 decodes canonical unpadded standard base64 of lo to hi bytes.
// Unlike the decoder alone, it refuses the CR and LF that encoding/base64
// skips.
func decodeB64(s string, lo, hi int) ([]byte, bool) {
	if len(s) < b64.EncodedLen(lo) || len(s) > b64.EncodedLen(hi) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, false
		}
	}
	b, err := b64.DecodeString(s)
	if err != nil || len(b) < lo || len(b) > hi {
		return nil, false
	}
	return b, true
}
