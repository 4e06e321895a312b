// Command microservice is a service that trusts a separate Gatehouse
// server, without embedding it: it checks the Bearer access tokens of its
// callers with package verify, which fetches the server's signing keys
// (discovery document and JWKS) and follows its revocation feed, so that a
// token revoked on the server (a logout, a forced logout, RFC 7009
// revocation) is refused here within milliseconds, not at its expiry.
//
//	go run ./cmd/gatehouse serve --dev --service-key-file service.key
//	go run ./examples/microservice --gatehouse http://127.0.0.1:8080 --service-key-file service.key
//
// It has one endpoint, GET /hello: 200 {"subject": "<user id>"} for a
// valid token; 401 for none or a bad, expired or revoked one; 400 for an
// Authorization header that is not one Bearer credential; 503 when the
// revocation feed has been cut off for longer than --max-staleness (it
// fails closed: it cannot know what was revoked). See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-auth/gatehouse/token"
	"github.com/gatehouse-auth/gatehouse/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "microservice:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program: it serves until ctx ends. It prints
// "listening on http://ADDR" on stdout once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("microservice", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "127.0.0.1:8083", "listen address (host:port)")
	issuer := fl.String("gatehouse", "", "the Gatehouse server's issuer URL, exactly as its tokens' iss (in --dev: http://<its --addr>)")
	audience := fl.String("audience", "", "the aud the tokens must carry (default: the issuer, Gatehouse's default audience)")
	keyFile := fl.String("service-key-file", "", "file holding the server's service key (its --service-key), for the revocation feed; mode 0600")
	maxStale := fl.Duration("max-staleness", verify.DefaultMaxStaleness, "refuse tokens (503) when the revocation feed has been cut off for longer than this")
	logLevel := fl.String("log-level", "info", "debug, info, warn or error (debug logs why each token was refused)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	if *issuer == "" || *keyFile == "" {
		return errors.New("--gatehouse and --service-key-file are required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	key, err := readServiceKey(*keyFile)
	if err != nil {
		return err
	}
	aud := *audience
	if aud == "" {
		aud = *issuer
	}

	// New fetches the discovery document and the JWKS and takes a first
	// snapshot of the revocations: it fails when the server cannot be
	// reached or refuses the service key.
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	v, err := verify.New(nctx, verify.Config{
		Issuer:       *issuer,
		Audience:     aud,
		ServiceKey:   key,
		MaxStaleness: *maxStale,
		Logger:       log,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("trust %s: %w", *issuer, err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /hello", hello(v, log))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("microservice", "gatehouse", *issuer, "audience", aud)
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

// readServiceKey reads the service key from path. Like Gatehouse's
// --kek-file, the file must not be readable by group or others.
func readServiceKey(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--service-key-file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("--service-key-file %s is readable by group or others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--service-key-file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("--service-key-file %s is empty", path)
	}
	return key, nil
}

// hello answers GET /hello with the subject of the caller's access token.
func hello(v *verify.Verifier, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := bearer(r.Header)
		switch {
		case errors.Is(err, errNoCredential):
			refuse(w, http.StatusUnauthorized, "Bearer", "An access token is required.")
			return
		case err != nil:
			refuse(w, http.StatusBadRequest, `Bearer error="invalid_request"`, "Send one Authorization: Bearer header.")
			return
		}
		claims, err := v.Verify(r.Context(), raw)
		switch {
		case err == nil:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(map[string]string{"subject": claims.Subject})
		case errors.Is(err, verify.ErrStale):
			// The token may be fine, but what was revoked since the feed
			// was cut off is unknown: refuse for now, not for good.
			w.Header().Set("Retry-After", "5")
			refuse(w, http.StatusServiceUnavailable, "", "Token revocations cannot be checked right now.")
		case errors.Is(err, token.ErrInvalidToken), errors.Is(err, token.ErrExpired), errors.Is(err, token.ErrRevoked):
			log.Debug("token refused", "reason", token.Reason(err))
			refuse(w, http.StatusUnauthorized, `Bearer error="invalid_token"`, "The access token is invalid, expired or revoked.")
		default:
			log.Error("verify a token", "error", err)
			refuse(w, http.StatusInternalServerError, "", "Internal error.")
		}
	})
}

// refuse answers an RFC 9457 problem with an optional WWW-Authenticate
// challenge.
func refuse(w http.ResponseWriter, status int, challenge, detail string) {
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}

var (
	errNoCredential = errors.New("no Authorization header")
	errMalformed    = errors.New("malformed Authorization header")
)

// bearer returns the token of the request's one Authorization header,
// "Bearer <token>" (the scheme in any case, RFC 9110), where the token is
// an RFC 6750 b64token. It returns errNoCredential without the header, and
// errMalformed for anything else: two headers, another scheme, a token
// with other characters.
func bearer(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", errNoCredential
	case 1:
	default:
		return "", errMalformed
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !b64token(tok) {
		return "", errMalformed
	}
	return tok, nil
}

// b64token reports whether s is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~"
// / "+" / "/" ) *"=".
func b64token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}
