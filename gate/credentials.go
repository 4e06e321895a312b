package gate

import (
	"net/http"
	"strings"
)

// Cookie names, as the Gatehouse server sets them (httpapi): with the
// __Host- prefix in secure mode, without it in dev mode.
const (
	sessionCookieBase = "gh_session"
	accessCookieBase  = "gh_access"
)

type cookieNames struct{ session, access string }

func newCookieNames(dev bool) cookieNames {
	if dev {
		return cookieNames{session: sessionCookieBase, access: accessCookieBase}
	}
	return cookieNames{session: "__Host-" + sessionCookieBase, access: "__Host-" + accessCookieBase}
}

// presented is the one credential a request carries, before it is checked;
// kind is 0 when it carries none.
type presented struct {
	kind  kinds
	value string
}

// extract reads the session cookie, the access cookie and the Authorization
// header, refusing ambiguity as the server does: the same cookie twice, a
// cookie whose name matches ours in another case, two Authorization
// headers, a malformed Authorization header, or two kinds of credential at
// once. The refresh cookie is scoped to the token endpoint and does not
// count here.
func (g *Gate) extract(r *http.Request) (presented, error) {
	var p presented
	var seen kinds
	for _, c := range r.Cookies() {
		var k kinds
		switch {
		case c.Name == g.cookies.session:
			k = kindSession
		case c.Name == g.cookies.access:
			k = kindCookieToken
		case strings.EqualFold(c.Name, g.cookies.session), strings.EqualFold(c.Name, g.cookies.access):
			return presented{}, errCaseVariant
		default:
			continue
		}
		if seen&k != 0 {
			return presented{}, errDuplicate
		}
		seen |= k
		p = presented{kind: k, value: c.Value}
	}
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return presented{}, errTwoAuthorization
		}
		tok, ok := parseBearer(vals[0])
		if !ok {
			return presented{}, errMalformedAuthorization
		}
		seen |= kindBearer
		p = presented{kind: kindBearer, value: tok}
	}
	if seen&(seen-1) != 0 { // more than one bit
		return presented{}, errTwoCredentials
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
