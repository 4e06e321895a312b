// Command spa-api is a single-page application and its API, with Gatehouse
// embedded in hybrid mode: the access and refresh tokens travel in HttpOnly
// cookies that the page's script never sees, and every unsafe request
// carries the login's CSRF token in X-CSRF-Token.
//
// One Go server serves three things on one origin:
//
//   - the SPA's static files (index.html, app.js, style.css: no inline
//     script, nothing from another origin);
//
//   - the Gatehouse API under /auth (httpapi with PathPrefix "/auth"), on
//     the memory stores;
//
//   - the application's API, /api/notes, behind gate.RequireAny.
//
//     go run ./examples/spa-api
//
// then open http://127.0.0.1:8082. See README.md.
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/gate"
	"github.com/gatehouse-auth/gatehouse/httpapi"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/throttle"
	"github.com/gatehouse-auth/gatehouse/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "spa-api:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program: it serves until ctx ends. It prints
// "listening on http://ADDR" on stdout once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("spa-api", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "127.0.0.1:8082", "listen address (host:port)")
	publicURL := fl.String("public-url", "", "the application's public base URL (default http://<addr>); the tokens' issuer is this URL + /auth")
	dev := fl.Bool("dev", true, "plain-HTTP cookies, without Secure or the __Host- prefix (loopback only); set it to false behind HTTPS")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	if *dev && !loopback(*addr) {
		return fmt.Errorf("--dev on the non-loopback address %q: dev cookies travel without Secure over plain HTTP", *addr)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	base := *publicURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--public-url %q: want a scheme and a host, and no path", base)
	}
	h, err := newApp(ctx, strings.TrimSuffix(base, "/")+authPrefix, *dev, log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// wallClock is the system clock, for the packages that take one.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

//go:embed static
var files embed.FS

const (
	// authPrefix is where the Gatehouse API is mounted.
	authPrefix = "/auth"
	// maxBody bounds the body of the application's API requests.
	maxBody = 8 << 10
)

// newApp builds Gatehouse on the memory stores (everything is lost when the
// process stops), with issuer as the tokens' iss, and the application
// around it.
func newApp(ctx context.Context, issuer string, dev bool, log *slog.Logger) (http.Handler, error) {
	st := memory.New(nil)
	accounts, err := account.New(st, account.Config{})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	// The API needs a session manager even when the application uses
	// hybrid mode only (POST /auth/v1/sessions still works).
	sessions, err := session.NewManager(st, session.Config{})
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	tokens, err := tokenMode(ctx, issuer)
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{
		Accounts:       accounts,
		Sessions:       sessions,
		Audit:          audit.NewRecorder(log, st, nil),
		AccountLimiter: throttle.NewMemory(wallClock{}, throttle.DefaultAccountPolicy),
		IPLimiter:      throttle.NewMemory(wallClock{}, throttle.DefaultIPPolicy),
		Logger:         log,
		Dev:            dev,
		Signup:         true,
		Tokens:         tokens,
		// The refresh cookie gets Path=/auth/v1/token, where the browser
		// must send it; the issuer URL ends with the prefix.
		PathPrefix: authPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("gatehouse api: %w", err)
	}
	// The gate shares the API's verifier (and so its revocation index) and
	// its hybrid CSRF key: a logout through /auth/v1/token/revoke refuses
	// the access cookie on the very next API call.
	g, err := gate.New(gate.Config{
		Users:         accounts,
		Tokens:        tokens.Verifier,
		HybridCSRFKey: tokens.CSRFKey,
		Dev:           dev,
		Logger:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	n := &notebook{byUser: map[string][]note{}}

	mux := http.NewServeMux()
	mux.Handle(authPrefix+"/", http.StripPrefix(authPrefix, api.Handler()))
	mux.Handle("GET /api/notes", g.RequireAny(http.HandlerFunc(n.list)))
	mux.Handle("POST /api/notes", g.RequireAny(http.HandlerFunc(n.add)))
	serveStatic := staticHeaders(http.FileServerFS(static))
	for _, path := range []string{"/{$}", "/app.js", "/style.css"} {
		mux.Handle("GET "+path, serveStatic)
	}
	return mux, nil
}

// tokenMode assembles token and hybrid mode on the memory stores, as
// internal/app does on SQLite: a signing key ring, the revocation index,
// the issuer and verifier of access tokens, and the refresh families.
func tokenMode(ctx context.Context, issuer string) (*httpapi.TokenConfig, error) {
	// The key-encryption key seals the signing keys in their store. The
	// memory store dies with the process, so a random one does; a server
	// with a persistent store reads it from its configuration.
	kek := make([]byte, 32)
	csrfKey := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		return nil, err
	}
	if _, err := rand.Read(csrfKey); err != nil {
		return nil, err
	}
	ring, err := keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{KEK: kek, Alg: keys.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	idx, err := revocation.New(ctx, memory.NewRevocations(nil), nil)
	if err != nil {
		return nil, fmt.Errorf("revocation index: %w", err)
	}
	iss, err := token.NewIssuer(ring, token.IssuerConfig{Issuer: issuer, Audience: issuer})
	if err != nil {
		return nil, err
	}
	ver, err := token.NewVerifier(ring, token.VerifierConfig{Issuer: issuer, Audience: issuer, Revocation: idx})
	if err != nil {
		return nil, err
	}
	rcfg := refresh.DefaultConfig()
	rm, err := refresh.NewManager(memory.NewRefresh(nil), rcfg)
	if err != nil {
		return nil, err
	}
	return &httpapi.TokenConfig{
		Ring: ring, Issuer: iss, Verifier: ver, Refresh: rm, Revocations: idx,
		IssuerURL: issuer, AccessLifetime: token.DefaultLifetime, RefreshLifetime: rcfg.AbsoluteLifetime,
		CSRFKey: csrfKey,
	}, nil
}

// staticHeaders sets the headers of the SPA's files: scripts and styles
// from this origin only, fetch to this origin only, no inline script, no
// form submission without the script, no framing.
func staticHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// The notes are the application's own data, in memory.
const (
	maxNotes   = 100  // per user
	maxNoteLen = 1000 // characters
)

// note is one note, as the API shows it.
type note struct {
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// notebook is the application's API: each user's notes, by user id.
type notebook struct {
	mu     sync.Mutex
	byUser map[string][]note
}

// list answers GET /api/notes: the caller's notes, newest first.
func (n *notebook) list(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	n.mu.Lock()
	l := slices.Clone(n.byUser[p.UserID])
	n.mu.Unlock()
	slices.Reverse(l)
	if l == nil {
		l = []note{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"username": p.Username, "notes": l})
}

// add answers POST /api/notes {"text": "..."}: 201 with the note.
func (n *notebook) add(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
		problem(w, http.StatusUnsupportedMediaType, "Send JSON.")
		return
	}
	var in struct {
		Text string `json:"text"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		problem(w, http.StatusBadRequest, `The body must be {"text": "..."}.`)
		return
	}
	text := strings.TrimSpace(in.Text)
	if text == "" || utf8.RuneCountInString(text) > maxNoteLen {
		problem(w, http.StatusBadRequest, "A note is 1 to 1000 characters of text.")
		return
	}
	nt := note{Text: text, CreatedAt: time.Now().UTC()}
	n.mu.Lock()
	full := len(n.byUser[p.UserID]) >= maxNotes
	if !full {
		n.byUser[p.UserID] = append(n.byUser[p.UserID], nt)
	}
	n.mu.Unlock()
	if full {
		problem(w, http.StatusConflict, "You have 100 notes already.")
		return
	}
	writeJSON(w, http.StatusCreated, nt)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// problem answers an RFC 9457 problem, as the Gatehouse API and the gate do.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}
