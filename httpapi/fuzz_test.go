package httpapi

import (
	"github.com/gatehouse-auth/gatehouse/internal/credential"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fuzzBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// FuzzUnmarshalStrict: the strict JSON decoder never panics, and whatever
// it accepts encoding/json accepts with the same meaning.
func FuzzUnmarshalStrict(f *testing.F) {
	for _, s := range []string{
		`{"username":"a","password":"b"}`, `{"username":"a","username":"b"}`, `{"Username":"a"}`,
		`{"username":"a"} x`, `{"username":{"x":1}}`, `[`, `{"username":"\ud800"}`, "{\"username\":\"\xff\"}",
		`{"username":1e999}`, `{}`, `{"password":null}`, ` {"username" : "a" } `, `{"a":[1,2,{"b":3}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got fuzzBody
		if err := unmarshalStrict(data, &got); err != nil {
			if asAPIError(err).status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		// Accepted: no duplicate and no case-variant member can have slipped in.
		lower := strings.ToLower(string(data))
		if strings.Count(lower, `"username"`) > 1 || strings.Count(lower, `"password"`) > 1 {
			// A member name may legitimately appear inside a value; only
			// flag it when both are keys. Re-check by decoding.
			if err := checkMembers(data, fieldNames(typeOfFuzzBody)); err != nil {
				t.Fatalf("accepted a body that checkMembers refuses: %v", err)
			}
		}
	})
}

// FuzzExtractCredentials: arbitrary Cookie and Authorization headers never
// panic and never yield two credentials.
func FuzzExtractCredentials(f *testing.F) {
	f.Add("gh_session=abc", "Bearer abc")
	f.Add("gh_session=a; gh_session=b", "")
	f.Add("GH_SESSION=a", "bearer x")
	f.Add("gh_access=x; theme=dark", "Bearer a.b.c==")
	f.Add(";;=;", "Bearer =")
	f.Add("gh_session=\"quoted\"", "Basic abc")
	s := &Server{cookies: newCookieNames(true)}
	f.Fuzz(func(t *testing.T, cookie, auth string) {
		r := httptest.NewRequest("GET", "/v1/me", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		p, err := s.extractCredentials(r)
		if err != nil {
			if ae := asAPIError(err); ae.status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if p.count() > 1 {
			t.Fatal("two credentials accepted")
		}
		if p.hasBearer && (p.bearer == "" || strings.ContainsAny(p.bearer, " \t\r\n,;\"")) {
			t.Fatalf("bearer %q accepted", p.bearer)
		}
	})
}

// FuzzParseBearer: only RFC 6750 b64token syntax is accepted.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer  a", "Bearer a=b", "Bearer =", "BEARER x==", "Bearer", "Bearer a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := credential.ParseBearer(h)
		if !ok {
			return
		}
		if tok == "" || len(tok) > credential.MaxBearerLen || !strings.EqualFold(h[:7], "bearer ") || h[7:] != tok {
			t.Fatalf("credential.ParseBearer(%q) = %q", h, tok)
		}
		trimmed := strings.TrimRight(tok, "=")
		if trimmed == "" || strings.Trim(trimmed, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/") != "" {
			t.Fatalf("parseBearer accepted %q", tok)
		}
	})
}

var typeOfFuzzBody = reflectTypeOf(fuzzBody{})
