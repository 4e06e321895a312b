package httpapi

import (
	"net/http"

	"github.com/gatehouse-auth/gatehouse/csrf"
)

// Identity headers of forward-auth. Whatever a client sends under these
// names never reaches the answer: the headers are set here, from the
// verified credential only.
const (
	headerUserID   = "X-Gatehouse-User-Id"
	headerUsername = "X-Gatehouse-Username"
	headerAuthMode = "X-Gatehouse-Auth-Mode"
	headerToken    = "X-Gatehouse-Token"
)

// originalUnsafe reports whether the request a gateway is asking about
// may change state: X-Forwarded-Method (Caddy, Traefik) or
// X-Original-Method (the nginx ingress convention) names an unsafe method.
// Either one suffices, so that a client adding the other header with a safe
// method cannot hide the real one. nginx's auth_request sends neither unless
// told to: docs/gateways.md shows the line that adds it.
func originalUnsafe(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-Method", "X-Original-Method"} {
		for _, m := range r.Header.Values(h) {
			if m != "" && csrf.Unsafe(m) {
				return true
			}
		}
	}
	return false
}

// forwardAuth is GET/HEAD /v1/verify for nginx auth_request, Caddy
// forward_auth and Traefik ForwardAuth. A cookie-authenticated original
// request with an unsafe method (X-Forwarded-Method, as Caddy and Traefik
// send it) must carry the CSRF token too.
func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if p == nil {
		return errUnauthenticated()
	}
	if p.byCookie && originalUnsafe(r) && !p.validCSRF(r) {
		return problemf(http.StatusForbidden, classCSRF, "The %s header is missing or does not match.", csrf.HeaderName)
	}
	h := w.Header()
	h.Set(headerUserID, p.user.ID)
	h.Set(headerUsername, p.user.Username)
	h.Set(headerAuthMode, p.mode)
	h["Cache-Control"] = hdrNoStore
	if s.cfg.Tokens != nil && s.cfg.Tokens.Forward != nil {
		raw, _, err := s.cfg.Tokens.Forward.Issue(r.Context(), p.user.ID, p.sessionID(), p.user.Roles, "")
		if err != nil {
			return err
		}
		h.Set(headerToken, raw)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
