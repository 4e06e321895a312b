// Package config builds Gatehouse's configuration from, in increasing order
// of precedence: built-in defaults, an optional YAML file (--config), the
// environment (GATEHOUSE_<FLAG_NAME>), and command-line flags. Every setting
// is a flag; its environment variable and config-file key are derived from
// the flag name (--session-idle-timeout, GATEHOUSE_SESSION_IDLE_TIMEOUT,
// session-idle-timeout:). All three sources go through the same parser, so
// a value means the same wherever it is written. Validate refuses
// contradictory or unsafe settings with a message that says what to change.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix is the prefix of Gatehouse's environment variables.
const EnvPrefix = "GATEHOUSE_"

// Config is the whole configuration. The zero value is not useful: start
// from Default.
type Config struct {
	// Addr is the listen address.
	Addr string
	// DataDir holds the SQLite database and, in dev mode, generated keys.
	DataDir string
	// Dev is developer mode: plain HTTP cookies (no Secure, no prefixes),
	// text logs, no key publish delay.
	Dev bool
	// DevAllowRemote allows Dev on a non-loopback address.
	DevAllowRemote bool
	// Signup allows self-service registration (POST /v1/users).
	Signup bool

	SessionIdleTimeout     time.Duration
	SessionAbsoluteTimeout time.Duration

	// AdminKey is the admin credential for the admin endpoints; empty
	// disables it. AdminKeyFile reads it from a file instead.
	AdminKey     string
	AdminKeyFile string

	TrustedProxies []netip.Prefix
	TrustedOrigins []string

	Argon2Memory        uint32 // KiB
	Argon2Time          uint32
	Argon2Threads       uint8
	MaxConcurrentHashes int

	// LoginMaxFailures is the most failed logins per account per hour;
	// LoginMaxFailuresPerIP the same per client address.
	LoginMaxFailures      int
	LoginMaxFailuresPerIP int

	LogLevel  string
	LogFormat string

	ShutdownTimeout time.Duration
	// ShutdownDelay keeps serving after SIGTERM, with /readyz answering
	// 503, so that load balancers stop sending requests first.
	ShutdownDelay time.Duration
	TLSCert       string
	TLSKey        string

	// Token mode.

	// Issuer is the access tokens' iss and the base URL of the discovery
	// document. Required outside --dev (where it is http://<addr>).
	Issuer string
	// Audience is the access tokens' aud; default: the issuer.
	Audience string
	// SigningAlg is EdDSA (default), ES256 or RS256.
	SigningAlg string
	// KEK is the base64 32-byte key-encryption key of the signing keys;
	// KEKFile reads it from a file. In --dev without either, a KEK file is
	// generated in the data directory.
	KEK     string
	KEKFile string
	// Lifetimes of access and refresh tokens.
	AccessTokenLifetime     time.Duration
	RefreshIdleLifetime     time.Duration
	RefreshAbsoluteLifetime time.Duration
	// RefreshGrace is the parallel-refresh grace period (0 turns it off).
	RefreshGrace time.Duration
	// Leeway is the clock leeway of token verification (at most 60s).
	Leeway time.Duration
	// KeyPublishDelay is how long a new key is published before it signs.
	KeyPublishDelay time.Duration
	// KeyRotationInterval rotates the signing key on a schedule; 0 never.
	KeyRotationInterval time.Duration
	// ServiceKey (or ServiceKeyFile) is the credential of introspection.
	ServiceKey     string
	ServiceKeyFile string
	// ForwardTokenAudience, when set, makes /v1/verify mint an
	// X-Gatehouse-Token for upstreams with this audience and
	// ForwardTokenLifetime.
	ForwardTokenAudience string
	ForwardTokenLifetime time.Duration

	// Several instances.

	// Postgres (a postgres:// URL or key=value connection string) and
	// Redis (a redis://, rediss://, redis+cluster:// or redis+sentinel://
	// URL) together select the deployment of several instances: users,
	// refresh families, signing keys and audit events in PostgreSQL;
	// sessions, revocations and login throttling in Redis. Neither means
	// the SQLite file under DataDir; one without the other is refused.
	// Both may hold a password: prefer the environment to a flag.
	Postgres string
	Redis    string
	// PostgresSchema is the schema of Gatehouse's tables, created when
	// missing; empty keeps the connection's search_path (normally public).
	PostgresSchema string
	// RedisPrefix starts every Redis key and channel, so that several
	// deployments can share one Redis. Every instance of a deployment uses
	// the same prefix.
	RedisPrefix string
	// RevocationStaleAfter bounds how old the revocation state of an
	// instance may be: when the instance cannot show that it has received
	// every revocation made more than this long ago (Redis unreachable, a
	// lost subscription), it refuses access tokens (fail closed) and
	// /readyz answers 503 until it has caught up.
	RevocationStaleAfter time.Duration
}

// Distributed reports whether c selects PostgreSQL and Redis (several
// instances) rather than SQLite.
func (c *Config) Distributed() bool { return c.Postgres != "" && c.Redis != "" }

// Default returns the documented defaults.
func Default() Config {
	return Config{
		Addr:                   "127.0.0.1:8080",
		DataDir:                "./gatehouse-data",
		Signup:                 true,
		SessionIdleTimeout:     30 * time.Minute,
		SessionAbsoluteTimeout: 12 * time.Hour,
		Argon2Memory:           19456,
		Argon2Time:             2,
		Argon2Threads:          1,
		LoginMaxFailures:       100,
		LoginMaxFailuresPerIP:  1000,
		LogLevel:               "info",
		LogFormat:              "json",
		ShutdownTimeout:        15 * time.Second,

		SigningAlg:              "EdDSA",
		AccessTokenLifetime:     10 * time.Minute,
		RefreshIdleLifetime:     14 * 24 * time.Hour,
		RefreshAbsoluteLifetime: 30 * 24 * time.Hour,
		RefreshGrace:            10 * time.Second,
		Leeway:                  30 * time.Second,
		KeyPublishDelay:         5 * time.Minute,
		KeyRotationInterval:     30 * 24 * time.Hour,
		ForwardTokenLifetime:    time.Minute,

		RedisPrefix:          "gh:",
		RevocationStaleAfter: time.Second,
	}
}

// Flags registers every setting of c on fs, with c's current values as the
// defaults shown in -help.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (host:port)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the SQLite database and dev-mode keys")
	fs.BoolVar(&c.Dev, "dev", c.Dev, "developer mode: plain-HTTP cookies without Secure or __Host- prefix, text logs; loopback only")
	fs.BoolVar(&c.DevAllowRemote, "dev-allow-remote", c.DevAllowRemote, "allow --dev on a non-loopback address (unsafe)")
	fs.BoolVar(&c.Signup, "signup", c.Signup, "allow self-service sign-up (POST /v1/users)")
	fs.DurationVar(&c.SessionIdleTimeout, "session-idle-timeout", c.SessionIdleTimeout, "end a session unused for this long")
	fs.DurationVar(&c.SessionAbsoluteTimeout, "session-absolute-timeout", c.SessionAbsoluteTimeout, "end a session this long after login")
	fs.StringVar(&c.AdminKey, "admin-key", c.AdminKey, "admin credential (Authorization: Bearer <key>, at least 32 characters); prefer --admin-key-file or the environment")
	fs.StringVar(&c.AdminKeyFile, "admin-key-file", c.AdminKeyFile, "read the admin key from this file")
	fs.Var(prefixList{&c.TrustedProxies}, "trusted-proxies", "comma-separated CIDRs of proxies whose X-Forwarded-For is trusted")
	fs.Var(stringList{&c.TrustedOrigins}, "trusted-origins", "comma-separated origins allowed to make cross-origin unsafe requests")
	fs.Var(uint32Value{&c.Argon2Memory}, "argon2-memory", "Argon2id memory in KiB (at least 19456)")
	fs.Var(uint32Value{&c.Argon2Time}, "argon2-time", "Argon2id iterations (at least 2)")
	fs.Var(uint8Value{&c.Argon2Threads}, "argon2-threads", "Argon2id parallelism")
	fs.IntVar(&c.MaxConcurrentHashes, "max-concurrent-hashes", c.MaxConcurrentHashes, "password hashes computed at once; 0 means max(2, number of CPUs)")
	fs.IntVar(&c.LoginMaxFailures, "login-max-failures", c.LoginMaxFailures, "failed logins allowed per account per hour (1 to 100)")
	fs.IntVar(&c.LoginMaxFailuresPerIP, "login-max-failures-per-ip", c.LoginMaxFailuresPerIP, "failed logins allowed per client address per hour")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (text is the default in --dev)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to drain requests on SIGTERM")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", c.ShutdownDelay, "on SIGTERM, keep serving this long with /readyz at 503 before draining (give load balancers time)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "serve HTTPS with this certificate file")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "the key file for --tls-cert")

	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "access tokens' iss and the discovery base URL (required outside --dev)")
	fs.StringVar(&c.Audience, "audience", c.Audience, "access tokens' aud (default: the issuer)")
	fs.StringVar(&c.SigningAlg, "signing-alg", c.SigningAlg, "signing algorithm: EdDSA, ES256 or RS256")
	fs.StringVar(&c.KEK, "kek", c.KEK, "base64 32-byte key-encryption key of the signing keys; prefer --kek-file or the environment")
	fs.StringVar(&c.KEKFile, "kek-file", c.KEKFile, "read the key-encryption key from this file (generated in the data directory in --dev)")
	fs.DurationVar(&c.AccessTokenLifetime, "access-token-lifetime", c.AccessTokenLifetime, "access token lifetime")
	fs.DurationVar(&c.RefreshIdleLifetime, "refresh-idle-lifetime", c.RefreshIdleLifetime, "refresh token idle lifetime")
	fs.DurationVar(&c.RefreshAbsoluteLifetime, "refresh-absolute-lifetime", c.RefreshAbsoluteLifetime, "refresh family absolute lifetime")
	fs.DurationVar(&c.RefreshGrace, "refresh-grace", c.RefreshGrace, "grace period for parallel refreshes of one token (0 disables)")
	fs.DurationVar(&c.Leeway, "leeway", c.Leeway, "clock leeway for exp, nbf and iat (at most 60s)")
	fs.DurationVar(&c.KeyPublishDelay, "key-publish-delay", c.KeyPublishDelay, "how long a new signing key is published before it signs (0 in --dev)")
	fs.DurationVar(&c.KeyRotationInterval, "key-rotation-interval", c.KeyRotationInterval, "rotate the signing key when it is this old (0 disables)")
	fs.StringVar(&c.ServiceKey, "service-key", c.ServiceKey, "credential of the introspection endpoint and the revocation feed (at least 32 characters)")
	fs.StringVar(&c.ServiceKeyFile, "service-key-file", c.ServiceKeyFile, "read the service key from this file")
	fs.StringVar(&c.ForwardTokenAudience, "forward-token-audience", c.ForwardTokenAudience, "when set, /v1/verify adds X-Gatehouse-Token for this audience")
	fs.DurationVar(&c.ForwardTokenLifetime, "forward-token-lifetime", c.ForwardTokenLifetime, "lifetime of X-Gatehouse-Token")

	fs.StringVar(&c.Postgres, "postgres", c.Postgres, "PostgreSQL URL; with --redis, run as one of several instances on PostgreSQL and Redis instead of SQLite (prefer the environment: the URL may hold a password)")
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis URL (redis://, rediss://, redis+cluster://, redis+sentinel://); goes with --postgres")
	fs.StringVar(&c.PostgresSchema, "postgres-schema", c.PostgresSchema, "PostgreSQL schema of Gatehouse's tables, created when missing (default: the connection's search_path)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", c.RedisPrefix, "prefix of every Redis key and channel; the same on every instance of a deployment")
	fs.DurationVar(&c.RevocationStaleAfter, "revocation-stale-after", c.RevocationStaleAfter, "with Redis: refuse access tokens and fail /readyz while this instance cannot show it has every revocation older than this")
}

// Load parses args into c, honouring the precedence defaults < file < env <
// flags. getenv is os.Getenv in production. It returns flag.ErrHelp when
// -h was asked for.
func Load(fs *flag.FlagSet, c *Config, args []string, getenv func(string) string) error {
	var configPath string
	fs.StringVar(&configPath, "config", "", "YAML config file (keys are flag names)")
	c.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags take the form --name value or --name=value; boolean flags --name=false)", fs.Arg(0))
	}
	explicit := map[string]string{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = f.Value.String() })
	if p, ok := explicit["config"]; ok {
		configPath = p
	} else if v := getenv(EnvPrefix + "CONFIG"); v != "" {
		configPath = v
	}
	if configPath != "" {
		if err := applyFile(fs, configPath); err != nil {
			return err
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || envErr != nil {
			return
		}
		name := EnvName(f.Name)
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment variable %s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	// Flags given on the command line win over the file and the environment.
	for name, v := range explicit {
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("flag -%s: %w", name, err)
		}
	}
	return nil
}

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func applyFile(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var m map[string]yaml.Node
	if err := yaml.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("config file %s: unknown setting %q (settings are the flag names, see -help)", path, k)
		}
		n := m[k]
		var v string
		switch n.Kind {
		case yaml.ScalarNode:
			v = n.Value
		case yaml.SequenceNode:
			var items []string
			for _, it := range n.Content {
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("config file %s: setting %q: list items must be plain values", path, k)
				}
				items = append(items, it.Value)
			}
			v = strings.Join(items, ",")
		default:
			return fmt.Errorf("config file %s: setting %q must be a plain value or a list", path, k)
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("config file %s: setting %q: %w", path, k, err)
		}
	}
	return nil
}

// Validate completes c (the admin key file, mode-dependent defaults) and
// refuses contradictory or unsafe settings.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		bad("--addr %q is not host:port: %v", c.Addr, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("--addr %q has an invalid port", c.Addr)
	} else if c.Dev && !c.DevAllowRemote && !isLoopback(host) {
		bad("--dev on the non-loopback address %q: dev mode sends session cookies without Secure over plain HTTP; listen on 127.0.0.1, or add --dev-allow-remote if you really mean it", c.Addr)
	}
	if c.DataDir == "" {
		bad("--data-dir must not be empty")
	}
	if c.SessionIdleTimeout <= 0 || c.SessionAbsoluteTimeout <= 0 {
		bad("--session-idle-timeout and --session-absolute-timeout must be positive")
	} else if c.SessionIdleTimeout > c.SessionAbsoluteTimeout {
		bad("--session-idle-timeout (%s) is longer than --session-absolute-timeout (%s)", c.SessionIdleTimeout, c.SessionAbsoluteTimeout)
	} else if c.SessionIdleTimeout < 2*time.Minute {
		bad("--session-idle-timeout must be at least 2m")
	}
	if c.AdminKey != "" && c.AdminKeyFile != "" {
		bad("--admin-key and --admin-key-file are both set; use one")
	}
	if c.AdminKeyFile != "" {
		b, err := os.ReadFile(c.AdminKeyFile)
		if err != nil {
			bad("--admin-key-file: %v", err)
		} else {
			c.AdminKey = strings.TrimSpace(string(b))
		}
	}
	if c.AdminKey != "" && len(c.AdminKey) < 32 {
		bad("the admin key must be at least 32 characters (for example: openssl rand -base64 32)")
	}
	if c.Argon2Memory < 19456 || c.Argon2Time < 2 || c.Argon2Threads < 1 {
		bad("Argon2id parameters below OWASP's minimum (m=19456 KiB, t=2, p=1) are refused")
	}
	if c.MaxConcurrentHashes < 0 {
		bad("--max-concurrent-hashes must not be negative")
	}
	if c.LoginMaxFailures < 1 || c.LoginMaxFailures > 100 {
		bad("--login-max-failures must be from 1 to 100")
	}
	if c.LoginMaxFailuresPerIP < 1 {
		bad("--login-max-failures-per-ip must be at least 1")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level must be debug, info, warn or error")
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("--log-format must be json or text")
	}
	if c.ShutdownTimeout <= 0 {
		bad("--shutdown-timeout must be positive")
	}
	if c.ShutdownDelay < 0 || c.ShutdownDelay > 5*time.Minute {
		bad("--shutdown-delay must be from 0 to 5m")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("--tls-cert and --tls-key go together")
	}
	if c.DataDir != "" {
		c.DataDir = filepath.Clean(c.DataDir)
	}
	c.validateTokens(bad)
	c.validateStores(bad)
	return errors.Join(errs...)
}

// schemaName is the form of --postgres-schema (as the PostgreSQL backend
// accepts it).
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// redisSchemes are the URL schemes the Redis backend reads.
var redisSchemes = []string{"redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel"}

// validateStores checks the settings of several instances. Its messages
// never quote a URL: it may hold a password.
func (c *Config) validateStores(bad func(string, ...any)) {
	switch {
	case c.Postgres != "" && c.Redis == "":
		bad("--postgres is set without --redis: several instances need both (PostgreSQL for users, refresh families, keys and audit; Redis for sessions, revocations and login throttling); set neither to use SQLite")
	case c.Redis != "" && c.Postgres == "":
		bad("--redis is set without --postgres: several instances need both (PostgreSQL for users, refresh families, keys and audit; Redis for sessions, revocations and login throttling); set neither to use SQLite")
	}
	if c.Redis != "" {
		scheme, _, ok := strings.Cut(c.Redis, "://")
		if !ok || !slices.Contains(redisSchemes, scheme) {
			bad("--redis must be a URL with the scheme redis, rediss, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel")
		}
	}
	if c.Postgres != "" && strings.Contains(c.Postgres, "://") {
		scheme, _, _ := strings.Cut(c.Postgres, "://")
		if scheme != "postgres" && scheme != "postgresql" {
			bad("--postgres must be a postgres:// or postgresql:// URL, or a key=value connection string")
		}
	}
	if c.PostgresSchema != "" && !schemaName.MatchString(c.PostgresSchema) {
		bad("--postgres-schema %q must be a lower-case SQL identifier (a-z, 0-9 and _, not starting with a digit, at most 63 bytes)", c.PostgresSchema)
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{}") || len(c.RedisPrefix) > 64 {
		bad("--redis-prefix must be 1 to 64 characters without '{' or '}' (they would change the keys' Redis Cluster slots)")
	}
	if c.RevocationStaleAfter < 100*time.Millisecond || c.RevocationStaleAfter > time.Minute {
		bad("--revocation-stale-after must be from 100ms to 1m")
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// DatabasePath is the SQLite file under the data directory.
func (c *Config) DatabasePath() string { return filepath.Join(c.DataDir, "gatehouse.db") }

type stringList struct{ p *[]string }

func (l stringList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l stringList) Set(v string) error {
	*l.p = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.p = append(*l.p, s)
		}
	}
	return nil
}

type prefixList struct{ p *[]netip.Prefix }

func (l prefixList) String() string {
	if l.p == nil {
		return ""
	}
	s := make([]string, len(*l.p))
	for i, p := range *l.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l prefixList) Set(v string) error {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("%q is not an address or CIDR", s)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR", s)
		}
		out = append(out, p.Masked())
	}
	*l.p = out
	return nil
}

type uint32Value struct{ p *uint32 }

func (u uint32Value) String() string {
	if u.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*u.p), 10)
}

func (u uint32Value) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return errors.New("must be a whole number")
	}
	*u.p = uint32(n)
	return nil
}

type uint8Value struct{ p *uint8 }

func (u uint8Value) String() string {
	if u.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*u.p), 10)
}

func (u uint8Value) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 8)
	if err != nil {
		return errors.New("must be a whole number from 0 to 255")
	}
	*u.p = uint8(n)
	return nil
}

// ValidateServe adds the checks that only serving needs: outside --dev, the
// issuer and the key-encryption key are required.
func (c *Config) ValidateServe() error {
	var errs []error
	if c.Issuer == "" && !c.Dev {
		errs = append(errs, errors.New("--issuer is required outside --dev (the public base URL, e.g. https://auth.example.com)"))
	}
	if c.KEK == "" && c.KEKFile == "" && !c.Dev {
		errs = append(errs, errors.New("--kek or --kek-file is required outside --dev (generate one with: openssl rand -base64 32)"))
	} else if c.KEK == "" && c.KEKFile == "" && c.Distributed() {
		errs = append(errs, errors.New("--kek or --kek-file is required with --postgres, --dev included: every instance must use the same key-encryption key, and one generated in the data directory would differ per instance (generate one with: openssl rand -base64 32)"))
	}
	return errors.Join(errs...)
}

func (c *Config) validateTokens(bad func(string, ...any)) {
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("--issuer %q must be an absolute http(s) URL without query or fragment", c.Issuer)
		} else if u.Scheme == "http" && !c.Dev {
			bad("--issuer %q must use https outside --dev", c.Issuer)
		}
	}
	switch c.SigningAlg {
	case "EdDSA", "ES256", "RS256":
	default:
		bad("--signing-alg must be EdDSA, ES256 or RS256")
	}
	if c.KEK != "" && c.KEKFile != "" {
		bad("--kek and --kek-file are both set; use one")
	}
	if c.AccessTokenLifetime < time.Minute || c.AccessTokenLifetime > 24*time.Hour {
		bad("--access-token-lifetime must be from 1m to 24h")
	}
	if c.RefreshIdleLifetime <= 0 || c.RefreshAbsoluteLifetime <= 0 || c.RefreshIdleLifetime > c.RefreshAbsoluteLifetime {
		bad("--refresh-idle-lifetime must be positive and at most --refresh-absolute-lifetime")
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > time.Minute {
		bad("--refresh-grace must be from 0 to 1m")
	}
	if c.Leeway < time.Second || c.Leeway > time.Minute {
		bad("--leeway must be from 1s to 60s")
	}
	if c.KeyPublishDelay < 0 {
		bad("--key-publish-delay must not be negative")
	}
	if c.KeyRotationInterval != 0 && c.KeyRotationInterval < time.Hour {
		bad("--key-rotation-interval must be 0 (off) or at least 1h")
	}
	if c.ServiceKey != "" && c.ServiceKeyFile != "" {
		bad("--service-key and --service-key-file are both set; use one")
	}
	if c.ServiceKeyFile != "" {
		b, err := os.ReadFile(c.ServiceKeyFile)
		if err != nil {
			bad("--service-key-file: %v", err)
		} else {
			c.ServiceKey = strings.TrimSpace(string(b))
		}
	}
	if c.ServiceKey != "" && len(c.ServiceKey) < 32 {
		bad("the service key must be at least 32 characters")
	}
	if c.ServiceKey != "" && c.ServiceKey == c.AdminKey {
		bad("the service key and the admin key must differ")
	}
	aud := c.Audience
	if aud == "" {
		aud = c.Issuer // the default audience (in --dev, the listen URL)
	}
	if c.ForwardTokenAudience != "" && c.ForwardTokenAudience == aud {
		bad("--forward-token-audience must differ from the access tokens' audience, or upstream tokens would be accepted as access tokens")
	}
	if c.ForwardTokenLifetime <= 0 || c.ForwardTokenLifetime > c.AccessTokenLifetime {
		bad("--forward-token-lifetime must be positive and at most --access-token-lifetime")
	}
}
