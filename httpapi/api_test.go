package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const pw = "correct horse battery"

func TestSessionFlow(t *testing.T) {
	h := newHarness(t)
	uid := h.signup("Alice", pw)

	r := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("ALICE", pw), headers: map[string]string{"User-Agent": "test-agent"}})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("login: %d %s", r.StatusCode, r.body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("login Cache-Control %q", cc)
	}
	c := r.cookie("gh_session")
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("session cookie attributes wrong: %+v", c)
	}
	if len(c.Value) != 43 {
		t.Fatalf("session secret length %d, want 43 (256 bits base64url)", len(c.Value))
	}
	body := r.json(t)
	sess := body["session"].(map[string]any)
	if sess["id"] == c.Value || strings.Contains(string(r.body), c.Value) {
		t.Fatal("the public session id or body reveals the cookie secret")
	}
	if body["user"].(map[string]any)["username"] != "alice" {
		t.Fatalf("username not normalised: %v", body["user"])
	}
	l := login{cookie: &http.Cookie{Name: c.Name, Value: c.Value}, csrf: body["csrf_token"].(string), sessionID: sess["id"].(string)}

	// The store holds the hash, never the secret.
	if ss, _ := h.store.SessionsByUser(t.Context(), uid); len(ss) != 1 || strings.Contains(string(ss[0].Hash), c.Value) {
		t.Fatalf("store sessions: %+v", ss)
	}

	me := h.as(l, req{method: "GET", path: "/v1/me"}, false)
	if me.StatusCode != 200 || me.json(t)["auth"].(map[string]any)["mode"] != "session" || me.json(t)["id"] != uid {
		t.Fatalf("me: %d %s", me.StatusCode, me.body)
	}
	cur := h.as(l, req{method: "GET", path: "/v1/sessions/current"}, false)
	if cur.StatusCode != 200 || cur.json(t)["csrf_token"] != l.csrf {
		t.Fatalf("current: %d %s", cur.StatusCode, cur.body)
	}
	for _, k := range []string{"id", "created_at", "last_seen_at", "idle_expires_at", "expires_at"} {
		if _, ok := cur.json(t)["session"].(map[string]any)[k]; !ok {
			t.Fatalf("current session lacks %q: %s", k, cur.body)
		}
	}
	list := h.as(l, req{method: "GET", path: "/v1/sessions"}, false)
	ss := list.json(t)["sessions"].([]any)
	if len(ss) != 1 || ss[0].(map[string]any)["current"] != true || ss[0].(map[string]any)["user_agent"] != "test-agent" || ss[0].(map[string]any)["ip"] != "127.0.0.1" {
		t.Fatalf("list: %s", list.body)
	}

	out := h.as(l, req{method: "DELETE", path: "/v1/sessions/current"}, true)
	if out.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", out.StatusCode, out.body)
	}
	if cl := out.cookie("gh_session"); cl == nil || cl.MaxAge >= 0 || !strings.Contains(out.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout did not clear the cookie: %v", out.Header.Values("Set-Cookie"))
	}
	after := h.as(l, req{method: "GET", path: "/v1/me"}, false)
	wantProblem(t, after, http.StatusUnauthorized, classUnauthorized)
	if got := after.Header.Get("WWW-Authenticate"); got != challengeInvalidToken {
		t.Fatalf("WWW-Authenticate %q", got)
	}
}

func TestSecureCookieAttributes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Dev = false })
	h.signup("bob", pw)
	r := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("bob", pw)})
	set := r.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-gh_session=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(set, want) {
			t.Fatalf("Set-Cookie %q lacks %q", set, want)
		}
	}
	if strings.Contains(strings.ToLower(set), "domain=") {
		t.Fatalf("Set-Cookie %q has a Domain", set)
	}
}

func TestNoCredential(t *testing.T) {
	h := newHarness(t)
	r := h.do(req{method: "GET", path: "/v1/me"})
	wantProblem(t, r, http.StatusUnauthorized, classUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Fatalf("WWW-Authenticate %q, want Bearer", got)
	}
}

func TestLoginFailuresAreGeneric(t *testing.T) {
	h := newHarness(t)
	h.signup("carol", pw)
	wrong := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("carol", "wrong password!")})
	unknown := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("nobody", "wrong password!")})
	bad := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("bad\u0000name", "wrong password!")})
	for _, r := range []resp{wrong, unknown, bad} {
		wantProblem(t, r, http.StatusUnauthorized, classUnauthorized)
		if string(r.body) != string(wrong.body) {
			t.Fatalf("bodies differ:\n%s\n%s", r.body, wrong.body)
		}
		for _, k := range []string{"Content-Type", "WWW-Authenticate", "Cache-Control", "Retry-After"} {
			if r.Header.Get(k) != wrong.Header.Get(k) {
				t.Fatalf("header %s differs: %q vs %q", k, r.Header.Get(k), wrong.Header.Get(k))
			}
		}
		if r.cookie("gh_session") != nil {
			t.Fatal("a failed login set a cookie")
		}
	}
}

func TestSessionTimeouts(t *testing.T) {
	cases := []struct {
		name    string
		steps   []time.Duration // advance, then use the session
		wantOK  bool
		comment string
	}{
		{name: "used within idle timeout", steps: []time.Duration{29 * time.Minute}, wantOK: true},
		{name: "idle timeout reached", steps: []time.Duration{30 * time.Minute}, wantOK: false},
		{name: "activity extends idle", steps: []time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute}, wantOK: true},
		{name: "absolute timeout despite activity", steps: repeat(25*time.Minute, 29), wantOK: false},
		{name: "just before absolute timeout", steps: append(repeat(25*time.Minute, 28), 19*time.Minute), wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.signup("dave", pw)
			l := h.login("dave", pw)
			var r resp
			for _, d := range tc.steps {
				h.clock.Advance(d)
				r = h.as(l, req{method: "GET", path: "/v1/me"}, false)
				if r.StatusCode != 200 {
					break
				}
			}
			if ok := r.StatusCode == 200; ok != tc.wantOK {
				t.Fatalf("status %d after %v, want ok=%v", r.StatusCode, tc.steps, tc.wantOK)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestTouchIsCoalesced(t *testing.T) {
	h := newHarness(t)
	uid := h.signup("erin", pw)
	l := h.login("erin", pw)
	lastSeen := func() time.Time {
		ss, err := h.store.SessionsByUser(t.Context(), uid)
		if err != nil || len(ss) != 1 {
			t.Fatal(err, ss)
		}
		return ss[0].LastSeenAt
	}
	first := lastSeen()
	for range 10 {
		h.clock.Advance(5 * time.Second)
		h.as(l, req{method: "GET", path: "/v1/me"}, false)
	}
	if !lastSeen().Equal(first) {
		t.Fatal("last-seen written within the touch interval")
	}
	h.clock.Advance(15 * time.Second)
	h.as(l, req{method: "GET", path: "/v1/me"}, false)
	if got := lastSeen(); !got.Equal(h.clock.Now()) {
		t.Fatalf("last-seen %v after the touch interval, want %v", got, h.clock.Now())
	}
}

func TestNewSecretAtEveryLogin(t *testing.T) {
	h := newHarness(t)
	h.signup("frank", pw)
	a := h.login("frank", pw)
	// Logging in again while presenting a cookie never adopts it.
	r := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("frank", pw), cookies: []*http.Cookie{a.cookie}})
	b := r.cookie("gh_session")
	if b == nil || b.Value == a.cookie.Value {
		t.Fatal("login reused the presented secret")
	}
	if r.json(t)["csrf_token"] == a.csrf {
		t.Fatal("login reused the CSRF token")
	}
	// The replaced session is ended.
	wantProblem(t, h.as(a, req{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, classUnauthorized)
	// An unknown but well-formed secret is never adopted.
	forged := &http.Cookie{Name: "gh_session", Value: strings.Repeat("A", 43)}
	wantProblem(t, h.do(req{method: "GET", path: "/v1/me", cookies: []*http.Cookie{forged}}), http.StatusUnauthorized, classUnauthorized)
}

func TestDeviceManagement(t *testing.T) {
	h := newHarness(t)
	h.signup("gina", pw)
	h.signup("hank", pw)
	a := h.login("gina", pw)
	b := h.login("gina", pw)
	c := h.login("gina", pw)
	other := h.login("hank", pw)

	// Revoking someone else's session is 404, like a missing one.
	wantProblem(t, h.as(a, req{method: "DELETE", path: "/v1/sessions/" + other.sessionID}, true), http.StatusNotFound, classNotFound)
	wantProblem(t, h.as(a, req{method: "DELETE", path: "/v1/sessions/nope"}, true), http.StatusNotFound, classNotFound)
	if h.as(other, req{method: "GET", path: "/v1/me"}, false).StatusCode != 200 {
		t.Fatal("revoking another user's session had an effect")
	}

	if r := h.as(a, req{method: "DELETE", path: "/v1/sessions/" + b.sessionID}, true); r.StatusCode != 204 {
		t.Fatalf("revoke one: %d %s", r.StatusCode, r.body)
	}
	wantProblem(t, h.as(b, req{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, classUnauthorized)

	wantProblem(t, h.as(a, req{method: "DELETE", path: "/v1/sessions?others=maybe"}, true), http.StatusBadRequest, classInvalidRequest)
	if r := h.as(a, req{method: "DELETE", path: "/v1/sessions?others=true"}, true); r.StatusCode != 204 {
		t.Fatalf("revoke others: %d %s", r.StatusCode, r.body)
	}
	wantProblem(t, h.as(c, req{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, classUnauthorized)
	if r := h.as(a, req{method: "GET", path: "/v1/sessions"}, false); len(r.json(t)["sessions"].([]any)) != 1 {
		t.Fatalf("after revoking others: %s", r.body)
	}
	if r := h.as(a, req{method: "DELETE", path: "/v1/sessions"}, true); r.StatusCode != 204 || r.cookie("gh_session") == nil {
		t.Fatalf("revoke all: %d %s", r.StatusCode, r.body)
	}
	wantProblem(t, h.as(a, req{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, classUnauthorized)
	if h.as(other, req{method: "GET", path: "/v1/me"}, false).StatusCode != 200 {
		t.Fatal("revoke all ended another user's session")
	}
}

func TestForcedLogout(t *testing.T) {
	h := newHarness(t)
	uid := h.signup("ivy", pw)
	adminID := h.signup("root", pw)
	if err := h.accounts.SetRoles(t.Context(), adminID, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	v1, v2 := h.login("ivy", pw), h.login("ivy", pw)
	adm := h.login("root", pw)

	// A non-admin is refused.
	wantProblem(t, h.as(v1, req{method: "POST", path: "/v1/admin/users/" + adminID + "/logout"}, true), http.StatusForbidden, classForbidden)
	// Wrong admin key.
	wantProblem(t, h.do(req{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 40)}}), http.StatusUnauthorized, classUnauthorized)
	// Unknown user.
	wantProblem(t, h.do(req{method: "POST", path: "/v1/admin/users/nobody/logout", headers: map[string]string{"Authorization": "Bearer " + adminKey}}), http.StatusNotFound, classNotFound)

	// Admin user by session (CSRF required).
	wantProblem(t, h.as(adm, req{method: "POST", path: "/v1/admin/users/" + uid + "/logout"}, false), http.StatusForbidden, classCSRF)
	if r := h.as(adm, req{method: "POST", path: "/v1/admin/users/" + uid + "/logout"}, true); r.StatusCode != 204 {
		t.Fatalf("forced logout: %d %s", r.StatusCode, r.body)
	}
	for _, l := range []login{v1, v2} {
		wantProblem(t, h.as(l, req{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, classUnauthorized)
	}
	// By admin key.
	v3 := h.login("ivy", pw)
	if r := h.do(req{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + adminKey}}); r.StatusCode != 204 {
		t.Fatalf("forced logout by key: %d %s", r.StatusCode, r.body)
	}
	wantProblem(t, h.as(v3, req{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, classUnauthorized)

	// The audit has it, newest first, filterable.
	r := h.do(req{method: "GET", path: "/v1/admin/audit?type=user.forced_logout&user_id=" + uid, headers: map[string]string{"Authorization": "Bearer " + adminKey}})
	if r.StatusCode != 200 {
		t.Fatalf("audit: %d %s", r.StatusCode, r.body)
	}
	ev := r.json(t)["events"].([]any)
	if len(ev) != 2 || ev[0].(map[string]any)["actor_id"] != "admin-key" || ev[1].(map[string]any)["actor_id"] != adminID {
		t.Fatalf("audit events: %s", r.body)
	}
	wantProblem(t, h.do(req{method: "GET", path: "/v1/admin/audit?limit=0", headers: map[string]string{"Authorization": "Bearer " + adminKey}}), http.StatusBadRequest, classInvalidRequest)
}

func TestChangePassword(t *testing.T) {
	h := newHarness(t)
	h.signup("jane", pw)
	keep, other := h.login("jane", pw), h.login("jane", pw)
	body := `{"current_password":"wrong password!","new_password":"a brand new one"}`
	wantProblem(t, h.as(keep, req{method: "POST", path: "/v1/me/password", body: body}, true), http.StatusForbidden, classForbidden)
	body = `{"current_password":"` + pw + `","new_password":"short"}`
	wantProblem(t, h.as(keep, req{method: "POST", path: "/v1/me/password", body: body}, true), http.StatusBadRequest, classPasswordPolicy)
	body = `{"current_password":"` + pw + `","new_password":"a brand new one"}`
	wantProblem(t, h.as(keep, req{method: "POST", path: "/v1/me/password", body: body}, false), http.StatusForbidden, classCSRF)
	if r := h.as(keep, req{method: "POST", path: "/v1/me/password", body: body}, true); r.StatusCode != 204 {
		t.Fatalf("change password: %d %s", r.StatusCode, r.body)
	}
	if h.as(keep, req{method: "GET", path: "/v1/me"}, false).StatusCode != 200 {
		t.Fatal("the current session ended")
	}
	wantProblem(t, h.as(other, req{method: "GET", path: "/v1/me"}, false), http.StatusUnauthorized, classUnauthorized)
	wantProblem(t, h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("jane", pw)}), http.StatusUnauthorized, classUnauthorized)
	h.login("jane", "a brand new one")
}

func TestSignup(t *testing.T) {
	h := newHarness(t)
	h.signup("kate", pw)
	wantProblem(t, h.do(req{method: "POST", path: "/v1/users", body: credJSON("KATE", pw)}), http.StatusConflict, classUsernameTaken)
	wantProblem(t, h.do(req{method: "POST", path: "/v1/users", body: credJSON("lena", "1234567")}), http.StatusBadRequest, classPasswordPolicy)
	wantProblem(t, h.do(req{method: "POST", path: "/v1/users", body: credJSON("lena", strings.Repeat("p", 129))}), http.StatusBadRequest, classPasswordPolicy)
	wantProblem(t, h.do(req{method: "POST", path: "/v1/users", body: credJSON("le\r\nna", pw)}), http.StatusBadRequest, classInvalidUsername)
	if r := h.do(req{method: "POST", path: "/v1/users", body: credJSON("lena", "12345678")}); r.StatusCode != 201 {
		t.Fatalf("8 characters refused: %d %s", r.StatusCode, r.body)
	}
	closed := newHarness(t, func(c *Config) { c.Signup = false })
	wantProblem(t, closed.do(req{method: "POST", path: "/v1/users", body: credJSON("mia", pw)}), http.StatusForbidden, classSignupDisabled)
}

func TestHealthAndReady(t *testing.T) {
	h := newHarness(t)
	if r := h.do(req{method: "GET", path: "/healthz"}); r.StatusCode != 200 {
		t.Fatalf("healthz %d", r.StatusCode)
	}
	if r := h.do(req{method: "GET", path: "/readyz"}); r.StatusCode != 200 {
		t.Fatalf("readyz %d", r.StatusCode)
	}
	h.api.SetShuttingDown()
	wantProblem(t, h.do(req{method: "GET", path: "/readyz"}), http.StatusServiceUnavailable, classUnavailable)
	if r := h.do(req{method: "GET", path: "/metrics"}); r.StatusCode != 200 || !strings.Contains(string(r.body), "gatehouse_logins_total") {
		t.Fatalf("metrics %d", r.StatusCode)
	}
}
