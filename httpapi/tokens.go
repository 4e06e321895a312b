package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/csrf"
	"github.com/gatehouse-auth/gatehouse/internal/credential"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/token"
)

// TokenConfig turns on token and hybrid mode. Every field but Forward and
// ServiceKey is required.
type TokenConfig struct {
	// Ring signs access tokens and publishes the JWKS.
	Ring *keys.Ring
	// Issuer mints access tokens; Verifier checks them (with revocation).
	Issuer   *token.Issuer
	Verifier *token.Verifier
	// Refresh runs the refresh-token families.
	Refresh *refresh.Manager
	// Revocations is the denylist and revoked-before index the Verifier
	// consults; the API writes to it.
	Revocations *revocation.Index
	// IssuerURL is the tokens' iss and the base of the discovery document's
	// endpoint URLs.
	IssuerURL string
	// AccessLifetime is the access tokens' lifetime (for cookie Max-Age and
	// how long a revocation entry must live).
	AccessLifetime time.Duration
	// RefreshLifetime is the refresh families' absolute lifetime (the
	// refresh cookie's Max-Age).
	RefreshLifetime time.Duration
	// CSRFKey (32 bytes or more) derives the CSRF tokens of hybrid mode.
	CSRFKey []byte
	// ServiceKey, when set, is the credential of the introspection
	// endpoint (Authorization: Bearer <key>), at least 32 characters.
	ServiceKey string
	// Forward, when set, mints the X-Gatehouse-Token of /v1/verify: a
	// short-lived JWT with its own audience for upstream services.
	Forward *token.Issuer
	// OnKeysChanged, when set, is called after the admin API has rotated
	// or removed a signing key, before it answers: a server of several
	// instances tells the others to reload their rings.
	OnKeysChanged func(ctx context.Context)
}

// keysChanged calls OnKeysChanged, if any, with a context that the
// client's leaving does not cancel.
func (s *Server) keysChanged(r *http.Request) {
	if f := s.cfg.Tokens.OnKeysChanged; f != nil {
		f(context.WithoutCancel(r.Context()))
	}
}

func (c *TokenConfig) validate() error {
	if c.Ring == nil || c.Issuer == nil || c.Verifier == nil || c.Refresh == nil || c.Revocations == nil {
		return errors.New("httpapi: token mode needs Ring, Issuer, Verifier, Refresh and Revocations")
	}
	if c.IssuerURL == "" || c.AccessLifetime <= 0 || c.RefreshLifetime <= 0 {
		return errors.New("httpapi: token mode needs IssuerURL, AccessLifetime and RefreshLifetime")
	}
	if len(c.CSRFKey) < 32 {
		return errors.New("httpapi: token mode needs a CSRF key of at least 32 bytes")
	}
	if c.ServiceKey != "" && len(c.ServiceKey) < 32 {
		return errors.New("httpapi: the service key must be at least 32 characters")
	}
	return nil
}

func (s *Server) tokenRoutes() {
	s.handleOAuth("POST /v1/token", s.tokenEndpoint)
	s.handleOAuth("POST /v1/token/revoke", s.revokeEndpoint)
	s.handleOAuth("POST /v1/token/introspect", s.introspectEndpoint)
	s.handle("GET /.well-known/jwks.json", s.jwks)
	s.handle("GET /.well-known/openid-configuration", s.discovery)
	s.handle("GET /v1/revocations", s.revocationFeed)
	s.handle("GET /v1/token/csrf", s.hybridCSRFToken)
	s.handle("GET /v1/token/families", s.authed(s.listFamilies))
	s.handle("DELETE /v1/token/families/{id}", s.authed(s.revokeFamily))
	s.handle("POST /v1/admin/keys/rotate", s.admin(s.rotateKeys))
	s.handle("DELETE /v1/admin/keys/{kid}", s.admin(s.removeKey))
}

// hybridCSRF is the CSRF token of a hybrid-mode login: bound to its refresh
// family (the access token's sid), so it changes at every login and is
// worthless with another one, while every tab of one login shares it.
func (s *Server) hybridCSRF(sid string) string {
	mac := hmac.New(sha256.New, s.cfg.Tokens.CSRFKey)
	mac.Write([]byte("hybrid-csrf-key\x00" + sid))
	return csrf.Token(mac.Sum(nil))
}

func (s *Server) validHybridCSRF(sid, presented string) bool {
	mac := hmac.New(sha256.New, s.cfg.Tokens.CSRFKey)
	mac.Write([]byte("hybrid-csrf-key\x00" + sid))
	return csrf.Valid(mac.Sum(nil), presented)
}

func (s *Server) accessCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.cookies.access, Value: value, Path: "/", MaxAge: maxAge,
		Secure: s.cookies.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func (s *Server) refreshCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.cookies.refresh, Value: value, Path: s.cfg.PathPrefix + "/v1/token", MaxAge: maxAge,
		Secure: s.cookies.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

// refreshFromCookie reads the refresh cookie, refusing duplicates and
// case variants of its name.
func (s *Server) refreshFromCookie(r *http.Request) (string, bool, error) {
	var val string
	found := false
	for _, c := range r.Cookies() {
		switch {
		case c.Name == s.cookies.refresh:
			if found {
				return "", false, oauthErr(http.StatusBadRequest, "invalid_request", "The refresh cookie appears more than once.")
			}
			val, found = c.Value, true
		case strings.EqualFold(c.Name, s.cookies.refresh):
			return "", false, oauthErr(http.StatusBadRequest, "invalid_request", "A cookie name differs from Gatehouse's only in case.")
		}
	}
	return val, found, nil
}

// tokenEndpoint is POST /v1/token: the password and refresh_token grants,
// with the tokens in the body or (delivery=cookie) in HttpOnly cookies.
func (s *Server) tokenEndpoint(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeOAuth(w, r)
	if err != nil {
		return err
	}
	var cookieMode bool
	switch req.Delivery {
	case "":
	case "cookie":
		cookieMode = true
	default:
		return oauthErr(http.StatusBadRequest, "invalid_request", `Parameter "delivery" must be "cookie" or absent.`)
	}
	if req.Scope != "" {
		return oauthErr(http.StatusBadRequest, "invalid_scope", "This server grants no scopes.")
	}
	switch req.GrantType {
	case "password":
		return s.passwordGrant(w, r, req, cookieMode)
	case "refresh_token":
		return s.refreshGrant(w, r, req, cookieMode)
	case "":
		return oauthErr(http.StatusBadRequest, "invalid_request", `Parameter "grant_type" is required.`)
	default:
		return oauthErr(http.StatusBadRequest, "unsupported_grant_type", "Supported grant types: password, refresh_token.")
	}
}

func tokenMode(cookieMode bool) string {
	if cookieMode {
		return modeCookieToken
	}
	return modeToken
}

func (s *Server) passwordGrant(w http.ResponseWriter, r *http.Request, req *oauthRequest, cookieMode bool) error {
	if req.Username == "" || req.Password == "" || req.RefreshToken != "" || req.Token != "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", `The password grant takes "username" and "password".`)
	}
	mode := tokenMode(cookieMode)
	ctx := r.Context()
	at, err := s.beginAttempt(r, req.Username)
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.status == http.StatusTooManyRequests {
			s.cfg.Metrics.Login(mode, "throttled")
			s.recordThrottled(r, req.Username)
			return &oauthError{status: http.StatusTooManyRequests, code: "too_many_requests", description: ae.detail, retryAfter: ae.retryAfter}
		}
		return err
	}
	u, err := s.cfg.Accounts.Authenticate(ctx, req.Username, req.Password)
	if errors.Is(err, account.ErrBadCredentials) {
		s.cfg.Metrics.Login(mode, "failure")
		uid, name := s.knownUsername(ctx, at)
		s.record(r, audit.Event{Type: audit.TypeLoginFailure, UserID: uid, Username: name, Reason: "bad_credentials"})
		if err := at.fail(); err != nil {
			return err
		}
		return oauthErr(http.StatusBadRequest, "invalid_grant", "The username or password is wrong.")
	}
	if err != nil {
		at.abandon()
		s.cfg.Metrics.Login(mode, "error")
		return err
	}
	if err := at.succeed(); err != nil {
		return err
	}
	delivery := refresh.DeliveryBody
	if cookieMode {
		delivery = refresh.DeliveryCookie
	}
	rt, fam, err := s.cfg.Tokens.Refresh.Start(ctx, u.ID, refresh.Meta{Delivery: delivery, UserAgent: cleanUserAgent(r.UserAgent()), IP: s.clientIP(r).String()})
	if err != nil {
		s.cfg.Metrics.Login(mode, "error")
		return err
	}
	s.cfg.Metrics.Login(mode, "success")
	s.record(r, audit.Event{Type: audit.TypeLoginSuccess, UserID: u.ID, Username: u.Username, SessionID: fam.ID, Reason: mode})
	s.record(r, audit.Event{Type: audit.TypeTokenIssued, UserID: u.ID, SessionID: fam.ID})
	return s.issuePair(w, r, u, fam, rt, cookieMode)
}

// issuePair mints an access token for the family and answers the pair.
func (s *Server) issuePair(w http.ResponseWriter, r *http.Request, u *account.User, fam refresh.Family, rt string, cookieMode bool) error {
	raw, claims, err := s.cfg.Tokens.Issuer.Issue(r.Context(), u.ID, fam.ID, u.Roles, "")
	if err != nil {
		return err
	}
	expiresIn := int(claims.ExpiresAt.Sub(claims.IssuedAt) / time.Second)
	w.Header().Set("Pragma", "no-cache")
	if cookieMode {
		http.SetCookie(w, s.accessCookie(raw, expiresIn))
		http.SetCookie(w, s.refreshCookie(rt, int(fam.ExpiresAt.Sub(s.clock.Now())/time.Second)))
		writeJSON(w, http.StatusOK, map[string]any{"expires_in": expiresIn, "csrf_token": s.hybridCSRF(fam.ID)})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": raw, "token_type": "Bearer", "expires_in": expiresIn, "refresh_token": rt,
	})
	return nil
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, req *oauthRequest, cookieMode bool) error {
	if req.Username != "" || req.Password != "" || req.Token != "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", `The refresh_token grant takes "refresh_token" only.`)
	}
	ctx := r.Context()
	rt := req.RefreshToken
	if cookieMode {
		if rt != "" {
			return oauthErr(http.StatusBadRequest, "invalid_request", `A cookie-mode refresh takes the refresh token from its cookie, not from "refresh_token".`)
		}
		v, ok, err := s.refreshFromCookie(r)
		if err != nil {
			return err
		}
		if !ok {
			return oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or revoked.")
		}
		rt = v
		// The CSRF token is bound to the family: check it before anything
		// changes.
		fam, err := s.cfg.Tokens.Refresh.FamilyOf(ctx, rt)
		if errors.Is(err, store.ErrNotFound) {
			return oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or revoked.")
		}
		if err != nil {
			return err
		}
		if !s.validHybridCSRF(fam.ID, r.Header.Get(csrf.HeaderName)) {
			s.record(r, audit.Event{Type: audit.TypeCSRFRefused, UserID: fam.UserID, SessionID: fam.ID, Reason: "csrf_token"})
			return oauthErr(http.StatusForbidden, "invalid_request", "The X-CSRF-Token header is missing or does not match.")
		}
	} else if rt == "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", `Parameter "refresh_token" is required.`)
	}
	next, fam, outcome, err := s.cfg.Tokens.Refresh.Rotate(ctx, rt)
	if errors.Is(err, refresh.ErrReuse) {
		// The family is revoked; so are its access tokens.
		if rerr := s.revokeSID(ctx, fam.ID); rerr != nil {
			return rerr
		}
		s.record(r, audit.Event{Type: audit.TypeTokenReuse, UserID: fam.UserID, SessionID: fam.ID, Reason: "rotated_token_presented"})
		return oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or revoked.")
	}
	if errors.Is(err, refresh.ErrInvalidGrant) {
		return oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or revoked.")
	}
	if err != nil {
		return err
	}
	u, err := s.cfg.Accounts.User(ctx, fam.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return oauthErr(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or revoked.")
	}
	if err != nil {
		return err
	}
	typ := audit.TypeTokenRefreshed
	if outcome == refresh.OutcomeGraceReplay {
		typ = audit.TypeTokenGraceReplay
	}
	s.record(r, audit.Event{Type: typ, UserID: u.ID, SessionID: fam.ID})
	return s.issuePair(w, r, u, fam, next, cookieMode)
}

// MaxAccessLifetime is the longest access-token lifetime the configuration
// allows. Family and user revocations are kept this long, not just for the
// current lifetime, so that lowering the lifetime can never let a token
// minted under the longer one outlive its revocation.
const MaxAccessLifetime = 24 * time.Hour

// revokeSID refuses every access token of a family or session from now on.
func (s *Server) revokeSID(ctx context.Context, sid string) error {
	if s.cfg.Tokens == nil {
		return nil
	}
	return s.cfg.Tokens.Revocations.RevokeSID(context.WithoutCancel(ctx), sid, s.clock.Now().Add(MaxAccessLifetime))
}

// revokeEndpoint is RFC 7009: 200 for anything well-formed, whether the
// token was known or not. Without a token parameter, a hybrid-mode client
// logs out: the refresh cookie's family is revoked and both cookies are
// cleared (CSRF token required).
func (s *Server) revokeEndpoint(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeOAuth(w, r)
	if err != nil {
		return err
	}
	if req.GrantType != "" || req.Username != "" || req.Password != "" || req.RefreshToken != "" || req.Delivery != "" || req.Scope != "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", `The revocation endpoint takes "token" and "token_type_hint".`)
	}
	ctx := r.Context()
	if req.Token == "" {
		rt, ok, err := s.refreshFromCookie(r)
		if err != nil {
			return err
		}
		if !ok {
			return oauthErr(http.StatusBadRequest, "invalid_request", `Parameter "token" is required.`)
		}
		fam, err := s.cfg.Tokens.Refresh.FamilyOf(ctx, rt)
		if err == nil {
			if !s.validHybridCSRF(fam.ID, r.Header.Get(csrf.HeaderName)) {
				s.record(r, audit.Event{Type: audit.TypeCSRFRefused, UserID: fam.UserID, SessionID: fam.ID, Reason: "csrf_token"})
				return oauthErr(http.StatusForbidden, "invalid_request", "The X-CSRF-Token header is missing or does not match.")
			}
			if err := s.revokeRefresh(r, rt); err != nil {
				return err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		http.SetCookie(w, s.accessCookie("", -1))
		http.SetCookie(w, s.refreshCookie("", -1))
		writeJSON(w, http.StatusOK, map[string]any{})
		return nil
	}
	switch req.TokenTypeHint {
	case "", "access_token", "refresh_token":
	default:
		// RFC 7009 §2.1: an unknown hint is ignored.
	}
	if strings.Count(req.Token, ".") == 2 {
		if err := s.revokeAccess(r, req.Token); err != nil {
			return err
		}
	} else if err := s.revokeRefresh(r, req.Token); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// revokeAccess denylists a genuine, unexpired access token by its jti.
func (s *Server) revokeAccess(r *http.Request, raw string) error {
	claims, err := s.cfg.Tokens.Verifier.Verify(r.Context(), raw)
	if errors.Is(err, token.ErrInvalidToken) || errors.Is(err, token.ErrExpired) || errors.Is(err, token.ErrRevoked) {
		return nil // nothing to revoke
	}
	if err != nil {
		return err
	}
	if err := s.cfg.Tokens.Revocations.DenyToken(context.WithoutCancel(r.Context()), claims.JTI, claims.ExpiresAt); err != nil {
		return err
	}
	s.record(r, audit.Event{Type: audit.TypeTokenRevoked, UserID: claims.Subject, SessionID: claims.SID, Reason: "access_token"})
	return nil
}

// revokeRefresh revokes a refresh token's family and its access tokens.
func (s *Server) revokeRefresh(r *http.Request, rt string) error {
	fam, err := s.cfg.Tokens.Refresh.Revoke(r.Context(), rt)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.revokeSID(r.Context(), fam.ID); err != nil {
		return err
	}
	s.record(r, audit.Event{Type: audit.TypeTokenRevoked, UserID: fam.UserID, SessionID: fam.ID, Reason: "refresh_token"})
	return nil
}

// introspectEndpoint is RFC 7662, behind the service key.
func (s *Server) introspectEndpoint(w http.ResponseWriter, r *http.Request) error {
	if !s.isServiceKey(r) {
		return &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
			description: "Introspection needs the service credential.", wwwAuth: challengeBearer}
	}
	req, err := decodeOAuth(w, r)
	if err != nil {
		return err
	}
	if req.Token == "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", `Parameter "token" is required.`)
	}
	claims, err := s.cfg.Tokens.Verifier.Verify(r.Context(), req.Token)
	if errors.Is(err, token.ErrInvalidToken) || errors.Is(err, token.ErrExpired) || errors.Is(err, token.ErrRevoked) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return nil
	}
	if err != nil {
		return err
	}
	// A token of a deleted user is not active.
	if _, err := s.cfg.Accounts.User(r.Context(), claims.Subject); errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return nil
	} else if err != nil {
		return err
	}
	out := map[string]any{
		"active": true, "sub": claims.Subject, "exp": claims.ExpiresAt.Unix(), "iat": claims.IssuedAt.Unix(),
		"iss": claims.Issuer, "aud": claims.Audience, "jti": claims.JTI, "scope": claims.Scope,
		"token_type": "Bearer", "sid": claims.SID,
	}
	if claims.Roles != nil {
		out["roles"] = claims.Roles
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// isServiceKey reports whether the request's only credential is the
// service key.
func (s *Server) isServiceKey(r *http.Request) bool {
	if s.serviceKeyHash == nil {
		return false
	}
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return false
	}
	tok, ok := credential.ParseBearer(vals[0])
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	return hmac.Equal(h[:], s.serviceKeyHash)
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	// Short enough that a gateway sees a new key well within the publish
	// delay; a key is published before it signs.
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, err := w.Write(s.cfg.Tokens.Ring.JWKS())
	return err
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	base := strings.TrimRight(s.cfg.Tokens.IssuerURL, "/")
	alg := ""
	if k, err := s.cfg.Tokens.Ring.Signer(r.Context()); err == nil {
		alg = k.Alg()
	} else {
		return err
	}
	doc := map[string]any{
		"issuer":                                        s.cfg.Tokens.IssuerURL,
		"jwks_uri":                                      base + "/.well-known/jwks.json",
		"token_endpoint":                                base + "/v1/token",
		"revocation_endpoint":                           base + "/v1/token/revoke",
		"introspection_endpoint":                        base + "/v1/token/introspect",
		"grant_types_supported":                         []string{"password", "refresh_token"},
		"response_types_supported":                      []string{"token"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{alg},
		"token_endpoint_auth_methods_supported":         []string{"none"},
		"revocation_endpoint_auth_methods_supported":    []string{"none"},
		"introspection_endpoint_auth_methods_supported": []string{"bearer"},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	return jsonEncode(w, doc)
}

func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request, actor string) error {
	kid, signsFrom, err := s.cfg.Tokens.Ring.Rotate(r.Context())
	if err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	s.keysChanged(r)
	s.record(r, audit.Event{Type: audit.TypeKeyRotated, ActorID: actor, Reason: kid})
	writeJSON(w, http.StatusOK, map[string]any{"kid": kid, "signs_from": signsFrom.UTC()})
	return nil
}

// removeKey is the emergency removal of a compromised signing key: it
// leaves the JWKS and is refused for verification at once; if it was
// signing, another key signs from now on.
func (s *Server) removeKey(w http.ResponseWriter, r *http.Request, actor string) error {
	kid := r.PathValue("kid")
	err := s.cfg.Tokens.Ring.Remove(r.Context(), kid)
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, classNotFound, "No such key.")
	}
	if err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	s.keysChanged(r)
	s.record(r, audit.Event{Type: audit.TypeKeyRemoved, ActorID: actor, Reason: kid})
	noContent(w)
	return nil
}

// familyView is a refresh family (a login in token or hybrid mode) as the
// device list shows it.
type familyView struct {
	ID            string    `json:"id"`
	Delivery      string    `json:"delivery"`
	CreatedAt     time.Time `json:"created_at"`
	LastUsedAt    time.Time `json:"last_used_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	UserAgent     string    `json:"user_agent"`
	IP            string    `json:"ip"`
	Current       bool      `json:"current"`
}

// listFamilies is GET /v1/token/families: the caller's live token-mode
// logins, for the device list. Any credential.
func (s *Server) listFamilies(w http.ResponseWriter, r *http.Request, p *principal) error {
	fams, err := s.cfg.Tokens.Refresh.List(r.Context(), p.user.ID)
	if err != nil {
		return err
	}
	out := make([]familyView, 0, len(fams))
	for _, f := range fams {
		out = append(out, familyView{
			ID: f.ID, Delivery: f.Delivery, CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt.UTC(),
			IdleExpiresAt: f.IdleExpiresAt.UTC(), ExpiresAt: f.ExpiresAt.UTC(), UserAgent: f.UserAgent, IP: f.IP,
			Current: p.claims != nil && p.claims.SID == f.ID,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"families": out})
	return nil
}

// revokeFamily is DELETE /v1/token/families/{id}: ends one of the caller's
// token-mode logins and its access tokens at once; anyone else's is 404.
func (s *Server) revokeFamily(w http.ResponseWriter, r *http.Request, p *principal) error {
	fam, err := s.cfg.Tokens.Refresh.RevokeFamily(r.Context(), p.user.ID, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, classNotFound, "No such login.")
	}
	if err != nil {
		return err
	}
	if err := s.revokeSID(r.Context(), fam.ID); err != nil {
		return err
	}
	s.record(r, audit.Event{Type: audit.TypeTokenRevoked, UserID: p.user.ID, SessionID: fam.ID, Reason: "device_list"})
	noContent(w)
	return nil
}

// hybridCSRFToken is GET /v1/token/csrf: a hybrid-mode browser app that
// lost its CSRF token (a reload after its access cookie expired) gets it
// back from its refresh cookie, then refreshes. The answer is readable only
// by the app's own origin (no CORS), and the refresh cookie is
// SameSite=Strict and scoped to /v1/token.
func (s *Server) hybridCSRFToken(w http.ResponseWriter, r *http.Request) error {
	rt, ok, err := s.refreshFromCookie(r)
	if err != nil {
		return badRequest("%s", err.(*oauthError).description)
	}
	if !ok {
		return errUnauthenticated()
	}
	fam, err := s.cfg.Tokens.Refresh.FamilyOf(r.Context(), rt)
	if errors.Is(err, store.ErrNotFound) || err == nil && !fam.Live(s.clock.Now()) {
		return errInvalidCredential()
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"csrf_token": s.hybridCSRF(fam.ID)})
	return nil
}
