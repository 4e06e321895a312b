package testenv

import (
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	const url = "postgres://postgres@127.0.0.1:5432/test"
	tests := []struct {
		name      string
		env       map[string]string
		wantValue string
		wantFail  bool
		wantSkip  bool
	}{
		{name: "set", env: map[string]string{PostgresVar: url}, wantValue: url},
		{name: "set in CI", env: map[string]string{PostgresVar: url, "CI": "true"}, wantValue: url},
		{name: "unset: skipped", env: map[string]string{}, wantSkip: true},
		{name: "empty: skipped", env: map[string]string{PostgresVar: ""}, wantSkip: true},
		{name: "unset in CI: fails", env: map[string]string{"CI": "true"}, wantFail: true},
		{name: "unset in CI=1: fails", env: map[string]string{"CI": "1"}, wantFail: true},
		{name: "unset, CI=false: skipped", env: map[string]string{"CI": "false"}, wantSkip: true},
		{name: "unset, CI not a boolean: skipped", env: map[string]string{"CI": "maybe"}, wantSkip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value, fail, skip := decide(func(k string) string { return tt.env[k] }, PostgresVar, "PostgreSQL")
			if value != tt.wantValue || (fail != "") != tt.wantFail || (skip != "") != tt.wantSkip {
				t.Fatalf("decide = %q, fail %q, skip %q; want %q, fail %v, skip %v",
					value, fail, skip, tt.wantValue, tt.wantFail, tt.wantSkip)
			}
			for _, msg := range []string{fail, skip} {
				if msg != "" && !strings.HasPrefix(msg, PostgresVar+" is not set: ") {
					t.Errorf("message %q does not name the variable", msg)
				}
			}
		})
	}
}

func TestSkipMessage(t *testing.T) {
	_, _, skip := decide(func(string) string { return "" }, PostgresVar, "PostgreSQL")
	if want := "GATEHOUSE_TEST_POSTGRES_URL is not set: skipping the PostgreSQL backend tests"; skip != want {
		t.Errorf("skip message %q, want %q", skip, want)
	}
}

// TestNeedSkips checks that need skips the test it is given, without
// failing it, when the variable is unset outside CI.
func TestNeedSkips(t *testing.T) {
	var sub *testing.T
	t.Run("unset", func(t *testing.T) {
		sub = t
		need(t, func(string) string { return "" }, RedisVar, "Redis")
		t.Error("need returned although the variable is unset")
	})
	if !sub.Skipped() {
		t.Error("the test was not skipped")
	}
	if got := need(t, func(k string) string { return k + "-value" }, RedisVar, "Redis"); got != RedisVar+"-value" {
		t.Errorf("need = %q, want the variable's value", got)
	}
}
