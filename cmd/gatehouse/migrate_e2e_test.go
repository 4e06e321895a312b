package main

// End-to-end test of `gatehouse migrate`: a server on SQLite makes a user,
// a session, refresh families and a revocation; it stops; the binary copies
// its file to PostgreSQL and Redis; a server on PostgreSQL and Redis then
// serves the same credentials. See e2e_helpers_test.go for the helpers.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/internal/testenv"
)

// migRandom returns n random bytes.
func migRandom(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// migRedisPrefix returns a new Redis key prefix whose keys are deleted when
// the test ends.
func migRedisPrefix(t *testing.T, redisURL string) string {
	t.Helper()
	prefix := "ghtest:mig-e2e:" + hex.EncodeToString(migRandom(t, 8)) + ":"
	t.Cleanup(func() {
		opts, err := redis.ParseURL(redisURL)
		if err != nil {
			t.Errorf("parse Redis URL: %v", err)
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx := context.Background()
		var keys []string
		it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if err := it.Err(); err != nil {
			t.Errorf("scan test keys: %v", err)
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
			}
		}
	})
	return prefix
}

// migFileSum returns the SHA-256 of the file at path.
func migFileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// migRow matches the table row of kind with the numbers of the columns
// SOURCE SKIPPED COPIED PRESENT DEST and the status.
func migRow(kind, numbers, status string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(kind) + `\s+` +
		strings.Join(strings.Fields(numbers), `\s+`) + `\s+` + regexp.QuoteMeta(status) + `\s*$`)
}

func TestE2EMigrate(t *testing.T) {
	pgURL, schema := testenv.PostgresSchema(t)
	redisURL := testenv.Redis(t)
	prefix := migRedisPrefix(t, redisURL)
	// The servers before and after share the key-encryption key (the
	// signing key is copied sealed) and the issuer (so that access tokens
	// minted before the move verify after it). Grace 0: a rotated refresh
	// token presented again is reuse at once.
	common := []string{"--kek", base64.StdEncoding.EncodeToString(migRandom(t, 32)),
		"--issuer", "http://gatehouse.test", "--refresh-grace", "0s"}

	// 1. A single-node server on SQLite.
	dir := t.TempDir()
	s1 := tokStart(t, dir, common...)
	uid := s1.signup("mig-alice", e2ePassword)
	sess := s1.login("mig-alice", e2ePassword)
	first := s1.tokPassword("mig-alice", e2ePassword)
	rotated := tokPairFrom(t, "rotation before the move", s1.tokRefresh(first.refresh))
	denied := s1.tokPassword("mig-alice", e2ePassword)
	s1.tokRevoke("revoke an access token before the move", denied.access, "access_token")
	tokWantInvalidToken(t, "the revoked access token before the move", s1.tokBearer(denied.access, "GET", "/v1/me"))
	if code, _ := s1.signal(syscall.SIGTERM, exitTimeout); code != 0 {
		t.Fatalf("exit code after SIGTERM %d; stderr:\n%s", code, s1.stderr)
	}
	db := filepath.Join(dir, "gatehouse.db")
	sum := migFileSum(t, db)

	to := []string{"--postgres-schema", schema, "--redis-prefix", prefix}
	urls := []string{"--to-postgres", pgURL, "--to-redis", redisURL}

	// 2. A dry run writes nothing and says what it would copy.
	r := runCLI(t, "", nil, append(append([]string{"migrate", "--from", db, "--dry-run"}, urls...), to...)...)
	if r.code != 0 {
		t.Fatalf("migrate --dry-run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "TO COPY") || !migRow("users", "1 0 1 0 0", "dry run").MatchString(r.stdout) {
		t.Fatalf("migrate --dry-run table:\n%s", r.stdout)
	}

	// 3. The migration, with the URLs in the environment, as the
	// documentation recommends.
	env := []string{"GATEHOUSE_POSTGRES=" + pgURL, "GATEHOUSE_REDIS=" + redisURL}
	r = runCLI(t, "", env, append([]string{"migrate", "--from", db}, to...)...)
	if r.code != 0 {
		t.Fatalf("migrate: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("migrate:\n%s%s", r.stderr, r.stdout)
	for _, want := range []*regexp.Regexp{
		migRow("users", "1 0 1 0 1", "OK"),
		migRow("sessions", "1 0 1 0 1", "OK"),
		migRow("refresh families", "2 0 2 0 2", "OK"),
		migRow("refresh tokens", "3 0 3 0 3", "OK"), // the first family's two, the second's one
		migRow("signing keys", "1 0 1 0 1", "OK"),
		migRow("revocations", "1 0 1 0 1", "OK"), // the revoked access token's jti
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("the table lacks a row matching %s:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*audit events(\s+\d+){5}\s+OK\s*$`).MatchString(r.stdout) {
		t.Errorf("the table lacks an OK row of audit events:\n%s", r.stdout)
	}
	for _, want := range []string{"must be stopped", "100%", "Done:"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stdout+r.stderr, pgURL) || strings.Contains(r.stdout+r.stderr, redisURL) {
		t.Error("migrate printed a store URL (which may hold a password)")
	}

	// 4. Again: nothing is copied twice.
	r = runCLI(t, "", env, append([]string{"migrate", "--from", db}, to...)...)
	if r.code != 0 || !migRow("users", "1 0 0 1 1", "OK").MatchString(r.stdout) ||
		!migRow("refresh tokens", "3 0 0 3 3", "OK").MatchString(r.stdout) {
		t.Fatalf("second migrate: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if migFileSum(t, db) != sum {
		t.Fatal("migrate changed the SQLite file")
	}

	// 5. A server on PostgreSQL and Redis, in another data directory,
	// serves what the first one issued.
	s2 := tokStart(t, t.TempDir(), append(append(common, "--postgres", pgURL, "--redis", redisURL), to...)...)
	if !strings.Contains(s2.stderr.String(), "postgres+redis") {
		t.Fatalf("the second server does not run on PostgreSQL and Redis; stderr:\n%s", s2.stderr)
	}
	me := s2.as(sess, call{method: "GET", path: "/v1/me"}, false)
	wantStatus(t, "the session cookie after the move", me, http.StatusOK)
	if me.json(t)["id"] != uid {
		t.Fatalf("me after the move: %s", me.body)
	}
	wantStatus(t, "an access token of before the move", s2.tokBearer(rotated.access, "GET", "/v1/me"), http.StatusOK)
	tokWantInvalidToken(t, "the access token revoked before the move", s2.tokBearer(denied.access, "GET", "/v1/me"))
	next := tokPairFrom(t, "rotation after the move", s2.tokRefresh(rotated.refresh))
	wantStatus(t, "the access token minted after the move", s2.tokBearer(next.access, "GET", "/v1/me"), http.StatusOK)
	tokWantOAuthError(t, "reuse of a token rotated before the move", s2.tokRefresh(first.refresh), http.StatusBadRequest, "invalid_grant")
	s2.login("mig-alice", e2ePassword) // the password hash came along
	if ev := s2.tokAudit("user.created"); len(ev) != 1 || ev[0]["user_id"] != uid {
		t.Errorf("audit of the sign-up after the move: %v", ev)
	}

	// 6. Once the new deployment has moved on, migrating the old file
	// again is refused: the family ended by the reuse differs.
	r = runCLI(t, "", env, append([]string{"migrate", "--from", db}, to...)...)
	if r.code != 1 || !strings.Contains(r.stdout, "CONFLICT") || !strings.Contains(r.stderr, "different data") {
		t.Fatalf("migrate after the move: exit %d, want 1 with conflicts\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
