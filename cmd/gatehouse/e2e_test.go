package main

// End-to-end tests: the real gatehouse binary, started as a child process,
// driven over real HTTP and through its CLI. See e2e_helpers_test.go.

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const e2ePassword = "correct horse battery staple"

// TestE2ESessionFlow walks the session lifecycle of the spec over HTTP:
// sign-up, login, the session endpoints, CSRF, logout, a cross-origin
// refusal, an admin forced logout and the audit trail.
func TestE2ESessionFlow(t *testing.T) {
	s := startServer(t, t.TempDir(), "--admin-key", e2eAdminKey)
	uid := s.signup("Alice", e2ePassword)

	// Fetch Metadata: a cross-site login is refused before any password
	// check, and sets no cookie.
	cross := s.do(call{method: "POST", path: "/v1/sessions", body: credJSON("alice", e2ePassword),
		headers: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	wantProblem(t, "cross-site login", cross, http.StatusForbidden, "csrf")
	if cross.cookie("gh_session") != nil {
		t.Fatal("a refused cross-site login set a cookie")
	}

	r := s.do(call{method: "POST", path: "/v1/sessions", body: credJSON("ALICE", e2ePassword),
		headers: map[string]string{"User-Agent": "e2e-agent/1.0"}})
	wantStatus(t, "login", r, http.StatusCreated)
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("login Cache-Control %q, want no-store", cc)
	}
	c := r.cookie("gh_session")
	if c == nil {
		t.Fatalf("login set no gh_session cookie: %v", r.header.Values("Set-Cookie"))
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.Domain != "" || c.MaxAge <= 0 {
		t.Fatalf("dev session cookie attributes: %q", r.header.Get("Set-Cookie"))
	}
	if strings.Contains(strings.ToLower(r.header.Get("Set-Cookie")), "secure") {
		t.Fatalf("dev cookie has Secure: %q", r.header.Get("Set-Cookie"))
	}
	l := loginFrom(t, r)
	if l.userID != uid || r.json(t)["user"].(map[string]any)["username"] != "alice" {
		t.Fatalf("login user: %s", r.body)
	}
	if strings.Contains(string(r.body), c.Value) || l.sessionID == c.Value {
		t.Fatal("the login body reveals the cookie secret")
	}

	me := s.as(l, call{method: "GET", path: "/v1/me"}, false)
	wantStatus(t, "me", me, http.StatusOK)
	if auth, _ := me.json(t)["auth"].(map[string]any); auth["mode"] != "session" || me.json(t)["id"] != uid {
		t.Fatalf("me: %s", me.body)
	}
	cur := s.as(l, call{method: "GET", path: "/v1/sessions/current"}, false)
	wantStatus(t, "current session", cur, http.StatusOK)
	if cur.json(t)["csrf_token"] != l.csrf || cur.json(t)["session"].(map[string]any)["id"] != l.sessionID {
		t.Fatalf("current session: %s", cur.body)
	}
	list := s.as(l, call{method: "GET", path: "/v1/sessions"}, false)
	wantStatus(t, "list sessions", list, http.StatusOK)
	ss, _ := list.json(t)["sessions"].([]any)
	if len(ss) != 1 {
		t.Fatalf("list sessions: %s", list.body)
	}
	if d := ss[0].(map[string]any); d["current"] != true || d["id"] != l.sessionID || d["user_agent"] != "e2e-agent/1.0" || d["ip"] != "127.0.0.1" {
		t.Fatalf("list sessions: %s", list.body)
	}

	// Unsafe requests by cookie: cross-site, without and with a wrong CSRF
	// token are refused, and the session survives them.
	refusals := []struct {
		name    string
		headers map[string]string
	}{
		{"cross-site with the right token", map[string]string{"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": l.csrf}},
		{"cross-origin Origin with the right token", map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": l.csrf}},
		{"no token", nil},
		{"wrong token", map[string]string{"X-CSRF-Token": strings.Repeat("A", len(l.csrf))}},
		{"empty token", map[string]string{"X-CSRF-Token": ""}},
	}
	for _, tc := range refusals {
		r := s.as(l, call{method: "DELETE", path: "/v1/sessions/current", headers: tc.headers}, false)
		wantProblem(t, "logout, "+tc.name, r, http.StatusForbidden, "csrf")
	}
	wantStatus(t, "me after refused logouts", s.as(l, call{method: "GET", path: "/v1/me"}, false), http.StatusOK)

	out := s.as(l, call{method: "DELETE", path: "/v1/sessions/current"}, true)
	wantStatus(t, "logout", out, http.StatusNoContent)
	if cl := out.cookie("gh_session"); cl == nil || cl.Value != "" || !strings.Contains(out.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout did not clear the cookie: %v", out.header.Values("Set-Cookie"))
	}
	after := s.as(l, call{method: "GET", path: "/v1/me"}, false)
	wantProblem(t, "me after logout", after, http.StatusUnauthorized, "unauthorized")
	if got := after.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("me after logout: WWW-Authenticate %q", got)
	}
	none := s.do(call{method: "GET", path: "/v1/me"})
	wantProblem(t, "me without a credential", none, http.StatusUnauthorized, "unauthorized")
	if got := none.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Fatalf("me without a credential: WWW-Authenticate %q", got)
	}

	// Forced logout by the admin key ends every session of the user.
	l2 := s.login("alice", e2ePassword)
	l3 := s.login("alice", e2ePassword)
	for name, c := range map[string]call{
		"no key":    {method: "POST", path: "/v1/admin/users/" + uid + "/logout"},
		"wrong key": {method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + strings.Repeat("x", len(e2eAdminKey))}},
	} {
		if r := s.do(c); r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
			t.Fatalf("forced logout with %s: status %d, want 401 or 403; body: %s", name, r.status, r.body)
		}
	}
	if r := s.as(l2, call{method: "POST", path: "/v1/admin/users/" + uid + "/logout"}, true); r.status != http.StatusForbidden {
		t.Fatalf("forced logout by a non-admin session: status %d, want 403", r.status)
	}
	wantStatus(t, "me before forced logout", s.as(l2, call{method: "GET", path: "/v1/me"}, false), http.StatusOK)
	wantProblem(t, "forced logout of an unknown user", s.do(adminCall(call{method: "POST", path: "/v1/admin/users/no-such-user/logout"})), http.StatusNotFound, "not_found")
	wantStatus(t, "forced logout", s.do(adminCall(call{method: "POST", path: "/v1/admin/users/" + uid + "/logout"})), http.StatusNoContent)
	for i, l := range []login{l2, l3} {
		r := s.as(l, call{method: "GET", path: "/v1/me"}, false)
		wantProblem(t, fmt.Sprintf("session %d after forced logout", i+2), r, http.StatusUnauthorized, "unauthorized")
	}

	// The audit trail has the story, newest first.
	wantStatus(t, "audit without the key", s.do(call{method: "GET", path: "/v1/admin/audit"}), http.StatusUnauthorized)
	au := s.do(adminCall(call{method: "GET", path: "/v1/admin/audit?user_id=" + uid + "&limit=1000"}))
	wantStatus(t, "audit", au, http.StatusOK)
	events, _ := au.json(t)["events"].([]any)
	var types []string
	for _, e := range events {
		ev := e.(map[string]any)
		if ev["user_id"] != uid {
			t.Fatalf("audit filtered by user returned %v", ev)
		}
		types = append(types, ev["type"].(string))
	}
	for _, want := range []string{"user.created", "login.success", "session.created", "csrf.refused", "logout", "session.revoked", "user.forced_logout"} {
		if !slices.Contains(types, want) {
			t.Errorf("audit of the user lacks %q: %v", want, types)
		}
	}
	if len(types) > 0 && types[0] != "user.forced_logout" {
		t.Errorf("newest audit event %q, want user.forced_logout (newest first): %v", types[0], types)
	}
	co := s.do(adminCall(call{method: "GET", path: "/v1/admin/audit?type=csrf.refused"}))
	wantStatus(t, "audit of CSRF refusals", co, http.StatusOK)
	if !strings.Contains(string(co.body), `"reason":"cross_origin"`) {
		t.Errorf("audit lacks the cross-origin refusal: %s", co.body)
	}
}

// TestE2ERestart stops the server with SIGTERM and starts another process
// on the same data directory: the sessions live in SQLite and survive.
func TestE2ERestart(t *testing.T) {
	dir := t.TempDir()
	s1 := startServer(t, dir, "--shutdown-timeout", "5s")
	s1.signup("bob", e2ePassword)
	l := s1.login("bob", e2ePassword)
	wantStatus(t, "me before restart", s1.as(l, call{method: "GET", path: "/v1/me"}, false), http.StatusOK)

	code, took := s1.signal(syscall.SIGTERM, 5*time.Second+exitTimeout)
	t.Logf("SIGTERM to exit: %s", took)
	if code != 0 {
		t.Fatalf("exit code after SIGTERM %d, want 0; stderr:\n%s", code, s1.stderr)
	}
	if took > 5*time.Second+2*time.Second {
		t.Errorf("exit took %s, more than the 5s shutdown timeout", took)
	}
	for _, want := range []string{"msg=\"shutting down\"", "msg=stopped"} {
		if !strings.Contains(s1.stderr.String(), want) {
			t.Errorf("stderr lacks %s:\n%s", want, s1.stderr)
		}
	}

	s2 := startServer(t, dir)
	me := s2.as(l, call{method: "GET", path: "/v1/me"}, false)
	wantStatus(t, "me after restart", me, http.StatusOK)
	if me.json(t)["id"] != l.userID {
		t.Fatalf("me after restart: %s", me.body)
	}
	cur := s2.as(l, call{method: "GET", path: "/v1/sessions/current"}, false)
	wantStatus(t, "current after restart", cur, http.StatusOK)
	if cur.json(t)["csrf_token"] != l.csrf {
		t.Fatal("the CSRF token changed across the restart")
	}
	wantStatus(t, "logout after restart", s2.as(l, call{method: "DELETE", path: "/v1/sessions/current"}, true), http.StatusNoContent)
	wantStatus(t, "me after logout", s2.as(l, call{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized)
}

// TestE2ECLI drives the user commands on a data directory, also while a
// server runs on it.
func TestE2ECLI(t *testing.T) {
	dir := t.TempDir()
	// --dev: outside it every command, the user commands included, wants
	// the token settings (--issuer, --kek) of a production server.
	data := []string{"--dev", "--data-dir", dir}

	v := runCLI(t, "", nil, "version")
	if v.code != 0 || !strings.HasPrefix(v.stdout, "gatehouse ") || len(strings.TrimSpace(v.stdout)) <= len("gatehouse") {
		t.Fatalf("version: code %d, stdout %q, stderr %q", v.code, v.stdout, v.stderr)
	}

	created := runCLI(t, e2ePassword+"\n", nil, append([]string{"user", "create", "--username", "Admin", "--role", "admin"}, data...)...)
	if created.code != 0 || !strings.Contains(created.stdout, "created user admin") {
		t.Fatalf("user create: code %d, stdout %q, stderr %q", created.code, created.stdout, created.stderr)
	}
	if strings.Contains(created.stdout+created.stderr, e2ePassword) {
		t.Fatal("user create echoed the password")
	}

	refusals := []struct {
		name, stdin string
		args        []string
		wantInErr   string
	}{
		{"password too short", "short\n", []string{"user", "create", "--username", "bob"}, "at least 8 characters"},
		{"empty stdin", "", []string{"user", "create", "--username", "bob"}, "stdin is empty"},
		{"no username", e2ePassword + "\n", []string{"user", "create"}, "--username is required"},
		{"name taken after normalisation", e2ePassword + "\n", []string{"user", "create", "--username", "ADMIN"}, "taken"},
		{"roles of an unknown user", "", []string{"user", "roles", "--username", "nobody", "--set", "ops"}, `no user "nobody"`},
		{"unknown subcommand", "", []string{"user", "delete"}, "unknown command"},
	}
	for _, tc := range refusals {
		r := runCLI(t, tc.stdin, nil, append(tc.args, data...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.wantInErr) {
			t.Errorf("%s: code %d, stderr %q; want a non-zero exit and %q", tc.name, r.code, r.stderr, tc.wantInErr)
		}
	}

	row := func(list string, name string) []string {
		for _, line := range strings.Split(list, "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[1] == name {
				return f
			}
		}
		return nil
	}
	list := runCLI(t, "", nil, append([]string{"user", "list"}, data...)...)
	if list.code != 0 {
		t.Fatalf("user list: code %d, stderr %q", list.code, list.stderr)
	}
	if f := row(list.stdout, "admin"); f == nil || f[2] != "admin" {
		t.Fatalf("user list does not show admin with role admin:\n%s", list.stdout)
	}
	if row(list.stdout, "bob") != nil {
		t.Fatalf("a refused user create left a user:\n%s", list.stdout)
	}

	// The CLI and a server share the database: the admin logs in, reaches
	// an admin endpoint, and loses it when the CLI changes the roles.
	s := startServer(t, dir)
	l := s.login("admin", e2ePassword)
	wantStatus(t, "audit as admin", s.as(l, call{method: "GET", path: "/v1/admin/audit"}, false), http.StatusOK)

	roles := runCLI(t, "", nil, append([]string{"user", "roles", "--username", "admin", "--set", "ops"}, data...)...)
	if roles.code != 0 || !strings.Contains(roles.stdout, "roles of admin: ops") {
		t.Fatalf("user roles: code %d, stdout %q, stderr %q", roles.code, roles.stdout, roles.stderr)
	}
	list = runCLI(t, "", nil, append([]string{"user", "list"}, data...)...)
	if f := row(list.stdout, "admin"); f == nil || f[2] != "ops" {
		t.Fatalf("user list after roles --set ops:\n%s", list.stdout)
	}
	// The server caches users for up to a second (account.Config
	// UserCacheTTL): a change by another process shows within that bound.
	changed := time.Now()
	for {
		r := s.as(l, call{method: "GET", path: "/v1/admin/audit"}, false)
		if r.status == http.StatusForbidden {
			wantProblem(t, "audit after losing admin", r, http.StatusForbidden, "forbidden")
			t.Logf("the server saw the CLI's role change after %s", time.Since(changed).Round(time.Millisecond))
			break
		}
		wantStatus(t, "audit before the change shows", r, http.StatusOK)
		if time.Since(changed) > 5*time.Second {
			t.Fatal("the server still grants the admin role 5s after the CLI removed it")
		}
		wait := time.NewTimer(50 * time.Millisecond)
		<-wait.C
	}
	me := s.as(l, call{method: "GET", path: "/v1/me"}, false)
	if rs, _ := me.json(t)["roles"].([]any); len(rs) != 1 || rs[0] != "ops" {
		t.Fatalf("me roles after the CLI change: %s", me.body)
	}
}

// TestE2ERefusedConfiguration checks that unsafe or contradictory settings
// stop the server at once with a message that names the setting, and that
// the environment and the flags take effect in the documented order.
func TestE2ERefusedConfiguration(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgFile, []byte("addr: 127.0.0.1:0\nbogus-key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--data-dir", filepath.Join(dir, "data")}
	cases := []struct {
		name      string
		env       []string
		args      []string
		wantInErr []string
	}{
		{"dev on all interfaces", nil, []string{"--dev", "--addr", "0.0.0.0:0"}, []string{"--dev-allow-remote"}},
		{"dev on all interfaces from the environment", []string{"GATEHOUSE_ADDR=0.0.0.0:0", "GATEHOUSE_DEV=true"}, nil, []string{"--dev-allow-remote"}},
		{"idle timeout above absolute", nil, []string{"--dev", "--addr", "127.0.0.1:0", "--session-idle-timeout", "24h"}, []string{"--session-idle-timeout", "--session-absolute-timeout"}},
		{"unknown key in the config file", nil, []string{"--dev", "--config", cfgFile}, []string{`unknown setting "bogus-key"`}},
		{"short admin key", nil, []string{"--dev", "--addr", "127.0.0.1:0", "--admin-key", "too-short"}, []string{"at least 32 characters"}},
		{"weak Argon2id", nil, []string{"--dev", "--addr", "127.0.0.1:0", "--argon2-memory", "1024"}, []string{"Argon2id"}},
		{"unknown flag", nil, []string{"--dev", "--no-such-flag"}, []string{"no-such-flag"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := runCLI(t, "", tc.env, append(slices.Clone(base), tc.args...)...)
			took := time.Since(start)
			if r.code == 0 {
				t.Fatalf("exit code 0, want non-zero; stderr:\n%s", r.stderr)
			}
			for _, want := range tc.wantInErr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "gatehouse listening") {
				t.Errorf("the server started:\n%s", r.stderr)
			}
			if took > 10*time.Second {
				t.Errorf("refusal took %s", took)
			}
		})
	}

	t.Run("GATEHOUSE_ADDR is honoured", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s, err := launch(t, cleanEnv("GATEHOUSE_ADDR="+addr), "serve", "--dev", "--data-dir", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if s.url != "http://"+addr {
			t.Fatalf("listening on %s, want http://%s from GATEHOUSE_ADDR", s.url, addr)
		}
	})
	t.Run("a flag overrides GATEHOUSE_ADDR", func(t *testing.T) {
		// Were the environment to win, --dev on 0.0.0.0 would be refused.
		s, err := launch(t, cleanEnv("GATEHOUSE_ADDR=0.0.0.0:0"), "serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s.url, "http://127.0.0.1:") {
			t.Fatalf("listening on %s, want 127.0.0.1 from --addr", s.url)
		}
	})
}

// TestE2ENoSecretsInLogs runs a flow full of canaries (passwords right and
// wrong, the admin key, a cookie secret, CSRF tokens, a bearer token) at the
// debug log level, and greps the whole stderr for each.
func TestE2ENoSecretsInLogs(t *testing.T) {
	canary := func(what string) string { return "cnry-" + what + "-" + rand.Text() }
	var (
		pw1       = canary("pw1")
		pw2       = canary("pw2")
		wrongPW   = canary("wrong")
		adminKey  = canary("adminkey")
		wrongKey  = canary("wrongkey")
		bearer    = canary("bearer")
		wrongCSRF = canary("csrf")
		query     = canary("query")
		shortPW   = "Qz" + rand.Text()[:5] // 7 characters: refused by the policy
	)
	dir := t.TempDir()
	s := startServer(t, dir, "--log-level", "debug", "--admin-key", adminKey, "--shutdown-timeout", "5s")

	uid := s.signup("carol", pw1)
	wantStatus(t, "signup with a short password", s.do(call{method: "POST", path: "/v1/users", body: credJSON("dave", shortPW)}), http.StatusBadRequest)
	wantStatus(t, "wrong password", s.do(call{method: "POST", path: "/v1/sessions", body: credJSON("carol", wrongPW)}), http.StatusUnauthorized)
	wantStatus(t, "unknown user", s.do(call{method: "POST", path: "/v1/sessions", body: credJSON("nobody", wrongPW)}), http.StatusUnauthorized)
	l := s.login("carol", pw1)
	wantStatus(t, "me", s.as(l, call{method: "GET", path: "/v1/me?access_token=" + query}, false), http.StatusOK)
	wantStatus(t, "wrong CSRF", s.as(l, call{method: "DELETE", path: "/v1/sessions/current", headers: map[string]string{"X-CSRF-Token": wrongCSRF}}, false), http.StatusForbidden)
	wantStatus(t, "bearer", s.do(call{method: "GET", path: "/v1/me", headers: map[string]string{"Authorization": "Bearer " + bearer}}), http.StatusUnauthorized)
	wantStatus(t, "two credentials", s.as(l, call{method: "GET", path: "/v1/me", headers: map[string]string{"Authorization": "Bearer " + bearer}}, false), http.StatusBadRequest)
	wantStatus(t, "change password, wrong current",
		s.as(l, call{method: "POST", path: "/v1/me/password", body: fmt.Sprintf(`{"current_password":%q,"new_password":%q}`, wrongPW, pw2)}, true), http.StatusForbidden)
	wantStatus(t, "change password",
		s.as(l, call{method: "POST", path: "/v1/me/password", body: fmt.Sprintf(`{"current_password":%q,"new_password":%q}`, pw1, pw2)}, true), http.StatusNoContent)
	l2 := s.login("carol", pw2)
	if r := s.do(call{method: "GET", path: "/v1/admin/audit", headers: map[string]string{"Authorization": "Bearer " + wrongKey}}); r.status/100 != 4 {
		t.Fatalf("audit with a wrong key: status %d", r.status)
	}
	wantStatus(t, "audit", s.do(call{method: "GET", path: "/v1/admin/audit", headers: map[string]string{"Authorization": "Bearer " + adminKey}}), http.StatusOK)
	wantStatus(t, "forced logout", s.do(call{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + adminKey}}), http.StatusNoContent)
	wantStatus(t, "me after forced logout", s.as(l2, call{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized)
	if code, _ := s.signal(syscall.SIGTERM, 5*time.Second+exitTimeout); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}

	logs := s.stderr.String()
	// The test must be able to fail: the debug level was on and the
	// request log lines are there.
	if !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "login.failure") {
		t.Fatalf("the debug and audit lines are missing: the test proves nothing:\n%s", logs)
	}
	secrets := map[string]string{
		"first password": pw1, "second password": pw2, "wrong password": wrongPW, "short password": shortPW,
		"admin key": adminKey, "wrong admin key": wrongKey, "bearer token": bearer, "wrong CSRF token": wrongCSRF,
		"token in the query": query,
		"first cookie":       l.cookie.Value, "first CSRF token": l.csrf,
		"second cookie": l2.cookie.Value, "second CSRF token": l2.csrf,
	}
	// In --dev the key-encryption key may be generated into the data
	// directory: it is a secret too.
	if b, err := os.ReadFile(filepath.Join(dir, "kek")); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		secrets["generated key-encryption key"] = strings.TrimSpace(string(b))
	}
	for name, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", logs)
	}
}

// TestE2EBadInputNever5xx sends malformed requests: each gets its 4xx
// problem, never a 5xx, and the server keeps serving.
func TestE2EBadInputNever5xx(t *testing.T) {
	s := startServer(t, t.TempDir())
	big := `{"username":"eve","password":"` + strings.Repeat("a", 70<<10) + `"}`
	cases := []struct {
		name       string
		c          call
		wantStatus int
		wantClass  string
	}{
		{"malformed JSON", call{method: "POST", path: "/v1/users", body: `{"username":"eve",`}, 400, "invalid_request"},
		{"not an object", call{method: "POST", path: "/v1/sessions", body: `["eve","pw"]`}, 400, "invalid_request"},
		{"trailing data", call{method: "POST", path: "/v1/sessions", body: `{"username":"eve","password":"12345678"} {}`}, 400, "invalid_request"},
		{"unknown field", call{method: "POST", path: "/v1/users", body: `{"username":"eve","password":"12345678","admin":true}`}, 400, "invalid_request"},
		{"duplicate key", call{method: "POST", path: "/v1/users", body: `{"username":"eve","username":"mallory","password":"12345678"}`}, 400, "invalid_request"},
		{"case-variant key", call{method: "POST", path: "/v1/sessions", body: `{"username":"eve","Username":"mallory","password":"12345678"}`}, 400, "invalid_request"},
		{"wrong type", call{method: "POST", path: "/v1/users", body: `{"username":42,"password":"12345678"}`}, 400, "invalid_request"},
		{"invalid UTF-8", call{method: "POST", path: "/v1/sessions", body: "{\"username\":\"\xff\xfe\",\"password\":\"12345678\"}"}, 400, "invalid_request"},
		{"70 KiB body", call{method: "POST", path: "/v1/users", body: big}, 413, "payload_too_large"},
		{"wrong content type", call{method: "POST", path: "/v1/sessions", body: `{"username":"eve","password":"12345678"}`, contentType: "text/plain"}, 415, "unsupported_media_type"},
		{"form to a JSON endpoint", call{method: "POST", path: "/v1/users", body: "username=eve&password=12345678", contentType: "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"unknown path", call{method: "GET", path: "/v1/nope"}, 404, "not_found"},
		{"unknown method", call{method: "PATCH", path: "/v1/me"}, 405, "method_not_allowed"},
		{"malformed cookie", call{method: "GET", path: "/v1/me", headers: map[string]string{"Cookie": "gh_session=%%%not-base64"}}, 401, "unauthorized"},
		{"malformed Authorization", call{method: "GET", path: "/v1/me", headers: map[string]string{"Authorization": "Bearer a b c"}}, 400, "invalid_request"},
		{"session id too long", call{method: "DELETE", path: "/v1/sessions/" + strings.Repeat("x", 4096)}, 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(tc.c)
			if r.status >= 500 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			wantProblem(t, tc.name, r, tc.wantStatus, tc.wantClass)
		})
	}
	wantStatus(t, "readyz after the bad input", s.do(call{method: "GET", path: "/readyz"}), http.StatusOK)
	if strings.Contains(s.stderr.String(), "level=ERROR") {
		t.Errorf("the server logged an error:\n%s", s.stderr)
	}
}
