package credential

import (
	"net/http/httptest"
	"testing"
)

func TestScan(t *testing.T) {
	n := NamesFor(false)
	cases := []struct {
		name   string
		cookie []string
		auth   []string
		kind   Kind
		value  string
		err    error
	}{
		{name: "nothing", kind: None},
		{name: "session cookie", cookie: []string{"__Host-gh_session=abc"}, kind: Session, value: "abc"},
		{name: "access cookie among others", cookie: []string{"a=1; __Host-gh_access=x.y.z ; b=2"}, kind: Access, value: "x.y.z"},
		{name: "cookies over two headers", cookie: []string{"a=1", "__Host-gh_session=s"}, kind: Session, value: "s"},
		{name: "bearer", auth: []string{"Bearer a.b.c"}, kind: Bearer, value: "a.b.c"},
		{name: "dev names are not ours in secure mode", cookie: []string{"gh_session=abc"}, kind: None},
		{name: "refresh cookie does not count", cookie: []string{"__Secure-gh_refresh=r"}, kind: None},
		{name: "case variant", cookie: []string{"__host-gh_session=abc"}, err: ErrCaseVariant},
		{name: "duplicate session", cookie: []string{"__Host-gh_session=a; __Host-gh_session=a"}, err: ErrDuplicate},
		{name: "duplicate over two headers", cookie: []string{"__Host-gh_access=a", "__Host-gh_access=b"}, err: ErrDuplicate},
		{name: "session and access", cookie: []string{"__Host-gh_session=a; __Host-gh_access=b"}, err: ErrTwoCredentials},
		{name: "cookie and bearer", cookie: []string{"__Host-gh_session=a"}, auth: []string{"Bearer x"}, err: ErrTwoCredentials},
		{name: "two authorization headers", auth: []string{"Bearer x", "Bearer y"}, err: ErrTwoAuthorization},
		{name: "basic auth", auth: []string{"Basic dXNlcjpwYXNz"}, err: ErrMalformedAuthorization},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, c := range tc.cookie {
				r.Header.Add("Cookie", c)
			}
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			p, err := Scan(r, n)
			if err != tc.err {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err == nil && (p.Kind != tc.kind || p.Value != tc.value) {
				t.Fatalf("got %+v, want kind %v value %q", p, tc.kind, tc.value)
			}
		})
	}
}

func TestParseBearer(t *testing.T) {
	cases := map[string]bool{
		"Bearer abc": true, "bearer a.b.c": true, "BEARER x==": true, "Bearer a=b": false,
		"Bearer =": false, "Bearer  a": false, "Bearer": false, "Bearer a b": false, "Basic abc": false,
	}
	for h, ok := range cases {
		if _, got := ParseBearer(h); got != ok {
			t.Errorf("ParseBearer(%q) ok = %v, want %v", h, got, ok)
		}
	}
}
