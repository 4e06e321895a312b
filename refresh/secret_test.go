package refresh

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseToken checks parseToken against an independent oracle: a token is
// accepted exactly when it is the canonical unpadded base64url encoding of 32
// bytes, and then its hash is SHA-256 of those bytes.
func FuzzParseToken(f *testing.F) {
	tok, _, err := newSecret()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		tok,
		strings.Repeat("A", 43),
		strings.Repeat("A", 42) + "B", // non-zero trailing bits
		strings.Repeat("_", 42) + "w",
		tok[:42],
		tok + "A",
		tok + "=",
		tok[:41] + "==",
		"+" + tok[1:],
		"/" + tok[1:],
		tok[:20] + "\n" + tok[21:],
		tok[:20] + "\r\n" + tok[20:],
		strings.Repeat("A", 65),
		strings.Repeat("A", 44),
		"",
		tok[:41] + "é",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hash, ok := parseToken(s)
		raw, err := base64.RawURLEncoding.DecodeString(s)
		canonical := err == nil && len(raw) == secretBytes && base64.RawURLEncoding.EncodeToString(raw) == s
		if ok != canonical {
			t.Fatalf("parseToken(%q) ok = %v, want %v", s, ok, canonical)
		}
		if !ok {
			if hash != nil {
				t.Fatalf("parseToken(%q) refused but returned a hash", s)
			}
			return
		}
		want := sha256.Sum256(raw)
		if !bytes.Equal(hash, want[:]) {
			t.Fatalf("parseToken(%q) hash %x, want %x", s, hash, want)
		}
	})
}

func TestRefreshNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := newSecret()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseToken(tok)
		if !ok || !bytes.Equal(got, hash) {
			t.Fatalf("parseToken(newSecret()) = %x, %v; want %x", got, ok, hash)
		}
		if seen[tok] {
			t.Fatalf("newSecret repeated %q", tok)
		}
		seen[tok] = true
	}
}
