package httpapi

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Cookie names. In secure mode they carry the __Host- / __Secure- prefixes
// that make browsers refuse them over plain HTTP, from a sub-domain or with
// another path; in dev mode (plain HTTP on a developer machine) the prefixes
// are dropped, because browsers refuse prefixed cookies without Secure.
const (
	sessionCookieBase = "gh_session"
	accessCookieBase  = "gh_access"
	refreshCookieBase = "gh_refresh"
)

type cookieNames struct {
	session, access, refresh string
	secure                   bool
}

func newCookieNames(dev bool) cookieNames {
	if dev {
		return cookieNames{session: sessionCookieBase, access: accessCookieBase, refresh: refreshCookieBase}
	}
	return cookieNames{
		session: "__Host-" + sessionCookieBase,
		access:  "__Host-" + accessCookieBase,
		refresh: "__Secure-" + refreshCookieBase,
		secure:  true,
	}
}

// presented is what credentials a request carries, before any is checked.
type presented struct {
	session, access, bearer          string
	hasSession, hasAccess, hasBearer bool
}

func (p presented) count() int {
	n := 0
	for _, b := range []bool{p.hasSession, p.hasAccess, p.hasBearer} {
		if b {
			n++
		}
	}
	return n
}

// errMultipleCredentials answers a request that carries more than one
// credential, or a credential more than once.
func errMultipleCredentials(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, class: classInvalidRequest,
		detail: detail, wwwAuth: challengeInvalidRequest}
}

// extractCredentials reads the session cookie, the access cookie and the
// Authorization header, refusing ambiguity: the same cookie twice, a cookie
// whose name matches ours in another case, two Authorization headers, a
// malformed Authorization header, or two kinds of credential at once.
func (s *Server) extractCredentials(r *http.Request) (presented, error) {
	var p presented
	// The Cookie headers are scanned in place for Gatehouse's two names
	// only (r.Cookies would parse and copy every cookie of the request: this
	// is the hot path of every authenticated request).
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, value, _ := strings.Cut(textproto.TrimString(part), "=")
			name = textproto.TrimString(name)
			var dst *string
			var has *bool
			switch {
			case name == s.cookies.session:
				dst, has = &p.session, &p.hasSession
			case name == s.cookies.access:
				dst, has = &p.access, &p.hasAccess
			case strings.EqualFold(name, s.cookies.session), strings.EqualFold(name, s.cookies.access):
				return p, errMultipleCredentials("A cookie name differs from Gatehouse's only in case.")
			default:
				continue
			}
			if *has {
				return p, errMultipleCredentials("The same credential cookie appears more than once.")
			}
			*dst, *has = value, true
		}
	}
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return p, errMultipleCredentials("More than one Authorization header.")
		}
		tok, ok := parseBearer(vals[0])
		if !ok {
			return p, errMultipleCredentials("The Authorization header is not a well-formed Bearer credential.")
		}
		p.bearer, p.hasBearer = tok, true
	}
	if p.count() > 1 {
		return p, errMultipleCredentials("A request must carry exactly one credential.")
	}
	return p, nil
}

// maxBearerLen bounds a bearer credential before any work is done on it.
const maxBearerLen = 8 << 10

// parseBearer parses "Bearer <b64token>" (RFC 6750 §2.1): the scheme is
// case-insensitive, followed by exactly one space and a token of
// ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" characters, then
// optional "=" padding.
func parseBearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := h[len(scheme):]
	if len(tok) > maxBearerLen {
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

// sessionCookie builds the session cookie; maxAge < 0 clears it.
func (s *Server) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.cookies.session,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   s.cookies.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}
