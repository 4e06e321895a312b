// Package secret keeps secrets out of logs and error messages.
//
// A String holds a password, a token, a key or any other secret. Every way
// of printing it — fmt verbs, log/slog, encoding/json and other text
// encoders — shows "[REDACTED]"; the value is only reachable through
// Reveal, so that each use of the secret is deliberate and easy to find.
//
// One gap cannot be closed by a type: fmt prints the unexported fields of a
// struct by reflection, without calling their methods, so a String stored
// in an unexported field is printed in clear when the whole struct is
// printed with %v. Keep secrets in exported fields, or do not print the
// struct.
package secret

import (
	"fmt"
	"log/slog"
	"strconv"
)

// redacted is what every printing of a String shows.
const redacted = "[REDACTED]"

// String is a secret string that never prints its value.
type String string

// Reveal returns the secret value. Call it only where the secret is used.
func (s String) Reveal() string { return string(s) }

// String returns "[REDACTED]".
func (String) String() string { return redacted }

// GoString returns "[REDACTED]", for %#v.
func (String) GoString() string { return redacted }

// Format writes "[REDACTED]" for every verb (quoted for %q), so that no
// verb or flag of package fmt prints the value.
func (String) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = f.Write([]byte(strconv.Quote(redacted)))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// LogValue returns "[REDACTED]" for log/slog.
func (String) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[REDACTED]", so that encoding/json and the other
// encoders that use encoding.TextMarshaler never write the value.
func (String) MarshalText() ([]byte, error) { return []byte(redacted), nil }
