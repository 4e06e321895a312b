package web

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"short password", "hunter2hunter2", "…(14 characters hidden)"},
		{"19 characters", strings.Repeat("a", 19), "…(19 characters hidden)"},
		{"session secret", "Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde", "Ab3dEf…bcde"},
		{"multibyte", strings.Repeat("é", 25), "éééééé…éééé"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mask(tc.in); got != tc.want {
				t.Fatalf("mask(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestMaskBody(t *testing.T) {
	secret := "SECRETSECRETSECRETSECRETSECRET"
	cases := []struct {
		name, ct, body string
		keep           []string
	}{
		{"token answer", "application/json", `{"access_token":"` + secret + `","refresh_token":"` + secret + `","token_type":"Bearer","expires_in":600}`, []string{`"token_type": "Bearer"`, `"expires_in": 600`}},
		{"nested csrf", "application/json", `{"user":{"id":"u1"},"csrf_token":"` + secret + `","list":[{"password":"` + secret + `"}]}`, []string{`"id": "u1"`}},
		{"problem", "application/problem+json", `{"type":"x","detail":"The username or password is wrong."}`, []string{"The username or password is wrong."}},
		{"password grant", "application/x-www-form-urlencoded", "grant_type=password&username=amy&password=" + secret, []string{"grant_type=password", "username=amy"}},
		{"revocation", "application/x-www-form-urlencoded", "token=" + secret + "&token_type_hint=access_token", []string{"token_type_hint=access_token"}},
		{"password change", "application/json; charset=utf-8", `{"current_password":"` + secret + `","new_password":"` + secret + `"}`, nil},
		{"broken JSON", "application/json", `{"access_token":"` + secret, []string{"does not parse"}},
		{"broken form", "application/x-www-form-urlencoded", "token=%zz" + secret, []string{"does not parse"}},
		{"binary", "application/octet-stream", "\xff\xfe" + secret, []string{"bytes of binary data"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := maskBody(tc.ct, []byte(tc.body))
			if strings.Contains(got, secret) {
				t.Fatalf("secret shown: %s", got)
			}
			for _, k := range tc.keep {
				if !strings.Contains(got, k) {
					t.Fatalf("%q lost: %s", k, got)
				}
			}
		})
	}
}

func TestRecordExchangeMasksHeadersAndCookies(t *testing.T) {
	secret := "SECRETSECRETSECRETSECRETSECRET"
	req, _ := http.NewRequest(http.MethodGet, "/v1/verify", nil)
	req.Host = "gatehouse.test"
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("X-CSRF-Token", secret)
	req.Header.Set("Cookie", "gh_session="+secret+"; other=1")
	res := &apiResponse{status: 200, sent: req, header: http.Header{
		"Set-Cookie":          {"gh_access=" + secret + "; Path=/; Max-Age=600; HttpOnly; SameSite=Lax"},
		"X-Gatehouse-Token":   {secret},
		"X-Gatehouse-User-Id": {"u1"},
	}}
	ex := recordExchange("test", nil, res)
	var all strings.Builder
	for _, h := range ex.Request.Headers {
		all.WriteString(h.Value)
	}
	for _, c := range ex.Request.Cookies {
		all.WriteString(c.Value)
	}
	for _, h := range ex.Response.Headers {
		all.WriteString(h.Value)
	}
	for _, c := range ex.Response.SetCookies {
		all.WriteString(c.Value + c.Attributes)
	}
	if strings.Contains(all.String(), secret) {
		t.Fatalf("secret shown: %s", all.String())
	}
	if !strings.Contains(all.String(), "Bearer SECRET…CRET") || !strings.Contains(all.String(), "u1") {
		t.Fatalf("masked view lost its shape: %s", all.String())
	}
	if ex.Response.SetCookies[0].Attributes != "Path=/; Max-Age=600; HttpOnly; SameSite=Lax" {
		t.Fatalf("attributes %q", ex.Response.SetCookies[0].Attributes)
	}
	// The credential size is that of the real headers, not of the masked
	// ones.
	wantCred := len("Authorization: Bearer "+secret+"\r\n") + len("Cookie: gh_session="+secret+"; other=1\r\n")
	if ex.Bytes.Credential != wantCred {
		t.Fatalf("credential bytes %d, want %d", ex.Bytes.Credential, wantCred)
	}
}

func TestJar(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var j jar
	j.update([]*http.Cookie{
		{Name: "gh_access", Value: "a1", Path: "/", MaxAge: 600},
		{Name: "gh_refresh", Value: "r1", Path: "/v1/token", MaxAge: 3600},
	}, now)
	names := func(path string, at time.Time) string {
		var out []string
		for _, c := range j.forPath(path, at) {
			out = append(out, c.Name+"="+c.Value)
		}
		return strings.Join(out, ";")
	}
	cases := []struct {
		name, path string
		at         time.Time
		want       string
	}{
		{"API call", "/v1/me", now, "gh_access=a1"},
		{"token endpoint: the longer path first", "/v1/token", now, "gh_refresh=r1;gh_access=a1"},
		{"revocation endpoint", "/v1/token/revoke", now, "gh_refresh=r1;gh_access=a1"},
		{"a path that only starts alike", "/v1/tokenize", now, "gh_access=a1"},
		{"after the access cookie's Max-Age", "/v1/token", now.Add(601 * time.Second), "gh_refresh=r1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(tc.path, tc.at); got != tc.want {
				t.Fatalf("cookies for %s: %q, want %q", tc.path, got, tc.want)
			}
		})
	}
	j.update([]*http.Cookie{{Name: "gh_access", Value: "a2", Path: "/", MaxAge: 600}}, now)
	if got := names("/v1/me", now); got != "gh_access=a2" {
		t.Fatalf("replaced cookie: %q", got)
	}
	j.update([]*http.Cookie{{Name: "gh_access", Path: "/", MaxAge: -1}, {Name: "gh_refresh", Path: "/v1/token", MaxAge: -1}}, now)
	if len(j.all()) != 0 {
		t.Fatalf("cleared cookies kept: %+v", j.all())
	}
}

func TestDiffSnapshots(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	before := &Snapshot{
		User:     &SnapshotUser{ID: "u", Username: "amy", Roles: []string{}},
		Sessions: []SnapshotSession{{ID: "s1", ExpiresAt: t0}, {ID: "s2", ExpiresAt: t0}},
		Families: []SnapshotFamily{{ID: "f1", ExpiresAt: t0}},
	}
	after := &Snapshot{
		User:        &SnapshotUser{ID: "u", Username: "amy", Roles: []string{}, RevokedBefore: &t0},
		Sessions:    []SnapshotSession{{ID: "s2", ExpiresAt: t0}},
		Families:    []SnapshotFamily{{ID: "f1", ExpiresAt: t0, RevokedAt: &t0}},
		Revocations: []SnapshotRevocation{{Kind: "sid", ID: "f1", Until: t0}, {Kind: "user", ID: "u", Before: &t0, Until: t0}},
	}
	d, err := diffSnapshots(before, after)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Removed) != 1 || d.Removed[0].Table != "sessions" || d.Removed[0].Key != "s1" {
		t.Fatalf("removed: %+v", d.Removed)
	}
	if len(d.Added) != 2 || d.Added[0].Key != "sid:f1" || d.Added[1].Key != "user:u" {
		t.Fatalf("added: %+v", d.Added)
	}
	if len(d.Changed) != 2 || d.Changed[0].Table != "user" || d.Changed[0].Fields[0].Field != "revoked_before" ||
		d.Changed[1].Table != "refresh_families" || d.Changed[1].Fields[0].Field != "revoked_at" {
		t.Fatalf("changed: %+v", d.Changed)
	}
	same, _ := diffSnapshots(after, after)
	if !same.empty() {
		t.Fatalf("a snapshot differs from itself: %+v", same)
	}
	all, _ := diffSnapshots(nil, after)
	if len(all.Added) != 5 {
		t.Fatalf("from nothing: %+v", all.Added)
	}
}

func TestFlattenJSON(t *testing.T) {
	rows, cut := flattenJSON(map[string]any{"b": []any{1, map[string]any{"x": nil}}, "a": "s"}, 10)
	got := []string{}
	for _, r := range rows {
		got = append(got, r.Key+"="+r.Value)
	}
	if strings.Join(got, ",") != "a=s,b[0]=1,b[1].x=null" || cut {
		t.Fatalf("rows %v cut %v", got, cut)
	}
	if _, cut := flattenJSON(make([]int, 20), 5); !cut {
		t.Fatal("not cut at the limit")
	}
}

func FuzzMaskBody(f *testing.F) {
	f.Add("application/json", []byte(`{"access_token":"abcdefghijklmnopqrstuvwxyz","n":1}`))
	f.Add("application/x-www-form-urlencoded", []byte("password=abcdefghijklmnopqrstuvwxyz&x=%"))
	f.Add("application/json", []byte(`[{"token":["a"]}, 1e400, "\ud800"]`))
	f.Add("text/plain", []byte("\xff"))
	f.Add("application/problem+json; charset=utf-8", []byte(`{"detail":null}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		out := maskBody(ct, body)
		if !utf8.ValidString(out) && utf8.Valid(body) {
			t.Fatalf("invalid UTF-8 from valid input: %q", out)
		}
		if len(out) > 3*maxShownBody+64 && len(body) > 0 {
			t.Fatalf("%d bytes shown", len(out))
		}
		// A JWT-looking body decodes without panicking.
		_, _, _ = decodeJWT(string(body))
		_, _, _ = decodeJWT(base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(body) + ".x")
	})
}

// TestPasswordsFullyHidden: a password shows no character at all, in a form
// or a JSON body, however long it is.
func TestPasswordsFullyHidden(t *testing.T) {
	const pass = "correct horse battery staple"
	form := maskForm("username=u&password=" + strings.ReplaceAll(pass, " ", "+"))
	js, ok := maskJSON([]byte(`{"current_password":"` + pass + `","new_password":"` + pass + `"}`))
	if !ok {
		t.Fatal("JSON body not masked")
	}
	for _, out := range []string{form, js} {
		if strings.Contains(out, "correct") || strings.Contains(out, "aple") || !strings.Contains(out, "(28 characters hidden)") {
			t.Fatalf("password not fully hidden: %s", out)
		}
	}
}
