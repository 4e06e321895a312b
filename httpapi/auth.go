package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/csrf"
	"github.com/gatehouse-auth/gatehouse/internal/credential"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/token"
)

// Authentication modes as the API names them (/v1/me, forward-auth).
const (
	modeSession     = "session"
	modeToken       = "token"
	modeCookieToken = "cookie-token"
)

// principal is an authenticated caller.
type principal struct {
	user *account.User
	mode string
	// byCookie is true when a cookie carried the credential: unsafe
	// requests then need the CSRF token.
	byCookie bool
	srv      *Server
	// Session mode.
	session *session.Session
	secret  session.Secret
	// Token and hybrid mode.
	claims *token.Claims
}

// validCSRF reports whether the request carries the CSRF token bound to the
// principal's credential.
func (p *principal) validCSRF(r *http.Request) bool {
	switch p.mode {
	case modeSession:
		return p.secret.ValidCSRF(r.Header.Get(csrf.HeaderName))
	case modeCookieToken:
		return p.srv.validHybridCSRF(p.claims.SID, r.Header.Get(csrf.HeaderName))
	}
	return false
}

// authenticate resolves the request's credential. It returns (nil, nil)
// when the request carries none.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	creds, err := s.extractCredentials(r)
	if err != nil {
		return nil, err
	}
	switch {
	case creds.hasSession:
		return s.authenticateSession(r, creds.session)
	case creds.hasAccess:
		return s.authenticateToken(r, creds.access, modeCookieToken)
	case creds.hasBearer:
		return s.authenticateToken(r, creds.bearer, modeToken)
	}
	return nil, nil
}

// authenticateToken verifies an access token (Bearer or hybrid cookie)
// with every check of token.Verifier, then loads its user.
func (s *Server) authenticateToken(r *http.Request, raw, mode string) (*principal, error) {
	if s.cfg.Tokens == nil {
		s.cfg.Metrics.Verification(mode, "invalid")
		return nil, errInvalidCredential()
	}
	ctx := r.Context()
	claims, err := s.cfg.Tokens.Verifier.Verify(ctx, raw)
	switch {
	case errors.Is(err, token.ErrExpired):
		s.cfg.Metrics.Verification(mode, "expired")
		return nil, errInvalidCredential()
	case errors.Is(err, token.ErrRevoked):
		s.cfg.Metrics.Verification(mode, "revoked")
		return nil, errInvalidCredential()
	case errors.Is(err, token.ErrInvalidToken):
		s.cfg.Metrics.Verification(mode, "invalid")
		s.log.DebugContext(ctx, "access token refused", "mode", mode, "reason", token.Reason(err))
		return nil, errInvalidCredential()
	case err != nil:
		// The revocation state could not be consulted: fail closed.
		s.cfg.Metrics.Verification(mode, "error")
		return nil, fmt.Errorf("verify access token: %w", err)
	}
	u, err := s.cfg.Accounts.User(ctx, claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		s.cfg.Metrics.Verification(mode, "invalid")
		return nil, errInvalidCredential()
	}
	if err != nil {
		s.cfg.Metrics.Verification(mode, "error")
		return nil, err
	}
	s.cfg.Metrics.Verification(mode, "ok")
	return &principal{user: u, mode: mode, byCookie: mode == modeCookieToken, claims: claims, srv: s}, nil
}

func (s *Server) authenticateSession(r *http.Request, value string) (*principal, error) {
	ctx := r.Context()
	secret, err := session.ParseSecret(value)
	if err != nil {
		s.cfg.Metrics.Verification(modeSession, "invalid")
		return nil, errInvalidCredential()
	}
	sess, err := s.cfg.Sessions.Lookup(ctx, secret)
	if errors.Is(err, session.ErrExpired) && sess != nil {
		s.record(r, audit.Event{Type: audit.TypeSessionExpired, UserID: sess.UserID, SessionID: sess.ID})
	}
	if errors.Is(err, session.ErrNoSession) {
		s.cfg.Metrics.Verification(modeSession, "invalid")
		return nil, errInvalidCredential()
	}
	if err != nil {
		s.cfg.Metrics.Verification(modeSession, "error")
		return nil, err
	}
	u, err := s.cfg.Accounts.User(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		s.cfg.Metrics.Verification(modeSession, "invalid")
		return nil, errInvalidCredential()
	}
	if err != nil {
		s.cfg.Metrics.Verification(modeSession, "error")
		return nil, err
	}
	// A forced logout deletes the user's sessions; the revoked-before time
	// also refuses any created earlier that a cache or a racing lookup
	// still holds.
	if sess.CreatedAt.Before(u.RevokedBefore) {
		s.cfg.Metrics.Verification(modeSession, "revoked")
		return nil, errInvalidCredential()
	}
	s.cfg.Metrics.Verification(modeSession, "ok")
	return &principal{user: u, mode: modeSession, byCookie: true, session: sess, secret: secret, srv: s}, nil
}

type authedFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// authed requires any credential, and the CSRF token on unsafe requests
// authenticated by a cookie.
func (s *Server) authed(h authedFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if p == nil {
			return errUnauthenticated()
		}
		if err := s.checkCSRF(r, p); err != nil {
			return err
		}
		return h(w, r, p)
	}
}

// sessionAuthed is authed restricted to session mode: the session endpoints
// are about the server-side session of the caller.
func (s *Server) sessionAuthed(h authedFunc) handlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request, p *principal) error {
		if p.mode != modeSession {
			return problemf(http.StatusForbidden, classForbidden, "This endpoint needs a session cookie.")
		}
		return h(w, r, p)
	})
}

func (s *Server) checkCSRF(r *http.Request, p *principal) error {
	if !p.byCookie || !csrf.Unsafe(r.Method) {
		return nil
	}
	if p.validCSRF(r) {
		return nil
	}
	s.record(r, audit.Event{Type: audit.TypeCSRFRefused, UserID: p.user.ID, SessionID: p.sessionID(), Reason: "csrf_token"})
	return problemf(http.StatusForbidden, classCSRF, "The %s header is missing or does not match the session.", csrf.HeaderName)
}

// sessionID is the session or refresh family the credential belongs to.
func (p *principal) sessionID() string {
	if p.session != nil {
		return p.session.ID
	}
	if p.claims != nil {
		return p.claims.SID
	}
	return ""
}

// adminActor is who performs an admin action: a user id or "admin-key".
type adminFunc func(w http.ResponseWriter, r *http.Request, actor string) error

// admin requires the admin key or a user with the admin role.
func (s *Server) admin(h adminFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		// The admin key alone; with a credential cookie as well, the
		// request is ambiguous and authenticate refuses it.
		if vals := r.Header.Values("Authorization"); len(vals) == 1 && !s.hasCredentialCookie(r) {
			if tok, ok := credential.ParseBearer(vals[0]); ok && s.isAdminKey(tok) {
				return h(w, r, "admin-key")
			}
		}
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if p == nil {
			return errUnauthenticated()
		}
		if err := s.checkCSRF(r, p); err != nil {
			return err
		}
		if !p.user.HasRole("admin") {
			return problemf(http.StatusForbidden, classForbidden, "This endpoint needs the admin role.")
		}
		return h(w, r, p.user.ID)
	}
}

func (s *Server) hasCredentialCookie(r *http.Request) bool {
	for _, c := range r.Cookies() {
		if strings.EqualFold(c.Name, s.cookies.session) || strings.EqualFold(c.Name, s.cookies.access) {
			return true
		}
	}
	return false
}

// clientIP is the client's address: the peer, or, when the peer is a
// trusted proxy, the right-most address in X-Forwarded-For that is not
// itself a trusted proxy.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(hops[i])
		if err != nil {
			return peer
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
	}
	return peer
}

// parseHop parses one X-Forwarded-For hop: an address, or an address with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711"), as some proxies write it.
func parseHop(h string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(h)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr(), nil
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxUserAgent bounds the user agent kept with a session and in the audit.
const maxUserAgent = 256

// cleanUserAgent drops control characters and bounds the length, so that a
// user agent can never forge a log line or bloat the store.
func cleanUserAgent(ua string) string {
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, ua)
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}

// record writes an audit event with the request's client details filled in.
func (s *Server) record(r *http.Request, e audit.Event) {
	if e.IP == "" {
		if a := s.clientIP(r); a.IsValid() {
			e.IP = a.String()
		}
	}
	if e.UserAgent == "" {
		e.UserAgent = cleanUserAgent(r.UserAgent())
	}
	s.cfg.Audit.Record(context.WithoutCancel(r.Context()), e)
}
