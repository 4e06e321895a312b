package csrf

import (
	"bytes"
	"net/http"
	"testing"
)

func TestValid(t *testing.T) {
	keyA := bytes.Repeat([]byte{1}, 32)
	keyB := bytes.Repeat([]byte{2}, 32)
	tokA := Token(keyA)
	if len(tokA) != 43 {
		t.Fatalf("token length %d, want 43", len(tokA))
	}
	cases := []struct {
		name      string
		key       []byte
		presented string
		want      bool
	}{
		{"own token", keyA, tokA, true},
		{"empty token", keyA, "", false},
		{"token of another session", keyB, tokA, false},
		{"truncated token", keyA, tokA[:42], false},
		{"token with extra byte", keyA, tokA + "A", false},
		{"one character changed", keyA, flip(tokA), false},
		{"oversized token", keyA, string(bytes.Repeat([]byte("A"), 4096)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Valid(tc.key, tc.presented); got != tc.want {
				t.Fatalf("Valid = %v, want %v", got, tc.want)
			}
		})
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestTokenDiffersPerKey(t *testing.T) {
	if Token(bytes.Repeat([]byte{1}, 32)) == Token(bytes.Repeat([]byte{3}, 32)) {
		t.Fatal("two keys derived the same token")
	}
}

func TestUnsafe(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, "PROPFIND"} {
		if !Unsafe(m) {
			t.Errorf("Unsafe(%s) = false", m)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace} {
		if Unsafe(m) {
			t.Errorf("Unsafe(%s) = true", m)
		}
	}
}
