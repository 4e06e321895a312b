package account

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// Username bounds, in Unicode code points after normalisation.
const maxUsernameLen = 64

// maxUsernameInput bounds the input, in bytes, before normalisation: a
// 64-code-point name is at most 256 bytes, and full-width or decomposed
// input that maps to it is still well under this.
const maxUsernameInput = 1024

// NormalizeUsername returns the canonical form of a username under the PRECIS
// UsernameCaseMapped profile (RFC 8265): width-mapped, lower-cased and NFC,
// so that "Alice" and "ＡＬＩＣＥ" are both "alice". It refuses, with a
// *PolicyError wrapping ErrInvalidUsername, an empty name, invalid UTF-8,
// control characters, spaces, characters the profile disallows, and a result
// longer than 64 code points.
func NormalizeUsername(s string) (string, error) {
	refuse := func(reason string) (string, error) {
		return "", &PolicyError{Err: ErrInvalidUsername, Reason: reason}
	}
	tooLong := fmt.Sprintf("must be at most %d characters", maxUsernameLen)
	switch {
	case s == "":
		return refuse("must not be empty")
	case len(s) > maxUsernameInput:
		return refuse(tooLong)
	case !utf8.ValidString(s):
		return refuse("must be valid UTF-8")
	}
	// The profile refuses all of these too; checking them first gives a
	// clearer reason.
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return refuse("must not contain control characters")
		case unicode.IsSpace(r):
			return refuse("must not contain spaces")
		}
	}
	out, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return refuse("contains a character that is not allowed in a username")
	}
	switch n := utf8.RuneCountInString(out); {
	case n == 0:
		return refuse("must not be empty")
	case n > maxUsernameLen:
		return refuse(tooLong)
	}
	return out, nil
}
