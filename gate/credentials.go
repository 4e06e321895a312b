package gate

import (
	"net/http"

	"github.com/gatehouse-auth/gatehouse/internal/credential"
)

// presented is the one credential a request carries, before it is checked;
// kind is 0 when it carries none.
type presented struct {
	kind  kinds
	value string
}

// extract reads the request's one credential with the server's rules
// (package credential: the same code as the Gatehouse API), mapping each
// ambiguity to its refusal.
func (g *Gate) extract(r *http.Request) (presented, error) {
	c, err := credential.Scan(r, g.cookies)
	switch err {
	case nil:
	case credential.ErrCaseVariant:
		return presented{}, errCaseVariant
	case credential.ErrDuplicate:
		return presented{}, errDuplicate
	case credential.ErrTwoAuthorization:
		return presented{}, errTwoAuthorization
	case credential.ErrMalformedAuthorization:
		return presented{}, errMalformedAuthorization
	default:
		return presented{}, errTwoCredentials
	}
	switch c.Kind {
	case credential.Session:
		return presented{kind: kindSession, value: c.Value}, nil
	case credential.Access:
		return presented{kind: kindCookieToken, value: c.Value}, nil
	case credential.Bearer:
		return presented{kind: kindBearer, value: c.Value}, nil
	}
	return presented{}, nil
}
