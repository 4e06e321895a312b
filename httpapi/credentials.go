package httpapi

import (
	"net/http"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/credential"
)

// cookieNames are the deployment's cookie names (see package credential).
type cookieNames struct {
	session, access, refresh string
	secure                   bool
}

func newCookieNames(dev bool) cookieNames {
	n := credential.NamesFor(dev)
	return cookieNames{session: n.Session, access: n.Access, refresh: n.Refresh, secure: n.Secure}
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

// extractCredentials reads the request's one credential with the rules of
// package credential, answering an ambiguity with 400 invalid_request.
func (s *Server) extractCredentials(r *http.Request) (presented, error) {
	var p presented
	c, err := credential.Scan(r, credential.Names{Session: s.cookies.session, Access: s.cookies.access})
	if err != nil {
		msg := err.Error()
		return p, errMultipleCredentials(strings.ToUpper(msg[:1]) + msg[1:] + ".")
	}
	switch c.Kind {
	case credential.Session:
		p.session, p.hasSession = c.Value, true
	case credential.Access:
		p.access, p.hasAccess = c.Value, true
	case credential.Bearer:
		p.bearer, p.hasBearer = c.Value, true
	}
	return p, nil
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
