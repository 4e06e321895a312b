// Package httpapi serves Gatehouse's HTTP API, the contract in
// shared/spec/http-api.md: routing, strict JSON, problem+json errors,
// cookies, CSRF and the mapping of domain errors to status codes. It holds no
// auth rules of its own: those live in the domain packages (account,
// session, csrf, throttle, audit), which it calls.
package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

// Config is what the API needs. Accounts, Sessions, Audit, AccountLimiter
// and IPLimiter are required.
type Config struct {
	Accounts *account.Service
	Sessions *session.Manager
	Audit    *audit.Recorder
	// Metrics may be nil (no metrics).
	Metrics *metrics.Metrics
	// AccountLimiter throttles login failures per account, IPLimiter per
	// client address.
	AccountLimiter throttle.Limiter
	IPLimiter      throttle.Limiter
	// Logger receives request and error logs; default slog.Default().
	Logger *slog.Logger
	// Clock is the source of time; default clock.System.
	Clock clock.Clock
	// Dev drops the cookie prefixes and the Secure attribute (plain HTTP on
	// a developer machine).
	Dev bool
	// Signup allows POST /v1/users.
	Signup bool
	// AdminKey, when not empty, is accepted as "Authorization: Bearer <key>"
	// on the admin endpoints. It must be at least 32 characters.
	AdminKey string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// TrustedOrigins are cross origins allowed to make unsafe requests
	// (e.g. "https://app.example.com"); none by default.
	TrustedOrigins []string
	// Ready reports whether the stores answer; nil means always ready.
	Ready func(context.Context) error
	// Tokens turns on token and hybrid mode; nil serves session mode only.
	Tokens *TokenConfig
	// PathPrefix is where an application mounts the API on its own mux
	// (e.g. "/auth", with mux.Handle("/auth/", http.StripPrefix("/auth",
	// api.Handler()))). Routes still match the stripped path; the refresh
	// cookie's Path becomes PathPrefix+"/v1/token", so that browsers send
	// it to the mounted token endpoint. The session and access cookies keep
	// Path=/ (the application's pages need them, and __Host- requires it).
	// Empty means the API is served at the root. It must start with "/",
	// not end with "/", be a clean path (no "//", "." or ".." segment), and
	// hold only letters, digits, "-", ".", "_", "~" and "/" (so no "?" or
	// "#"). With Tokens, Tokens.IssuerURL must end with it: the discovery
	// document's endpoint URLs are built from IssuerURL.
	PathPrefix string
}

// Server is the HTTP API. Build it with New and serve Handler.
type Server struct {
	cfg          Config
	log          *slog.Logger
	clock        clock.Clock
	cookies      cookieNames
	adminKeyHash []byte
	// serviceKeyHash is SHA-256 of the service key (introspection).
	serviceKeyHash []byte
	cop            *http.CrossOriginProtection
	mux            *http.ServeMux
	handler        http.Handler
	shutting       atomic.Bool
}

// New validates cfg and builds the Server.
func New(cfg Config) (*Server, error) {
	if cfg.Accounts == nil || cfg.Sessions == nil || cfg.Audit == nil || cfg.AccountLimiter == nil || cfg.IPLimiter == nil {
		return nil, errors.New("httpapi: Accounts, Sessions, Audit, AccountLimiter and IPLimiter are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if err := validatePathPrefix(cfg.PathPrefix, cfg.Tokens); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, cookies: newCookieNames(cfg.Dev)}
	if cfg.AdminKey != "" {
		if len(cfg.AdminKey) < 32 {
			return nil, errors.New("httpapi: the admin key must be at least 32 characters")
		}
		h := sha256.Sum256([]byte(cfg.AdminKey))
		s.adminKeyHash = h[:]
	}
	if cfg.Tokens != nil {
		if err := cfg.Tokens.validate(); err != nil {
			return nil, err
		}
		if cfg.Tokens.ServiceKey != "" {
			h := sha256.Sum256([]byte(cfg.Tokens.ServiceKey))
			s.serviceKeyHash = h[:]
		}
	}
	s.cop = http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("httpapi: trusted origin %q: %w", o, err)
		}
	}
	s.mux = http.NewServeMux()
	s.routes()
	s.handler = s.recoverer(s.instrument(s.securityHeaders(s.crossOrigin(s.dispatch()))))
	return s, nil
}

// validatePathPrefix checks Config.PathPrefix, and that the issuer URL,
// the base of the discovery document, includes it.
func validatePathPrefix(prefix string, tokens *TokenConfig) error {
	if prefix == "" {
		return nil
	}
	// Unreserved characters only: the cookie Path and the request path the
	// browser compares it with are then the same bytes, encoded or not.
	notUnreserved := func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~/", r))
	}
	if prefix[0] != '/' || strings.HasSuffix(prefix, "/") || path.Clean(prefix) != prefix || strings.ContainsFunc(prefix, notUnreserved) {
		return fmt.Errorf("httpapi: path prefix %q: must start with \"/\", not end with \"/\", be a clean path, and hold only letters, digits, \"-\", \".\", \"_\", \"~\" and \"/\"", prefix)
	}
	if tokens != nil && tokens.IssuerURL != "" {
		u, err := url.Parse(tokens.IssuerURL)
		if err != nil || !strings.HasSuffix(strings.TrimRight(u.Path, "/"), prefix) {
			return fmt.Errorf("httpapi: the issuer URL %q must end with the path prefix %q: the discovery document's endpoints are built from it", tokens.IssuerURL, prefix)
		}
	}
	return nil
}

// AdminKey returns the admin key the server accepts ("" when none): the
// lab, in --dev, acts as an administrator with it.
func (s *Server) AdminKey() string { return s.cfg.AdminKey }

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// SetShuttingDown makes /readyz answer 503, so that load balancers stop
// sending requests before the server stops accepting them.
func (s *Server) SetShuttingDown() { s.shutting.Store(true) }

func (s *Server) routes() {
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /openapi.yaml", s.openAPI)
	if s.cfg.Metrics != nil {
		mh := s.cfg.Metrics.Handler()
		s.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			if rw, ok := w.(*responseRecorder); ok {
				rw.route = "GET /metrics"
			}
			mh.ServeHTTP(w, r)
		})
	}

	s.handle("POST /v1/users", s.createUser)
	s.handle("GET /v1/me", s.authed(s.me))
	s.handle("POST /v1/me/password", s.authed(s.changePassword))

	s.handle("POST /v1/sessions", s.login)
	s.handle("GET /v1/sessions/current", s.sessionAuthed(s.currentSession))
	s.handle("DELETE /v1/sessions/current", s.sessionAuthed(s.logout))
	s.handle("GET /v1/sessions", s.sessionAuthed(s.listSessions))
	s.handle("DELETE /v1/sessions/{id}", s.sessionAuthed(s.revokeSession))
	s.handle("DELETE /v1/sessions", s.sessionAuthed(s.revokeSessions))

	s.handle("POST /v1/admin/users/{id}/logout", s.admin(s.forceLogout))
	s.handle("GET /v1/admin/audit", s.admin(s.auditEvents))

	s.handle("GET /v1/verify", s.forwardAuth)
	if s.cfg.Tokens != nil {
		s.tokenRoutes()
	}
}

// handlerFunc is an API handler: it writes a success response itself and
// returns an error for anything else.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers h and turns its error into a problem response.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if rw, ok := w.(*responseRecorder); ok {
			rw.route = pattern
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail answers err as a problem, logging what the client does not see.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := asAPIError(err)
	if ae.status >= 500 && (ae.status != http.StatusServiceUnavailable || ae.cause != nil) {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", r.Pattern, "error", err)
	} else if ae.cause != nil {
		s.log.WarnContext(r.Context(), "request refused", "method", r.Method, "route", r.Pattern, "status", ae.status, "error", ae.cause)
	}
	writeProblem(w, ae)
}

// dispatch routes to the mux. ServeMux answers unknown paths and methods
// itself, in plain text; the responseRecorder turns those answers (a 404 or
// 405 written before any of our handlers claimed the request) into
// problem+json.
func (s *Server) dispatch() http.Handler { return s.mux }

// crossOrigin applies net/http.CrossOriginProtection to the whole API.
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.cop.Check(r); err != nil {
			s.record(r, audit.Event{Type: audit.TypeCSRFRefused, Reason: "cross_origin"})
			writeProblem(w, problemf(http.StatusForbidden, classCSRF, "Cross-origin request refused."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Security headers of every response. The values are shared slices, set
// without allocation on the hot path; nothing appends to them.
var (
	hdrNosniff  = []string{"nosniff"}
	hdrNoRef    = []string{"no-referrer"}
	hdrDeny     = []string{"DENY"}
	hdrCSP      = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrNoStore  = []string{"no-store"}
	hdrJSONType = []string{"application/json"}
)

func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = hdrNosniff
		h["Referrer-Policy"] = hdrNoRef
		h["X-Frame-Options"] = hdrDeny
		h["Content-Security-Policy"] = hdrCSP
		next.ServeHTTP(w, r)
	})
}

// responseRecorder remembers the status and the matched route for metrics
// and the access log, and replaces ServeMux's plain-text 404 and 405 with
// problem+json.
type responseRecorder struct {
	http.ResponseWriter
	r       *http.Request
	status  int
	route   string
	swallow bool // the mux's own body is being discarded
}

func (rw *responseRecorder) WriteHeader(code int) {
	if rw.status != 0 {
		rw.ResponseWriter.WriteHeader(code)
		return
	}
	rw.status = code
	if rw.route == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		// ServeMux's own answer: no handler of ours ran.
		rw.swallow = true
		h := rw.ResponseWriter.Header()
		allow := h.Get("Allow")
		for k := range h {
			switch k {
			case "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Content-Security-Policy":
			default:
				delete(h, k)
			}
		}
		if code == http.StatusMethodNotAllowed {
			h.Set("Allow", allow)
			writeProblem(rw.ResponseWriter, problemf(code, classMethod, "Method %s is not allowed here.", rw.r.Method))
			return
		}
		writeProblem(rw.ResponseWriter, problemf(code, classNotFound, "No such endpoint."))
		return
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseRecorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	if rw.swallow {
		return len(b), nil
	}
	return rw.ResponseWriter.Write(b)
}

func (rw *responseRecorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// instrument counts and logs every request. The log line has the method,
// the route pattern (never the raw path or query), the status and the
// duration: nothing a credential could hide in.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &responseRecorder{ResponseWriter: w, r: r}
		next.ServeHTTP(rw, r)
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		route := rw.route
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.cfg.Metrics.HTTP(route, rw.status, d)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.DebugContext(r.Context(), "request", "method", r.Method, "route", route, "status", rw.status, "duration", d)
		}
	})
}

// RequestTimeout bounds the work of one request (its context): waiting for
// a password-hashing slot, store calls. It is shorter than the throttle's
// attempt hold, so a reserved login attempt always ends before its hold
// lapses.
const RequestTimeout = 30 * time.Second

// recoverer turns a panic into an opaque 500: never a stack trace to the
// client. The stack goes to the log. It also bounds the request's context.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeProblem(w, asAPIError(errors.New("panic")))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.shutting.Load() {
		return problemf(http.StatusServiceUnavailable, classUnavailable, "The server is shutting down.")
	}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			ae := problemf(http.StatusServiceUnavailable, classUnavailable, "A store does not answer.")
			ae.cause = err
			return ae
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// isAdminKey reports, in constant time, whether tok is the admin key.
func (s *Server) isAdminKey(tok string) bool {
	if s.adminKeyHash == nil {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	return hmac.Equal(h[:], s.adminKeyHash)
}
