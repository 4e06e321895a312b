package audit

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on the length of each field, in bytes.
const (
	maxTypeLen      = 64
	maxIDLen        = 128
	maxUsernameLen  = 128
	maxIPLen        = 64
	maxUserAgentLen = 256
	maxReasonLen    = 128
)

// sanitize returns s fit for a log line and the store: invalid UTF-8,
// control characters (C0 such as NUL, CR, LF and ESC, DEL, C1), the Unicode
// line and paragraph separators and the bidirectional controls are each
// replaced by U+FFFD, and the result is cut to at most max bytes at a
// character boundary.
func sanitize(s string, max int) string {
	if clean(s) {
		if len(s) <= max {
			return s
		}
		return s[:max]
	}
	var b strings.Builder
	b.Grow(min(len(s), max))
	for _, r := range s { // invalid UTF-8 arrives as utf8.RuneError
		if unsafeRune(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// clean reports whether s is printable ASCII only.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// unsafeRune reports whether r must not reach a log line.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) ||
		r == '\u2028' || r == '\u2029' ||
		unicode.Is(unicode.Bidi_Control, r)
}

// sanitizeEvent sanitises every string field of e in place.
func sanitizeEvent(e *Event) {
	e.Type = sanitize(e.Type, maxTypeLen)
	e.Severity = sanitize(e.Severity, maxTypeLen)
	e.UserID = sanitize(e.UserID, maxIDLen)
	e.Username = sanitize(e.Username, maxUsernameLen)
	e.SessionID = sanitize(e.SessionID, maxIDLen)
	e.ActorID = sanitize(e.ActorID, maxIDLen)
	e.IP = sanitize(e.IP, maxIPLen)
	e.UserAgent = sanitize(e.UserAgent, maxUserAgentLen)
	e.Reason = sanitize(e.Reason, maxReasonLen)
}
