// Package verify verifies Gatehouse access tokens in a service that trusts a
// Gatehouse server without embedding it: it needs nothing but the server's
// URL, and, for revocation, its service key. It imports no storage backend
// and no server code.
//
// A Verifier makes exactly the server's checks (it delegates to
// token.Verifier): the signature by a key of the server's JWKS, the
// algorithm from the key, typ, iss, aud, exp, nbf, iat, jti, sid, and
// revocation, against a local copy of the server's revocations that it
// keeps current by following the server's revocation feed
// (GET /v1/revocations, a long poll; see docs/feed.md). A token revoked on
// the server is refused here typically within milliseconds.
//
// # Keys
//
// New reads the discovery document (<issuer>/.well-known/openid-configuration,
// whose issuer must equal the configured one exactly) and fetches its
// jwks_uri; it fails if either fails. The JWKS is fetched again every 5
// minutes, or sooner when its Cache-Control max-age says so (not under 10 s),
// and on demand when a token names a kid the cache does not know: at most
// one such refresh per JWKSMinRefresh, and one fetch for any number of
// callers waiting on it. A failed refresh keeps the cached keys, so a server
// that is briefly unreachable does not stop verification. Keys are read
// strictly: only EdDSA (Ed25519), ES256 (P-256) and RS256 (2048 to 8192
// bits) public keys with use "sig", whose kid is their RFC 7638
// thumbprint; keys of other algorithms are skipped, and a document holding
// a private member is refused whole (docs/feed.md has the details).
//
// # Revocation and staleness
//
// The feed follower holds the server's live revocations in a
// revocation.Index. Every successful poll proves the copy current; when the
// last one is older than MaxStaleness (the feed is cut off: the server is
// down, the network partitioned, the service key refused), Verify refuses
// every otherwise valid token with ErrStale, a sentinel of its own, neither
// token.ErrRevoked nor token.ErrInvalidToken: the token may be fine, but its
// revocation status is unknown. Callers typically answer 503 to it, not
// 401. UnsafeFailOpen accepts such tokens instead, on the last known
// revocations. When the feed comes back, the follower resumes from its
// cursor, or takes a full snapshot when the server restarted or its change
// log moved past the cursor, and Verify works again.
//
// Without a service key there is no feed and revocation is not consulted at
// all: a revoked token is accepted until it expires. New refuses that unless
// UnsafeNoRevocationFeed says so.
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/jws"
	"github.com/gatehouse-auth/gatehouse/token"
)

// Defaults of Config.
const (
	// DefaultMaxStaleness is how long the feed may be cut off before Verify
	// fails closed.
	DefaultMaxStaleness = 30 * time.Second
	// MinMaxStaleness is the smallest MaxStaleness accepted: the follower
	// long-polls for half of it, so a smaller one would poll in a loop.
	MinMaxStaleness = 100 * time.Millisecond
	// DefaultJWKSMinRefresh is the default least time between two JWKS
	// refreshes caused by unknown kids.
	DefaultJWKSMinRefresh = 30 * time.Second
)

// ErrStale is returned (wrapped) by Verify for a token that passes every
// other check while the revocation feed has been cut off for longer than
// MaxStaleness: whether the token was revoked is unknown, so it is not
// accepted. It is not token.ErrRevoked.
var ErrStale = errors.New("verify: revocation feed is stale")

// Config configures a Verifier. Issuer and Audience are required, and so is
// either ServiceKey or UnsafeNoRevocationFeed.
type Config struct {
	// Issuer is the Gatehouse server's issuer: its base URL, exactly as the
	// tokens' iss claim and its discovery document's issuer spell it.
	Issuer string
	// Audience is the aud the tokens must carry.
	Audience string
	// ServiceKey is the server's service key, which the revocation feed
	// requires. It is sent to Issuer only; it never appears in logs.
	ServiceKey string
	// UnsafeNoRevocationFeed verifies without a service key and without
	// revocation: a revoked token is accepted until it expires. It must be
	// set when ServiceKey is empty, and only then.
	UnsafeNoRevocationFeed bool
	// UnsafeFailOpen accepts tokens on the last known revocations when the
	// feed has been cut off for longer than MaxStaleness, instead of
	// refusing them with ErrStale.
	UnsafeFailOpen bool
	// HTTPClient makes the requests to the server. The default refuses
	// redirects. A client with a Timeout must allow the long poll: at
	// least min(25 s, MaxStaleness/2) plus 10 s.
	HTTPClient *http.Client
	// Leeway is the clock leeway for exp, nbf and iat (default
	// token.DefaultLeeway, at most token.MaxLeeway).
	Leeway time.Duration
	// MaxStaleness is how long the feed may be cut off before Verify fails
	// closed with ErrStale (default DefaultMaxStaleness, at least
	// MinMaxStaleness). The follower long-polls for half of it (at most
	// 25 s), so a healthy feed answers well within it.
	MaxStaleness time.Duration
	// JWKSMinRefresh is the least time between two JWKS refreshes caused by
	// a token with an unknown kid (default DefaultJWKSMinRefresh).
	JWKSMinRefresh time.Duration
	// Clock tells the time for the token checks, staleness and refresh
	// limits; nil is the system clock.
	Clock clock.Clock
	// Logger receives the follower's and the key cache's warnings; nil is
	// slog.Default().
	Logger *slog.Logger
}

// Verifier verifies a Gatehouse server's access tokens. It is safe for
// concurrent use. Create it with New; Close stops its background work.
type Verifier struct {
	tv   *token.Verifier
	keys *keyCache
	feed *follower // nil without a feed

	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New discovers the server of cfg.Issuer, fetches its JWKS and, with a
// service key, takes a first snapshot of its revocations, all within ctx,
// and returns a Verifier that keeps them current in the background. It
// fails when any of that fails, or when cfg is invalid or contradictory.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxStaleness == 0 {
		cfg.MaxStaleness = DefaultMaxStaleness
	}
	if cfg.JWKSMinRefresh == 0 {
		cfg.JWKSMinRefresh = DefaultJWKSMinRefresh
	}
	wait := min(maxWait, (cfg.MaxStaleness / 2).Truncate(time.Millisecond))
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	} else if client.Timeout > 0 && client.Timeout < wait+pollGrace && cfg.ServiceKey != "" {
		return nil, fmt.Errorf("verify: HTTPClient.Timeout %v is shorter than the long poll (%v plus %v)", client.Timeout, wait, pollGrace)
	}

	jwksURI, err := discover(ctx, client, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	keys := &keyCache{client: client, uri: jwksURI, clock: cfg.Clock, minRefresh: cfg.JWKSMinRefresh, log: cfg.Logger}
	period, err := keys.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	vc := token.VerifierConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway, Clock: cfg.Clock}
	var f *follower
	if cfg.ServiceKey != "" {
		f = &follower{
			client: client, url: strings.TrimRight(cfg.Issuer, "/") + "/v1/revocations", key: cfg.ServiceKey,
			clock: cfg.Clock, log: cfg.Logger, maxStale: cfg.MaxStaleness, failOpen: cfg.UnsafeFailOpen, wait: wait,
		}
		if err := f.poll(ctx, 0); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		vc.Revocation = f
	} else {
		vc.UnsafeSkipRevocation = true
	}
	tv, err := token.NewVerifier(keys, vc)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	v := &Verifier{tv: tv, keys: keys, feed: f, stop: stop}
	retry := min(max(cfg.JWKSMinRefresh, time.Second), jwksPeriod)
	v.wg.Go(func() { keys.run(bg, period, retry) })
	if f != nil {
		v.wg.Go(func() { f.run(bg) })
	}
	return v, nil
}

// validate checks what New needs and refuses contradictions.
func (c *Config) validate() error {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return errors.New("verify: Issuer is required")
	case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("verify: Issuer %q is not an http or https base URL", c.Issuer)
	case c.Audience == "":
		return errors.New("verify: Audience is required")
	case c.ServiceKey == "" && !c.UnsafeNoRevocationFeed:
		return errors.New("verify: ServiceKey is required for the revocation feed (set UnsafeNoRevocationFeed to verify without revocation)")
	case c.ServiceKey != "" && c.UnsafeNoRevocationFeed:
		return errors.New("verify: UnsafeNoRevocationFeed set together with a ServiceKey")
	case c.UnsafeFailOpen && c.ServiceKey == "":
		return errors.New("verify: UnsafeFailOpen needs the revocation feed (a ServiceKey)")
	case c.MaxStaleness < 0 || c.MaxStaleness > 0 && c.MaxStaleness < MinMaxStaleness:
		return fmt.Errorf("verify: MaxStaleness %v is below the minimum %v", c.MaxStaleness, MinMaxStaleness)
	case c.JWKSMinRefresh < 0:
		return errors.New("verify: negative JWKSMinRefresh")
	}
	return nil
}

// Verify verifies the access token raw, as the server would, and returns
// its claims. A refused token is token.ErrInvalidToken, token.ErrExpired or
// token.ErrRevoked (errors.Is), and a token whose revocation status is
// unknown because the feed is stale is ErrStale; token.Reason tells a log
// which check failed. A token signed by a key the cache does not know yet
// triggers a JWKS refresh (rate-limited) and is verified again.
func (v *Verifier) Verify(ctx context.Context, raw string) (*token.Claims, error) {
	keysBefore := v.keys.keys.Load()
	c, err := v.tv.Verify(ctx, raw)
	if err == nil || !errors.Is(err, token.ErrInvalidToken) {
		return c, err
	}
	// Refused as invalid: is it signed by a key published since the keys
	// it was checked with were fetched? (They may have been refreshed
	// since by another caller: then refreshFor answers at once.)
	tok, perr := jws.Parse(raw)
	if perr != nil {
		return nil, err
	}
	if _, known := (*keysBefore)[tok.Header.Kid]; known || !v.keys.refreshFor(ctx, tok.Header.Kid) {
		return nil, err
	}
	return v.tv.Verify(ctx, raw)
}

// Close stops the feed follower and the periodic JWKS refresh and waits
// for them. Afterwards Verify still answers from what it has: with a feed,
// every valid token is ErrStale once MaxStaleness has passed (unless
// UnsafeFailOpen). Close always returns nil.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		v.stop()
		v.wg.Wait()
	})
	return nil
}
