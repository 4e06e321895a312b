package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestCSRF is every allow/deny decision for cookie-authenticated requests.
func TestCSRF(t *testing.T) {
	h := newHarness(t)
	h.signup("olga", pw)
	h.signup("paul", pw)
	other := h.login("paul", pw)

	cases := []struct {
		name    string
		method  string
		path    string
		token   func(l login) string // "" means no header
		headers map[string]string
		want    int
		class   string
	}{
		{name: "safe method needs no token", method: "GET", path: "/v1/sessions", want: 200},
		{name: "unsafe without token", method: "DELETE", path: "/v1/sessions/current", want: 403, class: classCSRF},
		{name: "unsafe with wrong token", method: "DELETE", path: "/v1/sessions/current", token: func(login) string { return strings.Repeat("A", 43) }, want: 403, class: classCSRF},
		{name: "token of another session", method: "DELETE", path: "/v1/sessions/current", token: func(login) string { return other.csrf }, want: 403, class: classCSRF},
		{name: "cross-site fetch with the right token", method: "DELETE", path: "/v1/sessions/current", token: func(l login) string { return l.csrf }, headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: 403, class: classCSRF},
		{name: "foreign Origin with the right token", method: "DELETE", path: "/v1/sessions/current", token: func(l login) string { return l.csrf }, headers: map[string]string{"Origin": "https://evil.example"}, want: 403, class: classCSRF},
		{name: "same-origin fetch with the right token", method: "DELETE", path: "/v1/sessions/current", token: func(l login) string { return l.csrf }, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}, want: 204},
		{name: "non-browser client with the right token", method: "DELETE", path: "/v1/sessions/current", token: func(l login) string { return l.csrf }, want: 204},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := h.login("olga", pw)
			rq := req{method: tc.method, path: tc.path, headers: map[string]string{}, cookies: []*http.Cookie{l.cookie}}
			for k, v := range tc.headers {
				rq.headers[k] = v
			}
			if tc.token != nil {
				rq.headers["X-CSRF-Token"] = tc.token(l)
			}
			r := h.do(rq)
			if tc.class != "" {
				wantProblem(t, r, tc.want, tc.class)
			} else if r.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.want, r.body)
			}
		})
	}

	t.Run("token from before the current login", func(t *testing.T) {
		old := h.login("olga", pw)
		cur := h.login("olga", pw)
		r := h.do(req{method: "DELETE", path: "/v1/sessions/current", cookies: []*http.Cookie{cur.cookie}, headers: map[string]string{"X-CSRF-Token": old.csrf}})
		wantProblem(t, r, 403, classCSRF)
	})
	t.Run("cross-site login is refused", func(t *testing.T) {
		r := h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("olga", pw), headers: map[string]string{"Sec-Fetch-Site": "cross-site"}})
		wantProblem(t, r, 403, classCSRF)
	})
	t.Run("refusals are audited", func(t *testing.T) {
		r := h.do(req{method: "GET", path: "/v1/admin/audit?type=csrf.refused", headers: map[string]string{"Authorization": "Bearer " + adminKey}})
		if n := len(r.json(t)["events"].([]any)); n < 5 {
			t.Fatalf("%d csrf.refused events, want at least 5", n)
		}
	})
}

// TestCredentialAmbiguity: one credential per request, our cookie names
// exactly.
func TestCredentialAmbiguity(t *testing.T) {
	h := newHarness(t)
	h.signup("quinn", pw)
	l := h.login("quinn", pw)
	v := l.cookie.Value
	cases := []struct {
		name      string
		rawCookie string
		auth      string
		want      int
	}{
		{name: "one session cookie", rawCookie: "gh_session=" + v, want: 200},
		{name: "with unrelated cookies", rawCookie: "theme=dark; gh_session=" + v + "; lang=en", want: 200},
		{name: "two session cookies, same value", rawCookie: "gh_session=" + v + "; gh_session=" + v, want: 400},
		{name: "two session cookies, other value", rawCookie: "gh_session=" + v + "; gh_session=" + strings.Repeat("B", 43), want: 400},
		{name: "session cookie name in another case", rawCookie: "GH_SESSION=" + v, want: 400},
		{name: "both cases", rawCookie: "gh_session=" + v + "; Gh_Session=" + v, want: 400},
		{name: "session cookie and bearer", rawCookie: "gh_session=" + v, auth: "Bearer abc.def.ghi", want: 400},
		{name: "session and access cookies", rawCookie: "gh_session=" + v + "; gh_access=abc", want: 400},
		{name: "bearer and access cookie", rawCookie: "gh_access=abc", auth: "Bearer abc.def.ghi", want: 400},
		{name: "malformed authorization", auth: "Basic dXNlcjpwYXNz", want: 400},
		{name: "empty bearer", auth: "Bearer ", want: 400},
		{name: "bearer with space inside", auth: "Bearer a b", want: 400},
		{name: "malformed session secret", rawCookie: "gh_session=short", want: 401},
		{name: "non-canonical base64 secret", rawCookie: "gh_session=" + v[:42] + nonCanonical(v[42]), want: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rq := req{method: "GET", path: "/v1/me", rawCookie: tc.rawCookie, headers: map[string]string{}}
			if tc.auth != "" {
				rq.headers["Authorization"] = tc.auth
			}
			r := h.do(rq)
			if r.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.want, r.body)
			}
			if tc.want == 400 {
				wantProblem(t, r, 400, classInvalidRequest)
				if got := r.Header.Get("WWW-Authenticate"); got != challengeInvalidRequest {
					t.Fatalf("WWW-Authenticate %q", got)
				}
			}
		})
	}
}

// nonCanonical returns another base64url character that decodes to the
// same bytes when the last character's low bits are ignored.
func nonCanonical(last byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, last)
	return string(alphabet[i^1])
}

// TestBadInput: the Conventions for bodies; never a 5xx.
func TestBadInput(t *testing.T) {
	h := newHarness(t)
	big := `{"username":"` + strings.Repeat("a", MaxBodyBytes) + `","password":"x"}`
	cases := []struct {
		name, body, contentType string
		want                    int
		class                   string
	}{
		{"wrong content type", credJSON("rita", pw), "text/plain", 415, classUnsupportedMedia},
		{"form content type", "username=rita&password=x", "application/x-www-form-urlencoded", 415, classUnsupportedMedia},
		{"latin1 charset", credJSON("rita", pw), "application/json; charset=latin1", 415, classUnsupportedMedia},
		{"utf-8 charset is fine", credJSON("rita", pw), "application/json; charset=utf-8", 201, ""},
		{"malformed JSON", `{"username":`, "", 400, classInvalidRequest},
		{"not an object", `["a"]`, "", 400, classInvalidRequest},
		{"trailing data", credJSON("rita2", pw) + `{}`, "", 400, classInvalidRequest},
		{"trailing garbage", credJSON("rita2", pw) + `x`, "", 400, classInvalidRequest},
		{"unknown field", `{"username":"rita2","password":"` + pw + `","admin":true}`, "", 400, classInvalidRequest},
		{"duplicate key", `{"username":"rita2","username":"rita3","password":"` + pw + `"}`, "", 400, classInvalidRequest},
		{"case-variant key", `{"Username":"rita2","password":"` + pw + `"}`, "", 400, classInvalidRequest},
		{"case-variant duplicate", `{"username":"rita2","USERNAME":"rita3","password":"` + pw + `"}`, "", 400, classInvalidRequest},
		{"wrong type", `{"username":42,"password":"` + pw + `"}`, "", 400, classInvalidRequest},
		{"nested object", `{"username":{"a":1},"password":"` + pw + `"}`, "", 400, classInvalidRequest},
		{"missing field", `{"username":"rita2"}`, "", 400, classInvalidRequest},
		{"null field", `{"username":null,"password":"` + pw + `"}`, "", 400, classInvalidRequest},
		{"invalid UTF-8", "{\"username\":\"r\xffta\",\"password\":\"" + pw + "\"}", "", 400, classInvalidRequest},
		{"empty body", ``, "application/json", 400, classInvalidRequest},
		{"too large", big, "", 413, classTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rq := req{method: "POST", path: "/v1/users", body: tc.body, contentType: tc.contentType}
			if tc.body == "" {
				rq.headers = map[string]string{"Content-Type": tc.contentType}
			}
			r := h.do(rq)
			if tc.class == "" {
				if r.StatusCode != tc.want {
					t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.want, r.body)
				}
				return
			}
			wantProblem(t, r, tc.want, tc.class)
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		wantProblem(t, h.do(req{method: "GET", path: "/v1/nope"}), 404, classNotFound)
	})
	t.Run("wrong method", func(t *testing.T) {
		r := h.do(req{method: "PUT", path: "/v1/sessions/current"})
		wantProblem(t, r, 405, classMethod)
		if r.Header.Get("Allow") == "" {
			t.Fatal("405 without Allow")
		}
	})
}

// TestThrottling: per account and per address, with Retry-After, never
// touching existing sessions.
func TestThrottling(t *testing.T) {
	h := newHarness(t)
	h.signup("sam", pw)
	existing := h.login("sam", pw)
	var last resp
	throttledAt := 0
	for i := 1; i <= 10; i++ {
		last = h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("sam", "wrong password!")})
		if last.StatusCode == http.StatusTooManyRequests {
			throttledAt = i
			break
		}
	}
	if throttledAt != 6 { // 5 free failures; then each attempt waits BaseDelay·2^(n−5) after the last
		t.Fatalf("throttled at attempt %d, want 6 (last %d %s)", throttledAt, last.StatusCode, last.body)
	}
	wantProblem(t, last, http.StatusTooManyRequests, classTooMany)
	if ra, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", last.Header.Get("Retry-After"))
	}
	// Even the right password waits: the account is throttled, not the guess.
	wantProblem(t, h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("sam", pw)}), http.StatusTooManyRequests, classTooMany)
	// The rightful user's existing session is untouched.
	if r := h.as(existing, req{method: "GET", path: "/v1/me"}, false); r.StatusCode != 200 {
		t.Fatalf("existing session affected by throttling: %d", r.StatusCode)
	}
	// An unknown username is throttled just the same.
	for range 6 {
		h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("ghost", "wrong password!")})
	}
	wantProblem(t, h.do(req{method: "POST", path: "/v1/sessions", body: credJSON("ghost", "wrong password!")}), http.StatusTooManyRequests, classTooMany)
	// After the wait the right password works.
	h.clock.Advance(10 * 1e9)
	h.login("sam", pw)
}
