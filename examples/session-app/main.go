// Command session-app is a server-rendered web application that embeds
// Gatehouse in session mode: it mounts the Gatehouse API under /auth of its
// own mux, keeps Gatehouse's state in an SQLite file, and protects its own
// pages with the gate middleware.
//
// The pages are plain HTML forms, with no script at all. The login and
// sign-up forms post to the application's own handlers, which call the
// mounted API in-process (POST /auth/v1/users, POST /auth/v1/sessions) and
// hand its Set-Cookie back to the browser: the application never handles a
// password hash or a session secret itself. The notes and logout forms carry
// the session's CSRF token in a hidden field, which formCSRF moves to the
// X-CSRF-Token header, where the gate and the API check it.
//
//	go run ./examples/session-app
//
// then open http://127.0.0.1:8081. See README.md.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/gate"
	"github.com/gatehouse-auth/gatehouse/httpapi"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "session-app:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program: it serves until ctx ends. It prints
// "listening on http://ADDR" on stdout once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("session-app", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "127.0.0.1:8081", "listen address (host:port)")
	dataDir := fl.String("data-dir", "", "directory of Gatehouse's SQLite database (empty: a temporary directory, removed at exit)")
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

	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "session-app-")
		if err != nil {
			return fmt.Errorf("temporary data directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "gatehouse.db"), sqlite.Options{})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()

	h, err := newApp(db, *dev, log)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("session-app", "data_dir", dir, "dev", *dev)
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	// The purge stops before the database closes, however serve returns.
	pctx, stopPurge := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { purge(pctx, db, log) })
	defer wg.Wait()
	defer stopPurge()
	return serve(ctx, srv, ln)
}

// serve serves on ln until ctx ends, then lets requests in flight finish
// for up to 10 s.
func serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
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

// purge deletes expired sessions once a minute, as the Gatehouse server
// does, until ctx ends.
func purge(ctx context.Context, db *sqlite.DB, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := db.Purge(ctx); err != nil && ctx.Err() == nil {
				log.Warn("purge expired sessions", "error", err)
			}
		}
	}
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

//go:embed templates static
var files embed.FS

const (
	// authPrefix is where the Gatehouse API is mounted.
	authPrefix = "/auth"
	// maxForm bounds the body of the application's own forms.
	maxForm = 16 << 10
)

// app is the application: its pages, its notes, and the embedded Gatehouse.
type app struct {
	auth  http.Handler // the Gatehouse API, mounted under authPrefix
	notes *notebook
	pages *template.Template
	log   *slog.Logger
}

// newApp builds the application's handler over db: the Gatehouse API
// under /auth, and the application's pages behind the gate.
func newApp(db *sqlite.DB, dev bool, log *slog.Logger) (http.Handler, error) {
	// The same account service and session manager serve the API and the
	// gate: a logout through the API refuses the cookie on the very next
	// page (docs/embedding.md, "What is shared").
	accounts, err := account.New(db, account.Config{})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	sessions, err := session.NewManager(db, session.Config{})
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	api, err := httpapi.New(httpapi.Config{
		Accounts:       accounts,
		Sessions:       sessions,
		Audit:          audit.NewRecorder(log, db, nil),
		AccountLimiter: throttle.NewMemory(wallClock{}, throttle.DefaultAccountPolicy),
		IPLimiter:      throttle.NewMemory(wallClock{}, throttle.DefaultIPPolicy),
		Logger:         log,
		Dev:            dev,
		Signup:         true,
		Ready:          db.Ping,
		PathPrefix:     authPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("gatehouse api: %w", err)
	}
	pages, err := template.ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	a := &app{
		auth:  http.StripPrefix(authPrefix, api.Handler()),
		notes: &notebook{byUser: map[string][]note{}},
		pages: pages,
		log:   log,
	}
	g, err := gate.New(gate.Config{
		Sessions: sessions,
		Users:    accounts,
		Dev:      dev,
		Logger:   log,
		OnError:  a.refused,
	})
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle(authPrefix+"/", a.auth)
	mux.Handle("GET /static/", http.StripPrefix("/static", http.FileServerFS(static)))
	mux.Handle("GET /{$}", http.RedirectHandler("/notes", http.StatusSeeOther))
	mux.Handle("GET /login", page(http.HandlerFunc(a.loginPage)))
	mux.Handle("POST /login", page(http.HandlerFunc(a.login)))
	mux.Handle("POST /signup", page(http.HandlerFunc(a.signup)))
	mux.Handle("GET /notes", page(g.RequireSession(http.HandlerFunc(a.notesPage))))
	mux.Handle("POST /notes", page(formCSRF(g.RequireSession(http.HandlerFunc(a.addNote)))))
	mux.Handle("POST /logout", page(formCSRF(http.HandlerFunc(a.logout))))
	return mux, nil
}

// page sets the headers of the application's own pages: no script may
// run, nothing is cached, no other site may frame them.
func page(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// formCSRF lets plain HTML forms carry the CSRF token. The gate and the API
// read it from the X-CSRF-Token header only, which a form cannot set: for a
// form post without that header, formCSRF copies the form's csrf_token
// field into it. The token is still checked where it always is (bound to
// the session, compared in constant time), and the request must still pass
// the cross-origin check: this moves the token, it does not accept it.
func formCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-CSRF-Token") == "" {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err == nil {
				if tok := r.PostForm.Get("csrf_token"); tok != "" {
					r.Header.Set("X-CSRF-Token", tok)
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refused answers the gate's refusals for a browser: without a valid
// session, to the login page; a form without the right CSRF token (a tab
// left open across a logout and a new login, or another site's form), a
// page that says so; the rest as the API would answer (problem+json).
func (a *app) refused(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, gate.ErrNoCredential), errors.Is(err, gate.ErrInvalidCredential):
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	case errors.Is(err, gate.ErrCSRF):
		a.fail(w, http.StatusForbidden, "This form was not sent by this site's current page. Reload the page and try again.")
	default:
		gate.WriteProblem(w, err)
	}
}

// view is what the templates show.
type view struct {
	Title     string
	Error     string
	Username  string
	CSRFToken string
	Notes     []note
}

func (a *app) render(w http.ResponseWriter, status int, name string, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := a.pages.ExecuteTemplate(w, name, v); err != nil {
		a.log.Error("render page", "page", name, "error", err)
	}
}

func (a *app) fail(w http.ResponseWriter, status int, msg string) {
	a.render(w, status, "error", view{Title: http.StatusText(status), Error: msg})
}

func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "login", view{Title: "Log in"})
}

// credentials reads the username and password of a login or sign-up form.
func credentials(w http.ResponseWriter, r *http.Request) (username, password string, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return "", "", false
	}
	return r.PostForm.Get("username"), r.PostForm.Get("password"), true
}

// login posts the form's credentials to the embedded API's POST
// /auth/v1/sessions and, when they are right, hands the session cookie it
// set to the browser.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	username, password, ok := credentials(w, r)
	if !ok {
		a.render(w, http.StatusBadRequest, "login", view{Title: "Log in", Error: "The form could not be read."})
		return
	}
	a.startSession(w, r, username, password)
}

// startSession logs in through the API and answers the browser.
func (a *app) startSession(w http.ResponseWriter, r *http.Request, username, password string) {
	res := a.callAPI(r, http.MethodPost, authPrefix+"/v1/sessions", map[string]string{"username": username, "password": password})
	v := view{Title: "Log in", Username: username}
	switch res.status {
	case http.StatusCreated:
		res.copyCookies(w)
		http.Redirect(w, r, "/notes", http.StatusSeeOther)
		return
	case http.StatusUnauthorized:
		v.Error = "Wrong username or password."
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", res.header.Get("Retry-After"))
		v.Error = "Too many failed logins: try again later."
	case http.StatusBadRequest:
		v.Error = "Enter a username and a password."
	case http.StatusForbidden:
		v.Error = "This form was sent from another site. Open the login page and try again."
	default:
		a.log.Error("login through the embedded API", "status", res.status)
		a.fail(w, http.StatusBadGateway, "Logging in is not possible right now.")
		return
	}
	a.render(w, res.status, "login", v)
}

// signup creates the account through the API's POST /auth/v1/users (its
// password policy and username rules apply), then logs in.
func (a *app) signup(w http.ResponseWriter, r *http.Request) {
	username, password, ok := credentials(w, r)
	if !ok {
		a.render(w, http.StatusBadRequest, "login", view{Title: "Log in", Error: "The form could not be read."})
		return
	}
	res := a.callAPI(r, http.MethodPost, authPrefix+"/v1/users", map[string]string{"username": username, "password": password})
	switch res.status {
	case http.StatusCreated:
		a.startSession(w, r, username, password)
		return
	case http.StatusBadRequest, http.StatusConflict, http.StatusForbidden, http.StatusTooManyRequests:
		// The API's problem detail is written for the person at the form
		// ("the password must be 8 to 128 characters", "taken").
		a.render(w, res.status, "login", view{Title: "Log in", Error: res.problemDetail()})
	default:
		a.log.Error("sign-up through the embedded API", "status", res.status)
		a.fail(w, http.StatusBadGateway, "Signing up is not possible right now.")
	}
}

// logout ends the session through the API's DELETE
// /auth/v1/sessions/current, which needs the CSRF token (formCSRF put it in
// the header), and hands the browser the cookie-clearing Set-Cookie.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	res := a.callAPI(r, http.MethodDelete, authPrefix+"/v1/sessions/current", nil)
	switch res.status {
	case http.StatusNoContent, http.StatusUnauthorized:
		// Logged out now, or already: either way, to the login page.
		res.copyCookies(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	case http.StatusForbidden:
		a.fail(w, http.StatusForbidden, "This form was not sent by this site's current page. Reload the page and try again.")
	default:
		a.log.Error("logout through the embedded API", "status", res.status)
		a.fail(w, http.StatusBadGateway, "Logging out is not possible right now.")
	}
}

func (a *app) notesPage(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	a.render(w, http.StatusOK, "notes", view{Title: "Your notes", Username: p.Username, CSRFToken: p.CSRFToken, Notes: a.notes.list(p.UserID)})
}

func (a *app) addNote(w http.ResponseWriter, r *http.Request) {
	p, _ := gate.PrincipalFrom(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		a.fail(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if err := a.notes.add(p.UserID, r.PostForm.Get("text"), time.Now()); err != nil {
		a.render(w, http.StatusBadRequest, "notes", view{Title: "Your notes", Error: noteMessages[err], Username: p.Username, CSRFToken: p.CSRFToken, Notes: a.notes.list(p.UserID)})
		return
	}
	http.Redirect(w, r, "/notes", http.StatusSeeOther)
}
