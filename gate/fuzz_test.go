package gate_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCredentials sends arbitrary Cookie and Authorization headers through
// RequireAny: the answer is always a 400 or 401 refusal, never a panic, a
// 5xx or a call to the handler.
func FuzzCredentials(f *testing.F) {
	d := newDomain(f)
	g := newGate(f, d.config())
	called := false
	h := g.RequireAny(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	seeds := []struct {
		cookie, auth string
		post         bool
	}{
		{"", "", false},
		{"gh_session=" + strings.Repeat("A", 43), "", true},
		{"gh_session=" + strings.Repeat("A", 42) + "=", "", false},
		{"gh_session=AAAA; gh_session=BBBB", "", false},
		{"GH_SESSION=x", "", false},
		{"gh_access=a.b.c", "", true},
		{"gh_access=eyJhbGciOiJub25lIn0.e30.", "", false},
		{"", "Bearer eyJhbGciOiJub25lIn0.e30.", false},
		{"", "Bearer ", false},
		{"", "bearer a=b", false},
		{"", "Bearer ==", false},
		{"", "Basic Zm9vOmJhcg==", false},
		{"gh_session=x", "Bearer x", false},
		{"gh_session=\"quoted\"", "", false},
		{"gh_session=x;;;gh_access=y", "", false},
		{"\x00gh_session=x", "Bearer \xff", false},
	}
	for _, s := range seeds {
		f.Add(s.cookie, s.auth, s.post)
	}
	f.Fuzz(func(t *testing.T, cookie, auth string, post bool) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		r := httptest.NewRequest(method, "/", nil)
		if cookie != "" {
			r.Header["Cookie"] = []string{cookie}
		}
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		w := httptest.NewRecorder()
		called = false
		h.ServeHTTP(w, r)
		if called {
			t.Fatalf("handler ran for cookie %q, authorization %q", cookie, auth)
		}
		if w.Code != http.StatusBadRequest && w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for cookie %q, authorization %q: %s", w.Code, cookie, auth, w.Body)
		}
	})
}
