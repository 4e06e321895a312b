package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// oauthError is an error of the three OAuth-shaped endpoints, answered in
// the RFC 6749 §5.2 shape instead of problem+json.
type oauthError struct {
	status      int
	code        string
	description string
	retryAfter  time.Duration
	wwwAuth     string
	cause       error
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }
func (e *oauthError) Unwrap() error { return e.cause }

func oauthErr(status int, code, description string) *oauthError {
	return &oauthError{status: status, code: code, description: description}
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retrySeconds(e.retryAfter)))
	}
	if e.wwwAuth != "" {
		h.Set("WWW-Authenticate", e.wwwAuth)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.description})
}

// oauthRequest is the union of the parameters of /v1/token,
// /v1/token/revoke and /v1/token/introspect, from a form or a JSON body.
type oauthRequest struct {
	GrantType     string `json:"grant_type"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	RefreshToken  string `json:"refresh_token"`
	Delivery      string `json:"delivery"`
	Scope         string `json:"scope"`
	Token         string `json:"token"`
	TokenTypeHint string `json:"token_type_hint"`
	ClientID      string `json:"client_id"`
}

// decodeOAuth reads an OAuth request from application/x-www-form-urlencoded
// or application/json, with the same strictness as the JSON API: unknown
// or repeated parameters are refused (RFC 6749 §3.2: "parameters MUST NOT be
// included more than once"). Errors are in the OAuth shape.
func decodeOAuth(w http.ResponseWriter, r *http.Request) (*oauthRequest, error) {
	var req oauthRequest
	switch mediaType(r) {
	case "application/json":
		if err := decodeJSON(w, r, &req); err != nil {
			return nil, toOAuth(err)
		}
	case "application/x-www-form-urlencoded":
		body, err := readBody(w, r)
		if err != nil {
			return nil, toOAuth(err)
		}
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The form body is malformed.")
		}
		fields := map[string]*string{
			"grant_type": &req.GrantType, "username": &req.Username, "password": &req.Password,
			"refresh_token": &req.RefreshToken, "delivery": &req.Delivery, "scope": &req.Scope,
			"token": &req.Token, "token_type_hint": &req.TokenTypeHint, "client_id": &req.ClientID,
		}
		for k, v := range vals {
			dst, ok := fields[k]
			if !ok {
				return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Unknown parameter "+strconv.Quote(k)+".")
			}
			if len(v) != 1 {
				return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Parameter "+strconv.Quote(k)+" appears more than once.")
			}
			*dst = v[0]
		}
	default:
		return nil, &oauthError{status: http.StatusUnsupportedMediaType, code: "invalid_request",
			description: "The body must be application/x-www-form-urlencoded or application/json."}
	}
	if r.URL.RawQuery != "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Parameters are not accepted in the URL query.")
	}
	return &req, nil
}

// toOAuth converts a problem from the shared body readers into the OAuth
// shape, keeping its status.
func toOAuth(err error) error {
	if oe, ok := err.(*oauthError); ok {
		return oe
	}
	ae := asAPIError(err)
	if ae.status >= 500 {
		return err
	}
	return &oauthError{status: ae.status, code: "invalid_request", description: ae.detail, retryAfter: ae.retryAfter, wwwAuth: ae.wwwAuth}
}

// handleOAuth registers an OAuth-shaped handler: its errors are answered in
// the RFC 6749 shape (a 5xx stays an opaque problem).
func (s *Server) handleOAuth(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if rw, ok := w.(*responseRecorder); ok {
			rw.route = pattern
		}
		err := h(w, r)
		if err == nil {
			return
		}
		if oe, ok := err.(*oauthError); ok {
			if oe.cause != nil {
				s.log.WarnContext(r.Context(), "request refused", "route", pattern, "status", oe.status, "error", oe.cause)
			}
			writeOAuthError(w, oe)
			return
		}
		if ae, ok := err.(*apiError); ok && ae.status < 500 {
			writeOAuthError(w, toOAuth(ae).(*oauthError))
			return
		}
		s.fail(w, r, err)
	})
}
