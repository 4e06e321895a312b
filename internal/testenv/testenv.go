// Package testenv tells tests where the real servers they need are: the
// PostgreSQL and Redis backends are tested against real servers, never
// mocks, reached through an environment variable each.
//
// The rule is the same for every such test: when the variable is unset, the
// test is skipped with a message on a developer's machine, and fails in CI
// (the environment variable CI set to true), where a skipped backend would
// pass unnoticed.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The environment variables that hold the servers' URLs.
const (
	// PostgresVar holds a postgres:// URL of a database the tests may
	// create and drop schemas in.
	PostgresVar = "GATEHOUSE_TEST_POSTGRES_URL"
	// RedisVar holds a redis:// URL of a server the tests may write keys to.
	RedisVar = "GATEHOUSE_TEST_REDIS_URL"
)

// Postgres returns the URL in GATEHOUSE_TEST_POSTGRES_URL. When it is unset,
// it skips the test, or fails it in CI.
func Postgres(t testing.TB) string {
	t.Helper()
	return need(t, os.Getenv, PostgresVar, "PostgreSQL")
}

// Redis returns the URL in GATEHOUSE_TEST_REDIS_URL. When it is unset, it
// skips the test, or fails it in CI.
func Redis(t testing.TB) string {
	t.Helper()
	return need(t, os.Getenv, RedisVar, "Redis")
}

// PostgresSchema returns the URL of Postgres and the name of a new, empty
// schema in its database (gh_test_ and 16 random hex digits), which it
// drops, with everything in it, when the test ends. Each test that gets one
// is isolated from every other, in this package or another running at the
// same time. Open the backend with the schema's name (postgres.Options).
func PostgresSchema(t testing.TB) (url, schema string) {
	t.Helper()
	url = Postgres(t)
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random schema name: %v", err)
	}
	schema = "gh_test_" + hex.EncodeToString(b)
	ident := pgx.Identifier{schema}.Sanitize()
	exec(t, url, "CREATE SCHEMA "+ident)
	t.Cleanup(func() { exec(t, url, "DROP SCHEMA "+ident+" CASCADE") })
	return url, schema
}

// exec runs one statement on a connection of its own.
func exec(t testing.TB, url, sql string) {
	t.Helper()
	// Not t.Context(): it is done by the time cleanups run.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("testenv: connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("testenv: %s: %v", sql, err)
	}
}

// need returns the value of the variable name, read with getenv. When it is
// empty, it fails the test in CI and skips it elsewhere.
func need(t testing.TB, getenv func(string) string, name, server string) string {
	t.Helper()
	v, fail, skip := decide(getenv, name, server)
	switch {
	case fail != "":
		t.Fatal(fail)
	case skip != "":
		t.Skip(skip)
	}
	return v
}

// decide returns the value of the variable name, or why the test fails (in
// CI) or is skipped (elsewhere) without it.
func decide(getenv func(string) string, name, server string) (value, fail, skip string) {
	if v := getenv(name); v != "" {
		return v, "", ""
	}
	if ci, err := strconv.ParseBool(getenv("CI")); err == nil && ci {
		return "", name + " is not set: CI must run the " + server + " backend tests", ""
	}
	return "", "", name + " is not set: skipping the " + server + " backend tests"
}
