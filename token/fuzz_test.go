package token_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/token"
)

// FuzzVerify feeds the verifier arbitrary strings, seeded with valid tokens
// of each algorithm and with malformed ones. It must never panic; every
// refusal must be exactly one of the three sentinels; and the only strings
// it may accept are the valid seeds themselves: anything else it accepted
// would be a forgery.
func FuzzVerify(f *testing.F) {
	ks := mustKeys(f)
	e := newEnv(f, trusted(ks), 16)
	good := claimsAt(t0, "jti-fuzz")
	valid := map[string]bool{}
	for kid, alg := range map[string]string{"ed": "EdDSA", "es": "ES256", "rs": "RS256"} {
		raw := forge(f, ks[kid], header(alg, kid), good)
		valid[raw] = true
		f.Add(raw)
	}
	ed := forge(f, ks["ed"], header("EdDSA", "ed"), good)
	seg := strings.Split(ed, ".")
	for _, s := range []string{
		"", ".", "..", "...", ed + ".", ed + "=", seg[0] + "." + seg[1],
		b64s(`{"alg":"none","typ":"at+jwt","kid":"ed"}`) + "." + seg[1] + ".",
		hs256(header("HS256", "ed"), good, []byte("secret")),
		forge(f, ks["ed"], `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","alg":"none"}`, good),
		forge(f, ks["ed"], `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","jwk":{}}`, good),
		forge(f, ks["ed"], header("EdDSA", "ed"), `{"sub":"a","sub":"b"}`),
		forge(f, ks["ed"], header("EdDSA", "ed"), `{"iss":1}`),
		forge(f, ks["ed"], header("EdDSA", "ed"), `[]`),
		`{"payload":"` + seg[1] + `","signature":"` + seg[2] + `"}`,
		seg[0] + "." + seg[1] + "." + strings.ReplaceAll(seg[2], "-", "+"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := e.verifier.Verify(t.Context(), raw)
		if err == nil {
			if !valid[raw] {
				t.Fatalf("accepted a token that was never signed: %q", raw)
			}
			if c == nil || c.Subject != "user-1" {
				t.Fatalf("accepted with claims %+v", c)
			}
			return
		}
		if c != nil {
			t.Fatalf("refused (%v) with claims", err)
		}
		n := 0
		for _, s := range []error{token.ErrInvalidToken, token.ErrExpired, token.ErrRevoked} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %v is %d of the sentinels, want exactly one", err, n)
		}
	})
}
