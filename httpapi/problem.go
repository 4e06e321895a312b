package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ProblemBase is the prefix of every problem type URI; the last path segment
// names the failure class.
const ProblemBase = "https://gatehouse.dev/problems/"

// Problem classes: the stable, machine-readable names of failure classes.
const (
	classInvalidRequest   = "invalid_request"
	classUnsupportedMedia = "unsupported_media_type"
	classTooLarge         = "payload_too_large"
	classUnauthorized     = "unauthorized"
	classForbidden        = "forbidden"
	classCSRF             = "csrf"
	classNotFound         = "not_found"
	classMethod           = "method_not_allowed"
	classUsernameTaken    = "username_taken"
	classPasswordPolicy   = "password_policy"
	classInvalidUsername  = "invalid_username"
	classSignupDisabled   = "signup_disabled"
	classTooMany          = "too_many_requests"
	classUnavailable      = "unavailable"
	classInternal         = "internal"
)

var classTitles = map[string]string{
	classInvalidRequest:   "The request is invalid",
	classUnsupportedMedia: "Unsupported media type",
	classTooLarge:         "Request body too large",
	classUnauthorized:     "Authentication required",
	classForbidden:        "Forbidden",
	classCSRF:             "Cross-site request refused",
	classNotFound:         "Not found",
	classMethod:           "Method not allowed",
	classUsernameTaken:    "Username taken",
	classPasswordPolicy:   "Password does not meet the policy",
	classInvalidUsername:  "Invalid username",
	classSignupDisabled:   "Sign-up is disabled",
	classTooMany:          "Too many attempts",
	classUnavailable:      "Service unavailable",
	classInternal:         "Internal error",
}

// apiError is what a handler returns to have a problem+json answered. What
// the client sees (status, class, detail) is separate from what is logged
// (cause).
type apiError struct {
	status     int
	class      string
	detail     string
	wwwAuth    string        // WWW-Authenticate value, if any
	retryAfter time.Duration // Retry-After, if > 0
	cause      error         // logged, never sent
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s (%d): %s: %v", e.class, e.status, e.detail, e.cause)
	}
	return fmt.Sprintf("%s (%d): %s", e.class, e.status, e.detail)
}

func (e *apiError) Unwrap() error { return e.cause }

func problemf(status int, class, format string, args ...any) *apiError {
	return &apiError{status: status, class: class, detail: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return problemf(http.StatusBadRequest, classInvalidRequest, format, args...)
}

// Bearer challenges of the Conventions.
const (
	challengeBearer         = "Bearer"
	challengeInvalidToken   = `Bearer error="invalid_token"`
	challengeInvalidRequest = `Bearer error="invalid_request"`
)

// errUnauthenticated is the answer to a request without a credential.
func errUnauthenticated() *apiError {
	return &apiError{status: http.StatusUnauthorized, class: classUnauthorized,
		detail: "A credential is required.", wwwAuth: challengeBearer}
}

// errInvalidCredential is the answer to a bad, expired or revoked credential.
func errInvalidCredential() *apiError {
	return &apiError{status: http.StatusUnauthorized, class: classUnauthorized,
		detail: "The credential is invalid, expired or revoked.", wwwAuth: challengeInvalidToken}
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if e.wwwAuth != "" {
		h.Set("WWW-Authenticate", e.wwwAuth)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retrySeconds(e.retryAfter)))
	}
	title := classTitles[e.class]
	if title == "" {
		title = http.StatusText(e.status)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(problemBody{Type: ProblemBase + e.class, Title: title, Status: e.status, Detail: e.detail})
}

// retrySeconds rounds a wait up to whole seconds, at least 1.
func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// asAPIError converts any handler error to what the client sees: an apiError
// as it is, anything else as an opaque 500.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return &apiError{status: http.StatusInternalServerError, class: classInternal,
		detail: "The server could not complete the request.", cause: err}
}

// writeJSON answers a JSON body. Every API response is no-store: most of them
// carry or reveal a credential, and the rest gain nothing from caches.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h["Content-Type"] = hdrJSONType
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// noContent answers 204.
func noContent(w http.ResponseWriter) {
	w.Header()["Cache-Control"] = hdrNoStore
	w.WriteHeader(http.StatusNoContent)
}

func jsonEncode(w http.ResponseWriter, v any) error { return json.NewEncoder(w).Encode(v) }
