package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := Default()
	err := Load(fs, &c, args, func(k string) string { return env[k] })
	return c, err
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(file, []byte("addr: 127.0.0.1:1111\nsession-idle-timeout: 10m\ntrusted-proxies:\n  - 10.0.0.0/8\n  - 192.0.2.1\nsignup: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantIdle time.Duration
	}{
		{"defaults", nil, nil, "127.0.0.1:8080", 30 * time.Minute},
		{"file", []string{"--config", file}, nil, "127.0.0.1:1111", 10 * time.Minute},
		{"file named by env", nil, map[string]string{"GATEHOUSE_CONFIG": file}, "127.0.0.1:1111", 10 * time.Minute},
		{"env over file", []string{"--config", file}, map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:2222"}, "127.0.0.1:2222", 10 * time.Minute},
		{"flag over env and file", []string{"--config", file, "--addr", "127.0.0.1:3333"}, map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:2222"}, "127.0.0.1:3333", 10 * time.Minute},
		{"unrelated GATEHOUSE_ env is ignored", nil, map[string]string{"GATEHOUSE_TEST_POSTGRES_URL": "postgres://x"}, "127.0.0.1:8080", 30 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tc.wantAddr || c.SessionIdleTimeout != tc.wantIdle {
				t.Fatalf("addr %s idle %s, want %s %s", c.Addr, c.SessionIdleTimeout, tc.wantAddr, tc.wantIdle)
			}
		})
	}
	c, err := load(t, []string{"--config", file}, nil)
	if err != nil || c.Signup || len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "192.0.2.1/32" {
		t.Fatalf("file values: %+v %v", c, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("adress: 127.0.0.1:1\n"), 0o600)
	nested := filepath.Join(dir, "nested.yaml")
	os.WriteFile(nested, []byte("addr:\n  host: x\n"), 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown file key", []string{"--config", unknown}, nil, `unknown setting "adress"`},
		{"nested file value", []string{"--config", nested}, nil, "plain value"},
		{"missing file", []string{"--config", filepath.Join(dir, "none.yaml")}, nil, "config file"},
		{"bad env duration", nil, map[string]string{"GATEHOUSE_SESSION_IDLE_TIMEOUT": "soon"}, "GATEHOUSE_SESSION_IDLE_TIMEOUT"},
		{"bad CIDR", []string{"--trusted-proxies", "10.0.0.0/99"}, nil, "invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"dev on loopback", func(c *Config) { c.Dev = true }, ""},
		{"dev on localhost", func(c *Config) { c.Dev = true; c.Addr = "localhost:8080" }, ""},
		{"dev on all interfaces", func(c *Config) { c.Dev = true; c.Addr = "0.0.0.0:8080" }, "--dev-allow-remote"},
		{"dev on all interfaces, allowed", func(c *Config) { c.Dev = true; c.DevAllowRemote = true; c.Addr = "0.0.0.0:8080" }, ""},
		{"secure mode on all interfaces", func(c *Config) { c.Addr = ":8080" }, ""},
		{"idle longer than absolute", func(c *Config) { c.SessionIdleTimeout = 13 * time.Hour }, "longer than"},
		{"tiny idle timeout", func(c *Config) { c.SessionIdleTimeout = time.Second }, "at least 2m"},
		{"short admin key", func(c *Config) { c.AdminKey = "short" }, "at least 32"},
		{"weak argon2", func(c *Config) { c.Argon2Memory = 1024 }, "OWASP"},
		{"throttle above 100", func(c *Config) { c.LoginMaxFailures = 500 }, "1 to 100"},
		{"tls cert without key", func(c *Config) { c.TLSCert = "x.pem" }, "go together"},
		{"bad addr", func(c *Config) { c.Addr = "nope" }, "host:port"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "--log-level"},

		{"http issuer outside dev", func(c *Config) { c.Issuer = "http://auth.example.com" }, "https"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://a.example?x=1" }, "absolute"},
		{"the admin commands need neither issuer nor KEK", func(c *Config) { c.Issuer, c.KEK = "", "" }, ""},
		{"unknown alg", func(c *Config) { c.SigningAlg = "HS256" }, "--signing-alg"},
		{"leeway over 60s", func(c *Config) { c.Leeway = 2 * time.Minute }, "--leeway"},
		{"leeway zero", func(c *Config) { c.Leeway = 0 }, "--leeway"},
		{"forward audience equals the issuer", func(c *Config) { c.ForwardTokenAudience = c.Issuer }, "--forward-token-audience"},
		{"forward audience equals the audience", func(c *Config) { c.Audience = "api"; c.ForwardTokenAudience = "api" }, "--forward-token-audience"},
		{"forward audience equals the issuer but not the audience", func(c *Config) { c.Audience = "api"; c.ForwardTokenAudience = c.Issuer }, ""},
		{"grace over 1m", func(c *Config) { c.RefreshGrace = time.Hour }, "--refresh-grace"},
		{"refresh idle over absolute", func(c *Config) { c.RefreshIdleLifetime = 1000 * time.Hour }, "--refresh-idle-lifetime"},
		{"short service key", func(c *Config) { c.ServiceKey = "x" }, "service key"},
		{"service key equals admin key", func(c *Config) { c.ServiceKey = strings.Repeat("k", 32); c.AdminKey = c.ServiceKey }, "must differ"},

		{"postgres and redis", func(c *Config) { c.Postgres, c.Redis = pgURL, redisURL }, ""},
		{"postgres and redis in dev", func(c *Config) { c.Dev = true; c.Postgres, c.Redis = pgURL, redisURL }, ""},
		{"postgres key=value string", func(c *Config) { c.Postgres, c.Redis = "host=db user=gh dbname=gh", redisURL }, ""},
		{"redis cluster", func(c *Config) { c.Postgres, c.Redis = pgURL, "redis+cluster://r1:6379,r2:6379" }, ""},
		{"redis sentinel over TLS", func(c *Config) { c.Postgres, c.Redis = pgURL, "rediss+sentinel://s1:26379,s2:26379/mymaster" }, ""},
		{"postgres without redis", func(c *Config) { c.Postgres = pgURL }, "--postgres is set without --redis"},
		{"redis without postgres", func(c *Config) { c.Redis = redisURL }, "--redis is set without --postgres"},
		{"redis URL of another scheme", func(c *Config) { c.Postgres, c.Redis = pgURL, "http://cache:6379" }, "--redis must be a URL"},
		{"redis host without scheme", func(c *Config) { c.Postgres, c.Redis = pgURL, "cache:6379" }, "--redis must be a URL"},
		{"postgres URL of another scheme", func(c *Config) { c.Postgres, c.Redis = "mysql://db/gh", redisURL }, "--postgres must be"},
		{"schema", func(c *Config) { c.Postgres, c.Redis, c.PostgresSchema = pgURL, redisURL, "gatehouse_1" }, ""},
		{"schema with upper case", func(c *Config) { c.PostgresSchema = "Gatehouse" }, "--postgres-schema"},
		{"schema with a quote", func(c *Config) { c.PostgresSchema = `gh"; drop` }, "--postgres-schema"},
		{"schema of 64 bytes", func(c *Config) { c.PostgresSchema = strings.Repeat("s", 64) }, "--postgres-schema"},
		{"empty redis prefix", func(c *Config) { c.RedisPrefix = "" }, "--redis-prefix"},
		{"redis prefix with a brace", func(c *Config) { c.RedisPrefix = "gh{1}:" }, "--redis-prefix"},
		{"stale bound too short", func(c *Config) { c.RevocationStaleAfter = 10 * time.Millisecond }, "--revocation-stale-after"},
		{"stale bound too long", func(c *Config) { c.RevocationStaleAfter = time.Hour }, "--revocation-stale-after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Issuer, c.KEK = "https://auth.example.com", "a2V5"
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// URLs of the store cases, with passwords that no message may repeat.
const (
	pgURL    = "postgres://gh:pg-secret-password@db.internal:5432/gh?sslmode=verify-full"
	redisURL = "rediss://:redis-secret-password@cache.internal:6380/0"
)

func TestStoreMessagesHideURLs(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
	}{
		{"postgres alone", func(c *Config) { c.Postgres = pgURL }},
		{"redis alone", func(c *Config) { c.Redis = redisURL }},
		{"bad redis scheme", func(c *Config) { c.Postgres, c.Redis = pgURL, "redis-x://:redis-secret-password@h" }},
		{"bad postgres scheme", func(c *Config) { c.Postgres, c.Redis = "pg://u:pg-secret-password@h/db", redisURL }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "secret-password") {
				t.Fatalf("the message repeats a password: %v", err)
			}
		})
	}
}

func TestStoreSettingsSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.yaml")
	yml := "postgres: postgres://file@db/gh\nredis: redis://file:6379/0\npostgres-schema: from_file\nredis-prefix: \"file:\"\nrevocation-stale-after: 2s\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name            string
		args            []string
		env             map[string]string
		postgres, redis string
		schema, prefix  string
		stale           time.Duration
		distributed     bool
	}{
		{"defaults: SQLite", nil, nil, "", "", "", "gh:", time.Second, false},
		{"file", []string{"--config", file}, nil, "postgres://file@db/gh", "redis://file:6379/0", "from_file", "file:", 2 * time.Second, true},
		{"environment", nil, map[string]string{
			"GATEHOUSE_POSTGRES": "postgres://env@db/gh", "GATEHOUSE_REDIS": "redis://env:6379/0",
			"GATEHOUSE_POSTGRES_SCHEMA": "from_env", "GATEHOUSE_REDIS_PREFIX": "env:", "GATEHOUSE_REVOCATION_STALE_AFTER": "500ms",
		}, "postgres://env@db/gh", "redis://env:6379/0", "from_env", "env:", 500 * time.Millisecond, true},
		{"flags over the environment", []string{"--postgres", "postgres://flag@db/gh", "--redis-prefix", "flag:"},
			map[string]string{"GATEHOUSE_POSTGRES": "postgres://env@db/gh", "GATEHOUSE_REDIS": "redis://env:6379/0"},
			"postgres://flag@db/gh", "redis://env:6379/0", "", "flag:", time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Postgres != tc.postgres || c.Redis != tc.redis || c.PostgresSchema != tc.schema ||
				c.RedisPrefix != tc.prefix || c.RevocationStaleAfter != tc.stale || c.Distributed() != tc.distributed {
				t.Fatalf("got %q %q %q %q %v distributed=%v", c.Postgres, c.Redis, c.PostgresSchema, c.RedisPrefix, c.RevocationStaleAfter, c.Distributed())
			}
		})
	}
}

func TestAdminKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	os.WriteFile(p, []byte("  0123456789abcdef0123456789abcdef-key \n"), 0o600)
	c := Default()
	c.Dev = true
	c.AdminKeyFile = p
	if err := c.Validate(); err != nil || c.AdminKey != "0123456789abcdef0123456789abcdef-key" {
		t.Fatalf("%q %v", c.AdminKey, err)
	}
	c = Default()
	c.Dev = true
	c.AdminKeyFile, c.AdminKey = p, strings.Repeat("k", 32)
	if err := c.Validate(); err == nil {
		t.Fatal("both admin key and file accepted")
	}
}

func TestValidateServe(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"issuer and KEK", func(c *Config) { c.Issuer, c.KEK = "https://a.example", "a2V5" }, ""},
		{"KEK file", func(c *Config) { c.Issuer, c.KEKFile = "https://a.example", "/etc/kek" }, ""},
		{"no issuer outside dev", func(c *Config) { c.KEK = "a2V5" }, "--issuer is required"},
		{"no KEK outside dev", func(c *Config) { c.Issuer = "https://a.example" }, "--kek"},
		{"dev needs neither", func(c *Config) { c.Dev = true }, ""},
		{"several instances with a KEK", func(c *Config) { c.Issuer, c.KEK, c.Postgres, c.Redis = "https://a.example", "a2V5", pgURL, redisURL }, ""},
		{"several instances in dev with a KEK file", func(c *Config) { c.Dev, c.KEKFile, c.Postgres, c.Redis = true, "/etc/kek", pgURL, redisURL }, ""},
		{"several instances in dev without a KEK", func(c *Config) { c.Dev, c.Postgres, c.Redis = true, pgURL, redisURL }, "every instance must use the same key-encryption key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.ValidateServe()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
