// Package app assembles a Gatehouse server from a configuration: it opens
// the stores, builds the domain services and the HTTP API, serves, and shuts
// down gracefully. cmd/gatehouse is a thin shell around it.
//
// A server runs on one of two sets of stores (stores.go): the SQLite file
// of one machine, or PostgreSQL and Redis shared by several instances, which
// keep in step through Redis (cluster.go). The command-line tools (user,
// keys, backup) work on SQLite only, through OpenStore.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/bench"
	"github.com/gatehouse-auth/gatehouse/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
	"github.com/gatehouse-auth/gatehouse/throttle"
	"github.com/gatehouse-auth/gatehouse/token"
	"github.com/gatehouse-auth/gatehouse/web"
)

// NewLogger returns the process logger for cfg, writing to w.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// OpenStore opens (creating if needed) the SQLite database of cfg and
// applies pending migrations. It opens SQLite whatever else cfg says: the
// command-line tools work on SQLite only.
func OpenStore(ctx context.Context, cfg *config.Config, c clock.Clock) (*sqlite.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	db, err := sqlite.Open(ctx, cfg.DatabasePath(), sqlite.Options{Clock: c})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.DatabasePath(), err)
	}
	return db, nil
}

// Accounts builds the account service over db with cfg's hashing settings;
// log receives rehash failures, gauges (may be nil) the hashing queue.
func Accounts(cfg *config.Config, db account.Store, c clock.Clock, log *slog.Logger, gauges account.HashGauges) (*account.Service, error) {
	return account.New(db, account.Config{
		Gauges: gauges,
		Clock:  c,
		Params: account.Params{
			Memory:  cfg.Argon2Memory,
			Time:    cfg.Argon2Time,
			Threads: cfg.Argon2Threads,
			SaltLen: account.DefaultParams().SaltLen,
			KeyLen:  account.DefaultParams().KeyLen,
		},
		MaxConcurrentHashes: cfg.MaxConcurrentHashes,
		OnRehashError: func(err error) {
			log.Warn("rehash password with the current parameters", "error", err)
		},
	})
}

// Server is a running Gatehouse.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	st      *stores
	api     *httpapi.Server
	http    *http.Server
	ln      net.Listener
	metrics *metrics.Metrics
	tokens  *httpapi.TokenConfig
	// cluster keeps the instance in step with the others; nil on SQLite.
	cluster *cluster
	// stop ends the cluster's goroutines.
	stop context.CancelFunc
}

// New builds a server for cfg (already validated) and binds its listener.
// With PostgreSQL and Redis it also starts following the other instances;
// Run stops that when it returns.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	// In --dev the whole server runs on the lab clock: wall time that the
	// lab can push ahead ("let time pass"). Never outside --dev.
	var c clock.Clock = clock.System{}
	var labClock *clock.Offset
	if cfg.Dev {
		labClock = &clock.Offset{}
		c = labClock
	}
	st, err := openStores(ctx, cfg, c)
	if err != nil {
		return nil, err
	}
	srv, err := build(ctx, cfg, log, st, c, labClock)
	if err != nil {
		st.close()
		return nil, err
	}
	return srv, nil
}

// build assembles the server on st. It closes the listener it opened when
// it fails; the caller closes st.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, st *stores, c clock.Clock, labClock *clock.Offset) (_ *Server, err error) {
	m := metrics.New()
	instrument(st, m)
	accounts, err := Accounts(cfg, st.accounts, c, log, m)
	if err != nil {
		return nil, err
	}
	sessions, err := session.NewManager(st.sessions, session.Config{
		Clock:           c,
		IdleTimeout:     cfg.SessionIdleTimeout,
		AbsoluteTimeout: cfg.SessionAbsoluteTimeout,
	})
	if err != nil {
		return nil, err
	}
	accountPolicy := throttle.DefaultAccountPolicy
	accountPolicy.Max = cfg.LoginMaxFailures
	ipPolicy := throttle.DefaultIPPolicy
	ipPolicy.Max = cfg.LoginMaxFailuresPerIP
	if accountPolicy.Free > accountPolicy.Max {
		accountPolicy.Free = accountPolicy.Max
	}
	if ipPolicy.Free > ipPolicy.Max {
		ipPolicy.Free = ipPolicy.Max
	}
	if err := accountPolicy.Validate(); err != nil {
		return nil, fmt.Errorf("login throttling per account: %w", err)
	}
	if err := ipPolicy.Validate(); err != nil {
		return nil, fmt.Errorf("login throttling per address: %w", err)
	}
	accountLimiter, err := st.limiter("account", accountPolicy)
	if err != nil {
		return nil, fmt.Errorf("login throttling per account: %w", err)
	}
	ipLimiter, err := st.limiter("ip", ipPolicy)
	if err != nil {
		return nil, fmt.Errorf("login throttling per address: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	kek, err := LoadKEK(cfg)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	idx, err := revocation.New(ctx, st.revocations, c)
	if err != nil {
		return nil, fmt.Errorf("revocation index: %w", err)
	}
	var cl *cluster
	var checker token.RevocationChecker = idx
	if st.redis != nil {
		// Health is measured on the real clock, never the lab's.
		cl = newCluster(st.redis, idx, sessions, cfg.RevocationStaleAfter, clock.System{}, log)
		checker = cl.checker()
	}
	tokens, err := buildTokens(ctx, cfg, st, c, "http://"+ln.Addr().String(), kek, idx, checker)
	if err != nil {
		return nil, err
	}
	ready := st.ping
	if cl != nil {
		tokens.OnKeysChanged = cl.keysNotice
		ready = func(ctx context.Context) error {
			// Stale is enough to say: a store that does not answer may
			// keep a ping waiting for seconds.
			if err := cl.ready(ctx); err != nil {
				return err
			}
			return st.ping(ctx)
		}
	}
	rec := audit.NewRecorder(log, st.audit, c)
	rec.OnStoreError(m.AuditWriteError)
	adminKey := cfg.AdminKey
	if cfg.Dev && adminKey == "" {
		// The lab's admin actions (forced logout, key rotation) need an
		// admin credential; in --dev one is made up, never logged.
		adminKey = rand.Text() + rand.Text()
	}
	api, err := httpapi.New(httpapi.Config{
		Accounts:       accounts,
		Sessions:       sessions,
		Audit:          rec,
		Metrics:        m,
		AccountLimiter: accountLimiter,
		IPLimiter:      ipLimiter,
		Logger:         log,
		Clock:          c,
		Dev:            cfg.Dev,
		Signup:         cfg.Signup,
		AdminKey:       adminKey,
		TrustedProxies: cfg.TrustedProxies,
		TrustedOrigins: cfg.TrustedOrigins,
		Ready:          ready,
		Tokens:         tokens,
	})
	if err != nil {
		return nil, err
	}
	pages, err := buildPages(cfg, log, st, c, labClock, tokens, api, cl)
	if err != nil {
		return nil, err
	}
	hs := &http.Server{
		Handler:           pages,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCert != "" {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	srv := &Server{cfg: cfg, log: log, st: st, api: api, http: hs, ln: ln, metrics: m, tokens: tokens, cluster: cl, stop: func() {}}
	if cl != nil {
		bg, stop := context.WithCancel(context.WithoutCancel(ctx))
		srv.stop = stop
		cl.start(bg)
		// This instance may have generated the first key of a new
		// deployment while another did the same: tell the others.
		cl.keysNotice(ctx)
	}
	return srv, nil
}

// LoadKEK returns the key-encryption key of cfg: --kek, --kek-file, or in
// --dev a file generated in the data directory.
func LoadKEK(cfg *config.Config) ([]byte, error) {
	switch {
	case cfg.KEK != "":
		return keys.ParseKEK(cfg.KEK)
	case cfg.KEKFile != "":
		fi, err := os.Stat(cfg.KEKFile)
		if err != nil {
			return nil, fmt.Errorf("--kek-file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("--kek-file %s is readable by group or others (mode %v): chmod 600 it", cfg.KEKFile, fi.Mode().Perm())
		}
		b, err := os.ReadFile(cfg.KEKFile)
		if err != nil {
			return nil, fmt.Errorf("--kek-file: %w", err)
		}
		return keys.ParseKEK(strings.TrimSpace(string(b)))
	case cfg.Dev:
		return keys.LoadOrCreateKEKFile(filepath.Join(cfg.DataDir, "kek"))
	}
	return nil, errors.New("no key-encryption key configured (--kek or --kek-file)")
}

func newRing(ctx context.Context, cfg *config.Config, ks keys.Store, c clock.Clock, kek []byte) (*keys.Ring, error) {
	ring, err := keys.NewRing(ctx, ks, keys.RingConfig{
		KEK: kek, Alg: cfg.SigningAlg, Clock: c,
		PublishDelay: cfg.KeyPublishDelay, TokenLifetime: cfg.AccessTokenLifetime,
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return ring, nil
}

// buildTokens assembles token mode on st: the key ring, the issuers and
// the verifier (which asks checker about revocations: the index idx, or
// with several instances idx guarded by the cluster's health), and the
// refresh families. devIssuer is the issuer URL used in --dev when
// --issuer is not set.
func buildTokens(ctx context.Context, cfg *config.Config, st *stores, c clock.Clock, devIssuer string, kek []byte,
	idx *revocation.Index, checker token.RevocationChecker) (*httpapi.TokenConfig, error) {
	ring, err := newRing(ctx, cfg, st.keys, c, kek)
	if err != nil {
		return nil, err
	}
	issuerURL := cfg.Issuer
	if issuerURL == "" {
		issuerURL = devIssuer
	}
	aud := cfg.Audience
	if aud == "" {
		aud = issuerURL
	}
	iss, err := token.NewIssuer(ring, token.IssuerConfig{Issuer: issuerURL, Audience: aud, Lifetime: cfg.AccessTokenLifetime, Clock: c})
	if err != nil {
		return nil, err
	}
	ver, err := token.NewVerifier(ring, token.VerifierConfig{Issuer: issuerURL, Audience: aud, Leeway: cfg.Leeway, Clock: c, Revocation: checker})
	if err != nil {
		return nil, err
	}
	var fwd *token.Issuer
	if cfg.ForwardTokenAudience != "" {
		if cfg.ForwardTokenAudience == aud {
			return nil, errors.New("--forward-token-audience must differ from the access tokens' audience")
		}
		fwd, err = token.NewIssuer(ring, token.IssuerConfig{Issuer: issuerURL, Audience: cfg.ForwardTokenAudience, Lifetime: cfg.ForwardTokenLifetime, Clock: c})
		if err != nil {
			return nil, err
		}
	}
	rcfg := refresh.DefaultConfig()
	rcfg.Clock = c
	rcfg.IdleLifetime = cfg.RefreshIdleLifetime
	rcfg.AbsoluteLifetime = cfg.RefreshAbsoluteLifetime
	rcfg.Grace = cfg.RefreshGrace
	rm, err := refresh.NewManager(st.refresh, rcfg)
	if err != nil {
		return nil, err
	}
	// The hybrid-mode CSRF key is derived from the KEK, so that every
	// instance and every restart agree on it without storing it.
	mac := hmac.New(sha256.New, kek)
	mac.Write([]byte("gatehouse hybrid csrf key v1"))
	return &httpapi.TokenConfig{
		Ring: ring, Issuer: iss, Verifier: ver, Refresh: rm, Revocations: idx,
		IssuerURL: issuerURL, AccessLifetime: cfg.AccessTokenLifetime, RefreshLifetime: cfg.RefreshAbsoluteLifetime,
		CSRFKey: mac.Sum(nil), ServiceKey: cfg.ServiceKey, Forward: fwd,
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is cancelled, then drains requests for at most the
// shutdown timeout and closes the stores.
func (s *Server) Run(ctx context.Context) error {
	defer s.st.close()
	defer func() {
		s.stop()
		if s.cluster != nil {
			s.cluster.wait()
		}
	}()
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	if s.cfg.Distributed() {
		s.log.Info("gatehouse listening", "url", scheme+"://"+s.ln.Addr().String(), "dev", s.cfg.Dev, "stores", "postgres+redis",
			"postgres_schema", s.cfg.PostgresSchema, "redis_prefix", s.cfg.RedisPrefix)
	} else {
		s.log.Info("gatehouse listening", "url", scheme+"://"+s.ln.Addr().String(), "dev", s.cfg.Dev, "data_dir", s.cfg.DataDir)
	}
	if !s.cfg.Dev && s.cfg.TLSCert == "" {
		s.log.Info("serving plain HTTP with Secure cookies: put a TLS-terminating proxy in front (see docs/operations.md)")
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLSCert != "" {
			err = s.http.ServeTLS(s.ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = s.http.Serve(s.ln)
		}
		errc <- err
	}()
	purge := time.NewTicker(time.Minute)
	defer purge.Stop()
	// Keys rotated or removed by the CLI (another process) or by another
	// instance whose notice was lost are picked up within this interval,
	// well inside the publish delay.
	reload := time.NewTicker(keyReloadInterval)
	defer reload.Stop()
	var keysChanged <-chan struct{} // nil on SQLite: never ready
	if s.cluster != nil {
		keysChanged = s.cluster.keysChanged
	}
	for {
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serve: %w", err)
		case <-purge.C:
			s.housekeeping(ctx)
		case <-reload.C:
			if err := s.tokens.Ring.Reload(ctx); err != nil {
				s.log.Error("reload signing keys", "error", err)
			}
		case <-keysChanged:
			if err := s.tokens.Ring.Reload(ctx); err != nil {
				s.log.Error("reload signing keys on notice", "error", err)
			}
		case <-ctx.Done():
			s.log.Info("shutting down", "delay", s.cfg.ShutdownDelay.String(), "timeout", s.cfg.ShutdownTimeout.String())
			s.api.SetShuttingDown()
			// Keep serving while load balancers notice /readyz answering 503.
			if s.cfg.ShutdownDelay > 0 {
				t := time.NewTimer(s.cfg.ShutdownDelay)
				<-t.C
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
			defer cancel()
			if err := s.http.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			s.log.Info("stopped")
			return nil
		}
	}
}

// keyReloadInterval is how often the key ring is re-read from the store,
// whatever the notices say.
const keyReloadInterval = 10 * time.Second

// housekeeping runs once a minute: purge what has expired, and rotate the
// signing key when it is due.
func (s *Server) housekeeping(ctx context.Context) {
	s.st.purge(ctx, s.log)
	if _, err := s.tokens.Revocations.Purge(ctx); err != nil {
		s.log.Warn("purge revocation index", "error", err)
	}
	if s.cfg.KeyRotationInterval > 0 {
		kid, signsFrom, err := s.tokens.Ring.RotateIfOlderThan(ctx, s.cfg.KeyRotationInterval)
		if err != nil {
			s.log.Error("scheduled key rotation", "error", err)
		} else if kid != "" {
			s.log.Info("signing key rotated on schedule", "kid", kid, "signs_from", signsFrom)
			if s.cluster != nil {
				s.cluster.keysNotice(ctx)
			}
		}
	}
}

// buildPages puts the end-user pages (and in --dev the lab) in front of the
// API; every request the pages do not serve goes to the API unchanged.
func buildPages(cfg *config.Config, log *slog.Logger, st *stores, c clock.Clock, labClock *clock.Offset, tokens *httpapi.TokenConfig, api *httpapi.Server, cl *cluster) (http.Handler, error) {
	apiHandler := api.Handler()
	if cl != nil {
		apiHandler = cl.guardFeed(apiHandler)
	}
	var lab *web.LabConfig
	if cfg.Dev && labClock != nil {
		aud := cfg.Audience
		if aud == "" {
			aud = tokens.IssuerURL
		}
		// The verifier of a service that trusts the JWKS alone: the lab
		// shows what it accepts that Gatehouse refuses.
		jwksOnly, err := token.NewVerifier(tokens.Ring, token.VerifierConfig{
			Issuer: tokens.IssuerURL, Audience: aud, Leeway: cfg.Leeway, Clock: c, UnsafeSkipRevocation: true,
		})
		if err != nil {
			return nil, err
		}
		lab = &web.LabConfig{
			AdminKey:    api.AdminKey(),
			Now:         labClock.Now,
			Advance:     labClock.Advance,
			JWKSOnly:    jwksOnly.Verify,
			Snapshot:    web.StoreSnapshot(st.accounts, st.sessions, st.refresh, st.revocations),
			LatestBench: latestBench(cfg),
		}
	}
	return web.New(web.Config{API: apiHandler, Dev: cfg.Dev, Signup: cfg.Signup, Logger: log, Lab: lab})
}

// latestBench loads the latest "gatehouse bench" result: from bench's
// default output directory (./bench-out, when the server was started where
// bench ran) or from <data-dir>/bench, whichever is newer.
func latestBench(cfg *config.Config) func() any {
	dirs := []string{bench.DefaultOut, filepath.Join(cfg.DataDir, "bench")}
	return func() any {
		var latest *bench.Result
		for _, d := range dirs {
			if r, err := bench.Load(d); err == nil && (latest == nil || r.Timestamp.After(latest.Timestamp)) {
				latest = r
			}
		}
		if latest == nil {
			return nil
		}
		return latest
	}
}
