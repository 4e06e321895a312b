// Package credential reads the one credential of a request the way every
// Gatehouse component must: the session cookie, the hybrid access cookie or
// a Bearer token, refusing ambiguity (the same cookie twice, a cookie name
// that differs from ours only in case, two Authorization headers, a
// malformed Authorization header, two kinds of credential at once). The HTTP
// API (httpapi) and the middleware (gate) share it, so that their rules
// cannot drift apart.
package credential

import (
	"errors"
	"net/http"
	"net/textproto"
	"strings"
)

// Cookie names. In secure mode they carry the __Host- / __Secure- prefixes
// that make browsers refuse them over plain HTTP, from a sub-domain or with
// another path; in dev mode the prefixes are dropped, because browsers
// refuse prefixed cookies without Secure.
const (
	sessionBase = "gh_session"
	accessBase  = "gh_access"
	refreshBase = "gh_refresh"
)

// Names are the cookie names of a deployment.
type Names struct {
	Session, Access, Refresh string
	// Secure is true in secure mode (the prefixed names, Secure cookies).
	Secure bool
}

// NamesFor returns the cookie names of secure mode, or of dev mode.
func NamesFor(dev bool) Names {
	if dev {
		return Names{Session: sessionBase, Access: accessBase, Refresh: refreshBase}
	}
	return Names{Session: "__Host-" + sessionBase, Access: "__Host-" + accessBase, Refresh: "__Secure-" + refreshBase, Secure: true}
}

// Kind is the kind of a presented credential.
type Kind uint8

// The kinds of credential.
const (
	None Kind = iota
	Session
	Access // the hybrid-mode access cookie
	Bearer
)

// Presented is the one credential a request carries, before it is checked.
type Presented struct {
	Kind  Kind
	Value string
}

// The ambiguities Scan refuses; callers answer each with 400 invalid_request.
var (
	ErrCaseVariant            = errors.New("a cookie name differs from Gatehouse's only in case")
	ErrDuplicate              = errors.New("the same credential cookie appears more than once")
	ErrTwoAuthorization       = errors.New("more than one Authorization header")
	ErrMalformedAuthorization = errors.New("the Authorization header is not a well-formed Bearer credential")
	ErrTwoCredentials         = errors.New("a request must carry exactly one credential")
)

// Scan returns the request's credential (Kind None when it carries none) or
// one of the Err… ambiguities. The Cookie headers are scanned in place for
// the two names only: this is the hot path of every authenticated request.
// The refresh cookie is scoped to the token endpoint and does not count.
func Scan(r *http.Request, n Names) (Presented, error) {
	var p Presented
	var seen [Bearer + 1]bool
	count := 0
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, value, _ := strings.Cut(textproto.TrimString(part), "=")
			name = textproto.TrimString(name)
			var k Kind
			switch {
			case name == n.Session:
				k = Session
			case name == n.Access:
				k = Access
			case strings.EqualFold(name, n.Session), strings.EqualFold(name, n.Access):
				return Presented{}, ErrCaseVariant
			default:
				continue
			}
			if seen[k] {
				return Presented{}, ErrDuplicate
			}
			seen[k] = true
			count++
			p = Presented{Kind: k, Value: value}
		}
	}
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return Presented{}, ErrTwoAuthorization
		}
		tok, ok := ParseBearer(vals[0])
		if !ok {
			return Presented{}, ErrMalformedAuthorization
		}
		count++
		p = Presented{Kind: Bearer, Value: tok}
	}
	if count > 1 {
		return Presented{}, ErrTwoCredentials
	}
	return p, nil
}

// MaxBearerLen bounds a bearer credential before any work is done on it.
const MaxBearerLen = 8 << 10

// ParseBearer parses "Bearer <b64token>" (RFC 6750 §2.1): the scheme is
// case-insensitive, followed by exactly one space and a token of
// ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" characters, then
// optional "=" padding.
func ParseBearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := h[len(scheme):]
	if len(tok) > MaxBearerLen {
		return "", false
	}
	padding := false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c == '=':
			if i == 0 {
				return "", false
			}
			padding = true
		case padding:
			return "", false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return "", false
		}
	}
	return tok, true
}
