// Package bench measures a running Gatehouse deployment over HTTP, as a
// client of the public API (shared/spec/http-api.md) and nothing else: the
// cost of GET /v1/verify with each kind of credential (latency, throughput,
// bytes on the wire) and how long a revoked credential keeps working on each
// revocation path. Run does the measuring; the Result it returns renders as
// a table (WriteTable) and a chart (WriteSVG), and Save and Load keep it on
// disk for the lab.
//
// The figures are wall-clock measurements of real exchanges: Run reads the
// system clock, and takes as long as its parameters say (about three times
// Config.Duration plus the revocation rounds).
package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultDuration    = 5 * time.Second
	DefaultConcurrency = 8
	DefaultRepeat      = 20
	DefaultRevokeWait  = 5 * time.Second
)

// Bounds of Config.
const (
	maxConcurrency = 256
	maxRepeat      = 100
	maxDuration    = 10 * time.Minute
	maxRevokeWait  = time.Minute
)

// Config is what Run measures and how.
type Config struct {
	// URL is the deployment's base URL, e.g. http://127.0.0.1:8080. Every
	// request goes there and nowhere else: redirects are not followed and
	// the environment's proxy settings are ignored.
	URL string
	// AdminKey is the deployment's admin key; without it the forced-logout
	// path is skipped.
	AdminKey string
	// Username and Password are the bench user's. When both are empty Run
	// creates a user named bench-<random> with a random password through
	// POST /v1/users. The password must be right: the bench never retries
	// a refused login, so that it never feeds the login throttle. Give a
	// dedicated account: the forced-logout path ends every session and
	// token of the user.
	Username, Password string
	// Duration is how long each verify mode is measured (default 5s).
	Duration time.Duration
	// Concurrency is the number of concurrent verify clients (default 8).
	Concurrency int
	// Repeat is the number of revocations measured per path (default 20).
	Repeat int
	// RevokeWait bounds how long a revoked credential is polled before it
	// counts as timed out (default 5s).
	RevokeWait time.Duration
	// Progress receives a progress bar; nil for none.
	Progress io.Writer
	// Terminal says Progress is a terminal: the bar is redrawn on one line
	// rather than printed once per step.
	Terminal bool
}

// check validates c and fills in the defaults.
func (c *Config) check() (*url.URL, error) {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Repeat == 0 {
		c.Repeat = DefaultRepeat
	}
	if c.RevokeWait == 0 {
		c.RevokeWait = DefaultRevokeWait
	}
	var errs []error
	if c.Duration < 10*time.Millisecond || c.Duration > maxDuration {
		errs = append(errs, fmt.Errorf("duration %s is outside 10ms to %s", c.Duration, maxDuration))
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("concurrency %d is outside 1 to %d", c.Concurrency, maxConcurrency))
	}
	if c.Repeat < 1 || c.Repeat > maxRepeat {
		errs = append(errs, fmt.Errorf("repeat %d is outside 1 to %d", c.Repeat, maxRepeat))
	}
	if c.RevokeWait < 10*time.Millisecond || c.RevokeWait > maxRevokeWait {
		errs = append(errs, fmt.Errorf("revoke wait %s is outside 10ms to %s", c.RevokeWait, maxRevokeWait))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("give both the username and the password of the bench user, or neither"))
	}
	u, err := parseTarget(c.URL)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return u, nil
}

// parseTarget checks the deployment's URL: http or https, a host, no
// credentials, query or fragment.
func parseTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("url %q: the scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("url %q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("url %q: credentials in the URL are not accepted", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("url %q: a query or fragment is not accepted", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// IsLoopback reports whether the deployment's URL names a loopback host
// (localhost or an address in 127.0.0.0/8 or ::1). The command warns before
// it sends a password in clear to any other host.
func IsLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// bencher is one run.
type bencher struct {
	cfg  Config
	base string // the target URL without a trailing slash
	// api is the client of the setup and revocation steps.
	api  *http.Client
	prog *progress
	res  *Result
	// tokens is false when the deployment does not serve token mode.
	tokens bool
	// userID is the bench user's id.
	userID string
}

// Modes of credentials, as X-Gatehouse-Auth-Mode names them.
const (
	modeSession     = "session"
	modeToken       = "token"
	modeCookieToken = "cookie-token"
)

// modeLabels describes each mode.
var modeLabels = map[string]string{
	modeSession:     "session cookie",
	modeToken:       "Bearer access token",
	modeCookieToken: "hybrid access cookie",
}

// errNoTokenMode reports a deployment that does not serve POST /v1/token.
var errNoTokenMode = errors.New("the deployment does not serve token mode")

// Run measures the deployment cfg names and returns the result. It stops by
// itself: each verify mode runs for cfg.Duration, each revocation is polled
// for at most cfg.RevokeWait, and every exchange has a timeout. Cancelling
// ctx stops it early with an error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	target, err := cfg.check()
	if err != nil {
		return nil, err
	}
	// A bound on the whole run, beyond the bounds of every step.
	budget := 3*cfg.Duration + time.Duration(cfg.Repeat)*3*(cfg.RevokeWait+3*requestTimeout) + 2*time.Minute
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	b := &bencher{
		cfg:    cfg,
		base:   target.String(),
		api:    newClient(4, nil),
		tokens: true,
		res: &Result{
			Timestamp: time.Now().UTC().Truncate(time.Second),
			Target:    target.String(),
			GoVersion: runtime.Version(),
			Params: Params{
				DurationMS:   ms(cfg.Duration),
				Concurrency:  cfg.Concurrency,
				Repeat:       cfg.Repeat,
				RevokeWaitMS: ms(cfg.RevokeWait),
			},
		},
	}
	defer closeClient(b.api)
	steps := []string{"verifying session mode", "verifying token mode", "verifying hybrid mode",
		"revoking: session logout", "revoking: token revoke", "revoking: forced logout"}
	b.prog = newProgress(cfg.Progress, cfg.Terminal, len(steps))
	defer b.prog.close()
	start := time.Now()

	b.prog.step("creating the bench user")
	if err := b.setupUser(ctx); err != nil {
		return nil, err
	}
	for i, mode := range []string{modeSession, modeToken, modeCookieToken} {
		b.prog.begin(steps[i])
		if err := b.verifyMode(ctx, mode); err != nil {
			if errors.Is(err, errNoTokenMode) {
				b.tokens = false
				b.note(fmt.Sprintf("%s: skipped, %v", modeLabels[mode], err))
				b.prog.end()
				continue
			}
			return nil, err
		}
		b.prog.end()
	}
	b.prog.begin(steps[3])
	if err := b.revokeSessions(ctx); err != nil {
		return nil, err
	}
	b.prog.end()
	b.prog.begin(steps[4])
	if b.tokens {
		if err := b.revokeTokens(ctx); err != nil {
			return nil, err
		}
	} else {
		b.note("token revoke and JWKS-only paths: skipped, the deployment does not serve token mode")
	}
	b.prog.end()
	b.prog.begin(steps[5])
	if cfg.AdminKey != "" {
		if err := b.forcedLogouts(ctx); err != nil {
			return nil, err
		}
		if !b.res.Params.CreatedUser {
			b.note(fmt.Sprintf("the forced-logout path ended every session and token of %s, not only the bench's", b.res.Params.Username))
		}
	} else {
		b.note("forced logout path: skipped, no admin key")
	}
	b.prog.end()
	b.prog.step("done")
	b.res.ElapsedMS = ms(time.Since(start))
	return b.res, nil
}

func (b *bencher) note(s string) { b.res.Notes = append(b.res.Notes, s) }

// setupUser creates the bench user, or checks the given one by logging in
// (which also tells its id).
func (b *bencher) setupUser(ctx context.Context) error {
	if b.cfg.Username != "" {
		b.res.Params.Username = b.cfg.Username
		c, err := b.sessionLogin(ctx)
		if err != nil {
			return err
		}
		return b.logout(ctx, c)
	}
	name, password, err := newBenchUser()
	if err != nil {
		return err
	}
	r, err := b.do(ctx, b.api, exchange{method: http.MethodPost, path: "/v1/users",
		json: map[string]string{"username": name, "password": password}})
	if err != nil {
		return fmt.Errorf("bench: create the bench user: %w", err)
	}
	switch r.status {
	case http.StatusCreated:
	case http.StatusForbidden:
		return errors.New("bench: sign-up is disabled on this deployment: give the username and password of an existing user (--username, --password)")
	default:
		return fmt.Errorf("bench: create the bench user: %s", r.problem())
	}
	var u struct {
		ID string `json:"id"`
	}
	if err := jsonBody(r, &u); err != nil || u.ID == "" {
		return fmt.Errorf("bench: create the bench user: the answer has no user id (%v)", err)
	}
	b.cfg.Username, b.cfg.Password, b.userID = name, password, u.ID
	b.res.Params.Username, b.res.Params.CreatedUser = name, true
	return nil
}

// newBenchUser returns a fresh user name and a random password, both from
// crypto/rand.
func newBenchUser() (string, string, error) {
	var n [6]byte
	var p [24]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", "", fmt.Errorf("bench: random user name: %w", err)
	}
	if _, err := rand.Read(p[:]); err != nil {
		return "", "", fmt.Errorf("bench: random password: %w", err)
	}
	return "bench-" + hex.EncodeToString(n[:]), base64.RawURLEncoding.EncodeToString(p[:]), nil
}

// loginRefused is the error of a refused login: never retried, so that the
// bench never adds to the login throttle's failures.
func loginRefused(what string, r reply) error {
	if r.status == http.StatusTooManyRequests {
		return fmt.Errorf("bench: %s: the login throttle answered 429 (Retry-After %q); try again later", what, r.header.Get("Retry-After"))
	}
	return fmt.Errorf("bench: %s: the server refused the bench user's login (%s); check --username and --password", what, r.problem())
}
