// Package csrf holds Gatehouse's defence against cross-site request forgery
// for cookie-authenticated requests. It has two layers, and both must pass
// for an unsafe request (POST, PUT, PATCH, DELETE) authenticated by a cookie:
//
//  1. net/http.CrossOriginProtection (Fetch Metadata, then Origin against
//     Host), applied by the HTTP layer to the whole API; and
//  2. a CSRF token bound to the credential: the client must echo it in the
//     X-CSRF-Token header.
//
// The token is derived, not stored: it is HMAC-SHA256 of a fixed label under
// the credential's own 256-bit secret (the session secret in session mode).
// It therefore changes at every login, is worthless with another session,
// reveals nothing about the secret, and costs the store nothing. Tokens are
// compared in constant time.
package csrf

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// HeaderName is the request header that carries the CSRF token.
const HeaderName = "X-CSRF-Token"

// label separates CSRF tokens from any other value derived from the same key.
const label = "gatehouse csrf token v1"

// Token derives the CSRF token bound to key (a credential secret of at least
// 32 bytes). The result is 43 characters of unpadded base64url.
func Token(key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Valid reports whether presented is the token bound to key. It runs in
// constant time with respect to the token's contents; an empty presented
// token is never valid.
func Valid(key []byte, presented string) bool {
	if presented == "" || len(presented) > 128 {
		return false
	}
	return hmac.Equal([]byte(Token(key)), []byte(presented))
}

// Unsafe reports whether the request method can change state and therefore
// needs CSRF protection when authenticated by a cookie.
func Unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}
