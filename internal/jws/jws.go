// Package jws parses JWS compact serializations strictly and checks their
// signatures with the standard library. It is the wire layer under package
// token, and it is written for the hot path: no reflection, and one buffer
// for all the decoded segments.
//
// Parse refuses, before looking at the signature:
//   - anything larger than MaxSize bytes, before decoding a byte of it;
//   - anything but exactly three non-empty segments of the base64url
//     alphabet (so the JWS JSON serialization, padding, '+', '/', blanks and
//     line breaks are all refused), and segments whose unused trailing bits
//     are not zero: every accepted token has exactly one spelling;
//   - a header that is not a strict JSON object (see ScanObject) or that has
//     a member other than "alg", "kid" and "typ": in particular the headers
//     that name keys (jwk, jku, x5u, x5c, x5t, x5t#S256), "crit" (no extension
//     is understood, so any crit is unknown) and "b64";
//   - "alg", "kid" or "typ" that is not a string, and an empty "alg" or "kid".
//
// The algorithm is not trusted from the header: Verify takes the algorithm
// that belongs to the key, and the caller must also check that the header's
// "alg" equals it.
package jws

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// MaxSize is the largest compact JWS that Parse reads, in bytes. Gatehouse's
// access tokens are well under 1 KiB.
const MaxSize = 8 << 10

// Header is the protected header of a JWS, reduced to the members Parse allows.
type Header struct {
	// Alg is the "alg" member, never empty.
	Alg string
	// Kid is the "kid" member, never empty.
	Kid string
	// Typ is the "typ" member, empty when absent.
	Typ string
}

// JWS is a parsed compact JWS whose signature has not been checked yet.
type JWS struct {
	Header Header
	// Payload is the decoded payload.
	Payload []byte
	// Signature is the decoded signature.
	Signature []byte
	// SigningInput is the ASCII of the first two segments and the dot
	// between them: what the signature covers.
	SigningInput []byte
}

// Errors of Parse. They are reasons for a log, not for a client.
var (
	errTooLarge       = errors.New("jws: larger than 8 KiB")
	errJSONForm       = errors.New("jws: JSON serialization is not accepted")
	errSegments       = errors.New("jws: not three segments")
	errEmptySegment   = errors.New("jws: empty segment")
	errAlphabet       = errors.New("jws: character outside the base64url alphabet")
	errPadding        = errors.New("jws: base64url padding")
	errBase64         = errors.New("jws: invalid base64url (length or trailing bits)")
	errHeaderJSON     = errors.New("jws: header is not a strict JSON object")
	errHeaderType     = errors.New("jws: header member has the wrong type")
	errHeaderNamesKey = errors.New("jws: header names a key (jwk, jku, x5u, x5c, x5t)")
	errHeaderCrit     = errors.New("jws: header has crit")
	errHeaderB64      = errors.New("jws: header has b64")
	errHeaderUnknown  = errors.New("jws: header has an unknown member")
	errNoAlg          = errors.New("jws: header has no alg")
	errNoKid          = errors.New("jws: header has no kid")
)

// b64 is strict unpadded base64url: it refuses non-zero trailing bits. It
// ignores CR and LF, which is why Parse checks the alphabet first.
var b64 = base64.RawURLEncoding.Strict()

// alphabet marks the bytes of the base64url alphabet.
var alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// Parse parses a compact JWS strictly (see the package documentation). It
// does not check the signature.
func Parse(raw string) (JWS, error) {
	if len(raw) > MaxSize {
		return JWS{}, errTooLarge
	}
	dot1, dot2 := -1, -1
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if alphabet[c] {
			continue
		}
		switch {
		case c != '.':
			switch {
			case c == '=':
				return JWS{}, errPadding
			case i == 0 && c == '{':
				return JWS{}, errJSONForm
			}
			return JWS{}, errAlphabet
		case dot1 < 0:
			dot1 = i
		case dot2 < 0:
			dot2 = i
		default:
			return JWS{}, errSegments
		}
	}
	if dot2 < 0 {
		return JWS{}, errSegments
	}
	if dot1 == 0 || dot2 == dot1+1 || dot2 == len(raw)-1 {
		return JWS{}, errEmptySegment
	}
	hLen, pLen, sLen := dot1, dot2-dot1-1, len(raw)-dot2-1
	hN, pN, sN := b64.DecodedLen(hLen), b64.DecodedLen(pLen), b64.DecodedLen(sLen)

	// One buffer: the raw bytes (the signing input is its prefix), then the
	// three decoded segments.
	buf := make([]byte, len(raw)+hN+pN+sN)
	copy(buf, raw)
	header, err := decode(buf[len(raw):len(raw)+hN], buf[:dot1])
	if err != nil {
		return JWS{}, err
	}
	payload, err := decode(buf[len(raw)+hN:len(raw)+hN+pN], buf[dot1+1:dot2])
	if err != nil {
		return JWS{}, err
	}
	sig, err := decode(buf[len(raw)+hN+pN:], buf[dot2+1:len(raw)])
	if err != nil {
		return JWS{}, err
	}
	h, err := parseHeader(header)
	if err != nil {
		return JWS{}, err
	}
	return JWS{Header: h, Payload: payload, Signature: sig, SigningInput: buf[:dot2]}, nil
}

// decode decodes src, base64url, into dst, which has room for it.
func decode(dst, src []byte) ([]byte, error) {
	n, err := b64.Decode(dst, src)
	if err != nil {
		return nil, errBase64
	}
	return dst[:n], nil
}

// parseHeader reads the protected header under the rules of the package doc.
func parseHeader(data []byte) (Header, error) {
	var h Header
	var refused error // why the callback stopped the scan
	err := ScanObject(data, func(name []byte, v Value) error {
		var dst *string
		switch string(name) {
		case "alg":
			dst = &h.Alg
		case "kid":
			dst = &h.Kid
		case "typ":
			dst = &h.Typ
		case "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256":
			refused = errHeaderNamesKey
		case "crit":
			refused = errHeaderCrit
		case "b64":
			refused = errHeaderB64
		default:
			refused = errHeaderUnknown
		}
		if refused != nil {
			return refused
		}
		s, err := v.Str()
		if err != nil {
			refused = errHeaderType
			return refused
		}
		*dst = s
		return nil
	})
	switch {
	case refused != nil:
		return Header{}, refused
	case err != nil:
		return Header{}, fmt.Errorf("%w: %w", errHeaderJSON, err)
	case h.Alg == "":
		return Header{}, errNoAlg
	case h.Kid == "":
		return Header{}, errNoKid
	}
	return h, nil
}
