// Package web serves the pages of the Gatehouse binary itself: sign-up,
// login, logout and the account page (devices, password) for end users, and,
// in development, the lab at /lab, where one person logs in in session,
// token and hybrid mode at once and sees what each does on the wire and in
// the store.
//
// The package holds no auth logic. Every page and every lab action calls the
// real JSON API handler in-process: it builds an internal request that
// carries over what matters from the browser's request (the session cookie,
// the client address, User-Agent, Sec-Fetch-Site, Origin and Host, so that
// the API's cross-origin protection judges the original request), passes it
// to Config.API, and copies back the status and the Set-Cookie headers. So
// login throttling, CSRF, revocation and every other rule of the API apply
// to the pages exactly as they apply to any other client.
//
// The pages are server-rendered and work without JavaScript. Every page is
// served with a strict Content-Security-Policy (no inline script or style);
// the assets are embedded in the binary and nothing is fetched from
// elsewhere.
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/token"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config is what the pages need.
type Config struct {
	// API is the httpapi handler (it routes /v1/..., /.well-known/... and
	// the service endpoints). Required. The pages call it in-process, and
	// every request the pages do not serve is passed to it unchanged.
	API http.Handler
	// Dev means cookie names without the __Host-/__Secure- prefixes, as the
	// API uses them in --dev.
	Dev bool
	// Signup shows the sign-up page (the API must allow sign-up too).
	Signup bool
	// Logger receives errors; default slog.Default(). No secret is logged.
	Logger *slog.Logger
	// Lab turns on the lab at /lab; nil serves no lab. Enable it in
	// development only: it keeps credentials of its visitors in memory.
	Lab *LabConfig
}

// LabConfig is what the lab needs besides the API.
type LabConfig struct {
	// AdminKey is the API's admin key, used for the forced logout and the
	// key rotation the lab performs; empty disables those two actions.
	AdminKey string
	// Now is the server's clock (the lab clock). Required.
	Now func() time.Time
	// Advance pushes the server's clock ahead ("let time pass"). Required.
	Advance func(time.Duration)
	// JWKSOnly verifies an access token the way a service holding only the
	// JWKS does: signature and claims, no revocation. Required.
	JWKSOnly func(ctx context.Context, raw string) (*token.Claims, error)
	// Snapshot returns what the server stores for one user; StoreSnapshot
	// builds it from the stores. Required.
	Snapshot func(ctx context.Context, q SnapshotQuery) (*Snapshot, error)
	// LatestBench, when set, returns the parsed bench.json of the latest
	// "gatehouse bench" run, or nil when there is none. Its JSON is shown
	// on /lab/compare as it is.
	LatestBench func() any
}

// Handler serves the pages, and passes every other request to Config.API.
// Build it with New.
type Handler struct {
	cfg           Config
	log           *slog.Logger
	mux           *http.ServeMux
	pages         map[string]*template.Template
	static        map[string]staticFile
	sessionCookie string
	lab           *lab // nil when the lab is off
}

// New validates cfg and builds the Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.API == nil {
		return nil, errors.New("web: Config.API is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), sessionCookie: "__Host-gh_session"}
	if cfg.Dev {
		h.sessionCookie = "gh_session"
	}
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if h.static, err = loadStatic(); err != nil {
		return nil, err
	}
	if cfg.Lab != nil {
		if h.lab, err = newLab(h, cfg.Lab); err != nil {
			return nil, err
		}
	}
	h.routes()
	return h, nil
}

// ServeHTTP serves the pages, the lab and their assets; anything else goes
// to the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) routes() {
	h.mux.Handle("/", h.cfg.API)
	h.page("GET /{$}", h.root)
	h.page("GET /login", h.loginForm)
	h.page("POST /login", h.loginSubmit)
	if h.cfg.Signup {
		h.page("GET /signup", h.signupForm)
		h.page("POST /signup", h.signupSubmit)
	}
	h.page("POST /logout", h.logout)
	h.page("GET /account", h.account)
	h.page("POST /account/sessions/revoke-others", h.revokeOthers)
	h.page("POST /account/sessions/{id}/revoke", h.revokeSession)
	h.page("POST /account/families/{id}/revoke", h.revokeFamily)
	h.page("GET /account/password", h.passwordForm)
	h.page("POST /account/password", h.passwordSubmit)
	h.mux.HandleFunc("GET /static/{name}", h.serveStatic)
	// Browsers ask for it on every page; there is none, and a 204 keeps
	// the 404 out of the logs and metrics.
	h.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	})
	if h.lab != nil {
		h.lab.routes(h.mux)
	}
}

// contentSecurityPolicy is sent with every page: no inline script or style,
// nothing from another origin, no framing, forms to this origin only.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// labContentSecurityPolicy is the lab page's: the same, and its script may
// call the lab's JSON endpoints on this origin (fetch falls under
// connect-src, which default-src 'none' would refuse).
const labContentSecurityPolicy = contentSecurityPolicy + "; connect-src 'self'"

// setPageHeaders sets the security headers of every page and lab response.
func setPageHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
}

// page registers a page handler with the security headers set.
func (h *Handler) page(pattern string, fn http.HandlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		fn(w, r)
	})
}

// staticFile is an embedded asset with its content type and ETag.
type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

func loadStatic() (map[string]staticFile, error) {
	out := map[string]staticFile{}
	err := fs.WalkDir(assets, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		ct := "application/octet-stream"
		switch path.Ext(p) {
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		sum := sha256.Sum256(b)
		out[path.Base(p)] = staticFile{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: load static assets: %w", err)
	}
	return out, nil
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == labScript {
		// The lab's script is served under /lab/static/, and only with
		// the lab on.
		http.NotFound(w, r)
		return
	}
	h.writeStatic(w, r, name)
}

func (h *Handler) writeStatic(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := h.static[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, strings.NewReader(string(f.body)))
}
