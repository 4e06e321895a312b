package gate

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The refusals a Gate answers. The error given to Config.OnError wraps one
// of them, or is an internal failure (a store or the verifier could not
// answer), which must be answered 5xx.
var (
	// ErrNoCredential: the request carries no credential. Default answer:
	// 401, WWW-Authenticate: Bearer.
	ErrNoCredential = errors.New("gate: no credential")
	// ErrInvalidCredential: the credential is malformed, unknown, expired or
	// revoked, its user no longer exists, or it is of a mode the Gate is
	// not configured for. Default answer: 401,
	// WWW-Authenticate: Bearer error="invalid_token".
	ErrInvalidCredential = errors.New("gate: invalid credential")
	// ErrAmbiguousCredential: more than one credential, a credential cookie
	// twice, a cookie name that differs from Gatehouse's only in case, or an
	// Authorization header that is repeated or not a well-formed Bearer
	// credential. Default answer: 400 invalid_request,
	// WWW-Authenticate: Bearer error="invalid_request".
	ErrAmbiguousCredential = errors.New("gate: ambiguous credential")
	// ErrCSRF: an unsafe request authenticated by a cookie came from
	// another origin or lacks the CSRF token bound to its credential.
	// Default answer: 403 csrf.
	ErrCSRF = errors.New("gate: cross-site request refused")
	// ErrForbidden: the principal lacks the role (RequireRole), or its
	// valid credential is of a kind the route does not accept (a Bearer
	// token on a RequireSession route). Default answer: 403 forbidden.
	ErrForbidden = errors.New("gate: forbidden")
)

// refusal is one of the sentinels with the detail the client may see.
type refusal struct {
	kind   error
	detail string
}

func (e *refusal) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *refusal) Unwrap() error { return e.kind }

// Refusals, allocated once.
var (
	errNoCredential           = &refusal{ErrNoCredential, "A credential is required."}
	errNeedsSession           = &refusal{ErrForbidden, "This resource needs a session cookie."}
	errNeedsToken             = &refusal{ErrForbidden, "This resource needs an access token."}
	errRole                   = &refusal{ErrForbidden, "The caller does not have the role this resource needs."}
	errInvalid                = &refusal{ErrInvalidCredential, "The credential is invalid, expired or revoked."}
	errCaseVariant            = &refusal{ErrAmbiguousCredential, "A cookie name differs from Gatehouse's only in case."}
	errDuplicate              = &refusal{ErrAmbiguousCredential, "The same credential cookie appears more than once."}
	errTwoAuthorization       = &refusal{ErrAmbiguousCredential, "More than one Authorization header."}
	errMalformedAuthorization = &refusal{ErrAmbiguousCredential, "The Authorization header is not a well-formed Bearer credential."}
	errTwoCredentials         = &refusal{ErrAmbiguousCredential, "A request must carry exactly one credential."}
	errCrossOrigin            = &refusal{ErrCSRF, "Cross-origin request refused."}
	errCSRFToken              = &refusal{ErrCSRF, "The X-CSRF-Token header is missing or does not match the credential."}
)

// problemBase is the prefix of the problem type URIs of the Gatehouse API
// (httpapi.ProblemBase); the last path segment names the failure class.
const problemBase = "https://gatehouse.dev/problems/"

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// WriteProblem answers err as the Gatehouse API would: an
// application/problem+json body (RFC 9457) with Cache-Control: no-store and,
// for 400 and 401, the WWW-Authenticate challenge. An error that wraps none
// of the sentinels is answered as an opaque 500 that says nothing of its
// cause. It is the default of Config.OnError; a custom OnError can call it
// for the errors it does not answer itself.
func WriteProblem(w http.ResponseWriter, err error) {
	status, class, title, challenge := http.StatusInternalServerError, "internal", "Internal error", ""
	detail := "The server could not complete the request."
	switch {
	case errors.Is(err, ErrNoCredential):
		status, class, title, challenge = http.StatusUnauthorized, "unauthorized", "Authentication required", "Bearer"
	case errors.Is(err, ErrInvalidCredential):
		status, class, title, challenge = http.StatusUnauthorized, "unauthorized", "Authentication required", `Bearer error="invalid_token"`
	case errors.Is(err, ErrAmbiguousCredential):
		status, class, title, challenge = http.StatusBadRequest, "invalid_request", "The request is invalid", `Bearer error="invalid_request"`
	case errors.Is(err, ErrCSRF):
		status, class, title = http.StatusForbidden, "csrf", "Cross-site request refused"
	case errors.Is(err, ErrForbidden):
		status, class, title = http.StatusForbidden, "forbidden", "Forbidden"
	}
	if status != http.StatusInternalServerError {
		detail = ""
		var rf *refusal
		if errors.As(err, &rf) {
			detail = rf.detail
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemBody{Type: problemBase + class, Title: title, Status: status, Detail: detail})
}
