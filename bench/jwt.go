package bench

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// maxTokenLen bounds the tokens tokenExpiry reads.
const maxTokenLen = 16 << 10

// tokenExpiry reads the exp claim of a JWS compact token WITHOUT checking
// its signature or anything else. The bench only needs to know when the
// token the server has just issued to it stops being accepted by a verifier
// that consults nothing but the JWKS; it never trusts the token for
// anything.
func tokenExpiry(raw string) (time.Time, error) {
	if len(raw) > maxTokenLen {
		return time.Time{}, errors.New("token too long")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("not a JWS compact token")
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("token payload: %w", err)
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, fmt.Errorf("token payload: %w", err)
	}
	if len(claims.Exp) == 0 {
		return time.Time{}, errors.New("token has no exp claim")
	}
	// RFC 7519 NumericDate: a JSON number of seconds since the epoch,
	// possibly fractional; not a string, not null.
	var exp float64
	if c := claims.Exp[0]; c != '-' && (c < '0' || c > '9') {
		return time.Time{}, errors.New("token exp is not a number")
	}
	if err := json.Unmarshal(claims.Exp, &exp); err != nil || exp <= 0 || exp > 1e11 {
		return time.Time{}, errors.New("token exp is not a valid NumericDate")
	}
	sec, frac := math.Modf(exp)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}
