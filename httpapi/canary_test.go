package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestNoSecretsInLogs runs the whole session flow with canary values and
// greps every log line (the request log at debug level, the audit log, the
// error log) for any of them.
func TestNoSecretsInLogs(t *testing.T) {
	h := newHarness(t)
	const (
		password    = "canary-password-7f3a9c"
		newPassword = "canary-newpass-51be02"
		wrong       = "canary-wrongpw-c0ffee"
	)
	uid := h.signup("canary", password)
	h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("canary", wrong)})
	l := h.login("canary", password)
	h.as(l, req{method: "GET", path: "/v1/me"}, false)
	h.as(l, req{method: "GET", path: "/v1/sessions/current"}, false)
	h.as(l, req{method: "DELETE", path: "/v1/sessions/current"}, false) // CSRF refusal
	h.do(req{method: "GET", path: "/v1/me", rawCookie: "gh_session=" + l.cookie.Value + "; gh_session=" + l.cookie.Value})
	h.do(req{method: "GET", path: "/v1/me", headers: map[string]string{"Authorization": "Bearer canary-bearer-token-9d8e7f"}})
	h.do(req{method: "GET", path: "/v1/me?access_token=canary-query-token-123"})
	h.as(l, req{method: "POST", path: "/v1/me/password", body: `{"current_password":"` + wrong + `","new_password":"` + newPassword + `"}`}, true)
	h.as(l, req{method: "POST", path: "/v1/me/password", body: `{"current_password":"` + password + `","new_password":"` + newPassword + `"}`}, true)
	h.do(req{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + adminKey}})
	h.do(req{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer canary-wrong-admin-key-000000000000"}})
	h.as(l, req{method: "GET", path: "/v1/me"}, false)

	logs := h.logs.String()
	if !strings.Contains(logs, "login.failure") || !strings.Contains(logs, "csrf.refused") || !strings.Contains(logs, `"route"`) {
		t.Fatalf("the logs do not show the flow; the canary test would prove nothing:\n%s", logs)
	}
	for _, secret := range []string{password, newPassword, wrong, l.cookie.Value, l.csrf, adminKey,
		"canary-bearer-token-9d8e7f", "canary-query-token-123", "canary-wrong-admin-key"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a log line contains the secret %q", secret)
		}
	}
	// The audit store, too, holds no secret.
	r := h.do(req{method: "GET", path: "/v1/admin/audit?limit=1000", headers: map[string]string{"Authorization": "Bearer " + adminKey}})
	if r.StatusCode != http.StatusOK {
		t.Fatal(r.StatusCode)
	}
	for _, secret := range []string{password, newPassword, wrong, l.cookie.Value, l.csrf} {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("the audit store contains the secret %q", secret)
		}
	}
}
