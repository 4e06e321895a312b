// Package gate is net/http middleware for Go applications that embed
// Gatehouse: it authenticates a request to one of the application's own
// routes by the same rules as the Gatehouse server, and hands the handler a
// Principal.
//
// A Gate accepts the credentials of the three modes:
//
//   - the session cookie (session mode), looked up in the session store;
//   - a Bearer access token (token mode), checked by a TokenVerifier;
//   - the access-token cookie of hybrid mode, checked the same way.
//
// It applies the server's rules, so that an application route behaves like
// an API endpoint:
//
//   - one credential per request: two kinds at once, a credential cookie
//     twice, a cookie whose name differs from Gatehouse's only in case, two
//     Authorization headers or a malformed one answer 400 invalid_request
//     with WWW-Authenticate: Bearer error="invalid_request";
//   - no credential answers 401 with WWW-Authenticate: Bearer; a bad,
//     expired or revoked one, or one of a mode the Gate is not configured
//     for, answers 401 with WWW-Authenticate: Bearer error="invalid_token";
//   - a valid credential of a kind the route does not accept (a Bearer
//     token on a RequireSession route) answers 403 forbidden, as the
//     server's session endpoints do;
//   - an unsafe request (POST, PUT, PATCH, DELETE) authenticated by a cookie
//     must pass net/http.CrossOriginProtection and carry the X-CSRF-Token
//     bound to its credential, or it answers 403 csrf;
//   - when a store or the verifier fails, the answer is an opaque 500 and the
//     handler is not called: the gate fails closed.
//
// Refusals are application/problem+json (RFC 9457) with the problem types of
// the Gatehouse API, unless Config.OnError answers them.
//
// The package is light enough to import into any service: it imports no
// database driver and none of the server's packages.
package gate

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/csrf"
	"github.com/gatehouse-auth/gatehouse/internal/credential"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/token"
)

// Authentication modes, as Principal.Mode and the Gatehouse API name them.
const (
	// ModeSession is a session cookie.
	ModeSession = "session"
	// ModeToken is a Bearer access token.
	ModeToken = "token"
	// ModeCookieToken is the access-token cookie of hybrid mode.
	ModeCookieToken = "cookie-token"
)

// UserSource loads users by id. *account.Service implements it.
type UserSource interface {
	// User returns the user with that id; a missing user is an error
	// wrapping store.ErrNotFound.
	User(ctx context.Context, id string) (*account.User, error)
}

// TokenVerifier verifies access tokens with every check, revocation
// included. *token.Verifier implements it.
type TokenVerifier interface {
	// Verify returns the claims of a valid token. A refused token is an
	// error wrapping token.ErrInvalidToken, token.ErrExpired or
	// token.ErrRevoked; any other error means the verifier could not
	// decide, and the request is refused with 500.
	Verify(ctx context.Context, raw string) (*token.Claims, error)
}

// Config configures a Gate. Users is required, and at least one of Sessions
// and Tokens.
type Config struct {
	// Sessions looks up session cookies; nil refuses session mode.
	Sessions *session.Manager
	// Users loads the authenticated user (roles, username, and whether it
	// still exists). Required.
	Users UserSource
	// Tokens verifies access tokens; nil refuses token and hybrid mode.
	Tokens TokenVerifier
	// HybridCSRFKey turns on hybrid mode (the access token in a cookie). It
	// must be the key the Gatehouse server derives hybrid CSRF tokens from
	// (httpapi.TokenConfig.CSRFKey), at least 32 bytes, and needs Tokens.
	HybridCSRFKey []byte
	// Dev uses the cookie names of --dev mode, without the __Host- prefix.
	// It must match the server's setting.
	Dev bool
	// CrossOrigin is the cross-origin protection of cookie-authenticated
	// unsafe requests; nil means http.NewCrossOriginProtection() (same
	// origin only). Set it to trust other origins.
	CrossOrigin *http.CrossOriginProtection
	// OnError, when set, answers every refusal and failure instead of the
	// default problem+json (see WriteProblem). The error wraps one of the
	// sentinels (ErrNoCredential, ErrInvalidCredential,
	// ErrAmbiguousCredential, ErrCSRF, ErrForbidden) or is an internal
	// failure, which must be answered 5xx. OnError must write a response;
	// the wrapped handler is never called after it.
	OnError func(http.ResponseWriter, *http.Request, error)
	// Logger receives internal failures (and, at debug level, why a
	// credential was refused, never the credential); default
	// slog.Default(). Unused for failures when OnError is set.
	Logger *slog.Logger
}

// Gate is the middleware. Build it with New; it is safe for concurrent use.
type Gate struct {
	cfg     Config
	cookies credential.Names
	cop     *http.CrossOriginProtection
	log     *slog.Logger
}

// New validates cfg and returns a Gate.
func New(cfg Config) (*Gate, error) {
	switch {
	case cfg.Users == nil:
		return nil, errors.New("gate: Users is required")
	case cfg.Sessions == nil && cfg.Tokens == nil:
		return nil, errors.New("gate: at least one of Sessions and Tokens is required")
	case cfg.HybridCSRFKey != nil && cfg.Tokens == nil:
		return nil, errors.New("gate: HybridCSRFKey needs Tokens")
	case cfg.HybridCSRFKey != nil && len(cfg.HybridCSRFKey) < 32:
		return nil, errors.New("gate: HybridCSRFKey must be at least 32 bytes")
	}
	g := &Gate{cfg: cfg, cookies: credential.NamesFor(cfg.Dev), cop: cfg.CrossOrigin, log: cfg.Logger}
	if g.cop == nil {
		g.cop = http.NewCrossOriginProtection()
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if cfg.HybridCSRFKey != nil {
		g.cfg.HybridCSRFKey = append([]byte(nil), cfg.HybridCSRFKey...)
	}
	return g, nil
}

// Principal is the authenticated caller of a request.
type Principal struct {
	// UserID is the user's id.
	UserID string
	// Username is the user's normalised username.
	Username string
	// Roles are the user's current roles, as the store holds them.
	Roles []string
	// Mode is ModeSession, ModeToken or ModeCookieToken.
	Mode string
	// SessionID is the public id of the session (session mode) or the
	// refresh family the token belongs to (its sid); never a secret.
	SessionID string
	// Claims are the verified access token's claims; nil in session mode.
	Claims *token.Claims
	// CSRFToken is the token that unsafe requests authenticated by this
	// cookie must carry in X-CSRF-Token, for pages to embed; empty for a
	// Bearer token.
	CSRFToken string
}

// HasRole reports whether the principal has the role.
func (p *Principal) HasRole(role string) bool {
	for _, r := range p.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// LogValue logs who the principal is, without its CSRF token or claims.
func (p *Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("user_id", p.UserID),
		slog.String("username", p.Username),
		slog.String("mode", p.Mode),
		slog.String("session_id", p.SessionID),
	)
}

type principalKey struct{}

// PrincipalFrom returns the principal a Gate middleware stored in ctx, and
// false when the request did not pass through one.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// kinds is a set of credential kinds.
type kinds uint8

const (
	kindSession kinds = 1 << iota
	kindBearer
	kindCookieToken
)

// RequireSession is middleware that lets through requests authenticated by
// a session cookie only. It panics if the Gate has no Sessions.
func (g *Gate) RequireSession(next http.Handler) http.Handler {
	if g.cfg.Sessions == nil {
		panic("gate: RequireSession needs Config.Sessions")
	}
	return g.require(kindSession, next)
}

// RequireToken is middleware that lets through requests authenticated by an
// access token: a Bearer token, or the hybrid-mode cookie when
// HybridCSRFKey is set. It panics if the Gate has no Tokens.
func (g *Gate) RequireToken(next http.Handler) http.Handler {
	if g.cfg.Tokens == nil {
		panic("gate: RequireToken needs Config.Tokens")
	}
	return g.require(g.tokenKinds(), next)
}

// RequireAny is middleware that lets through requests authenticated by any
// credential the Gate is configured for.
func (g *Gate) RequireAny(next http.Handler) http.Handler {
	return g.require(g.configured(), next)
}

func (g *Gate) tokenKinds() kinds {
	if g.cfg.HybridCSRFKey != nil {
		return kindBearer | kindCookieToken
	}
	return kindBearer
}

// RequireRole returns middleware that lets through principals with the
// role, and answers 403 forbidden to the others. It goes after (inside) an
// authenticating middleware:
//
//	g.RequireAny(g.RequireRole("admin")(h))
//
// A request that reaches it without a principal is a wiring mistake and
// answers 500. It panics if role is empty.
func (g *Gate) RequireRole(role string) func(http.Handler) http.Handler {
	if role == "" {
		panic("gate: RequireRole with an empty role")
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("gate: nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				g.fail(w, r, errors.New("gate: RequireRole reached without an authenticating middleware before it"))
				return
			}
			if !p.HasRole(role) {
				g.fail(w, r, errRole)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// require lets through requests authenticated by a credential of a kind
// in accept. A credential of another kind the Gate is configured for is
// checked first, as the server does: a bad one is 401, a good one 403.
func (g *Gate) require(accept kinds, next http.Handler) http.Handler {
	if next == nil {
		panic("gate: nil handler")
	}
	wrongKind := errNeedsToken
	if accept == kindSession {
		wrongKind = errNeedsSession
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, kind, err := g.authenticate(r)
		if err == nil && kind&accept == 0 {
			err = wrongKind
		}
		if err != nil {
			g.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// configured is the set of kinds the Gate can check.
func (g *Gate) configured() kinds {
	var k kinds
	if g.cfg.Sessions != nil {
		k |= kindSession
	}
	if g.cfg.Tokens != nil {
		k |= g.tokenKinds()
	}
	return k
}

// authenticate resolves the request's one credential and checks CSRF for
// unsafe requests authenticated by a cookie. It returns the credential's
// kind with the principal.
func (g *Gate) authenticate(r *http.Request) (*Principal, kinds, error) {
	c, err := g.extract(r)
	if err != nil {
		return nil, 0, err
	}
	if c.kind == 0 {
		return nil, 0, errNoCredential
	}
	if c.kind&g.configured() == 0 {
		// A mode this Gate cannot check: invalid here, as the server
		// answers a token when token mode is off.
		return nil, 0, errInvalid
	}
	byCookie := c.kind != kindBearer
	unsafe := byCookie && csrf.Unsafe(r.Method)
	if unsafe {
		// Cheap, and before any store is asked.
		if err := g.cop.Check(r); err != nil {
			return nil, 0, errCrossOrigin
		}
	}
	var p *Principal
	switch c.kind {
	case kindSession:
		var secret session.Secret
		p, secret, err = g.session(r.Context(), c.value)
		if err != nil {
			return nil, 0, err
		}
		p.CSRFToken = secret.CSRFToken()
		if unsafe && !secret.ValidCSRF(r.Header.Get(csrf.HeaderName)) {
			return nil, 0, errCSRFToken
		}
	case kindBearer:
		p, err = g.token(r.Context(), c.value, ModeToken)
		if err != nil {
			return nil, 0, err
		}
	case kindCookieToken:
		p, err = g.token(r.Context(), c.value, ModeCookieToken)
		if err != nil {
			return nil, 0, err
		}
		key := g.hybridKey(p.SessionID)
		p.CSRFToken = csrf.Token(key)
		if unsafe && !csrf.Valid(key, r.Header.Get(csrf.HeaderName)) {
			return nil, 0, errCSRFToken
		}
	}
	return p, c.kind, nil
}

// hybridKey is the key of a hybrid-mode login's CSRF token, as the server
// derives it: bound to the refresh family, so every tab of one login shares
// the token and another login cannot use it.
func (g *Gate) hybridKey(sid string) []byte {
	mac := hmac.New(sha256.New, g.cfg.HybridCSRFKey)
	mac.Write([]byte("hybrid-csrf-key\x00" + sid))
	return mac.Sum(nil)
}

func (g *Gate) session(ctx context.Context, value string) (*Principal, session.Secret, error) {
	secret, err := session.ParseSecret(value)
	if err != nil {
		return nil, secret, errInvalid
	}
	sess, err := g.cfg.Sessions.Lookup(ctx, secret)
	if errors.Is(err, session.ErrNoSession) {
		return nil, secret, errInvalid
	}
	if err != nil {
		return nil, secret, fmt.Errorf("gate: look up session: %w", err)
	}
	u, err := g.user(ctx, sess.UserID)
	if err != nil {
		return nil, secret, err
	}
	// A session created before the user's forced logout is refused even if
	// a cache of this process still holds it.
	if sess.CreatedAt.Before(u.RevokedBefore) {
		return nil, secret, errInvalid
	}
	p := newPrincipal(u, ModeSession)
	p.SessionID = sess.ID
	return p, secret, nil
}

func (g *Gate) token(ctx context.Context, raw, mode string) (*Principal, error) {
	claims, err := g.cfg.Tokens.Verify(ctx, raw)
	if errors.Is(err, token.ErrInvalidToken) || errors.Is(err, token.ErrExpired) || errors.Is(err, token.ErrRevoked) {
		if g.log.Enabled(ctx, slog.LevelDebug) {
			g.log.DebugContext(ctx, "access token refused", "mode", mode, "reason", token.Reason(err))
		}
		return nil, errInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("gate: verify access token: %w", err)
	}
	if claims == nil {
		return nil, errors.New("gate: the verifier returned no claims and no error")
	}
	u, err := g.user(ctx, claims.Subject)
	if err != nil {
		return nil, err
	}
	p := newPrincipal(u, mode)
	p.SessionID = claims.SID
	p.Claims = claims
	return p, nil
}

// user loads the credential's user: a deleted user's credential is invalid.
func (g *Gate) user(ctx context.Context, id string) (*account.User, error) {
	u, err := g.cfg.Users.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("gate: load user: %w", err)
	}
	if u == nil {
		return nil, errors.New("gate: the user source returned no user and no error")
	}
	return u, nil
}

func newPrincipal(u *account.User, mode string) *Principal {
	return &Principal{UserID: u.ID, Username: u.Username, Roles: append([]string(nil), u.Roles...), Mode: mode}
}

// fail answers err, through OnError when set.
func (g *Gate) fail(w http.ResponseWriter, r *http.Request, err error) {
	if g.cfg.OnError != nil {
		g.cfg.OnError(w, r, err)
		return
	}
	var rf *refusal
	if !errors.As(err, &rf) {
		g.log.ErrorContext(r.Context(), "authentication failed", "method", r.Method, "error", err)
	}
	WriteProblem(w, err)
}
