package token_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/jws"
	"github.com/gatehouse-auth/gatehouse/token"
)

// publicEncodings returns the encodings of a public key an attacker would
// try as an HMAC secret: PEM, DER (SubjectPublicKeyInfo), raw bytes, JWK.
func publicEncodings(t *testing.T, k testKey) map[string][]byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	var jwk string
	switch pub := k.priv.Public().(type) {
	case ed25519.PublicKey:
		raw = pub
		jwk = `{"crv":"Ed25519","kty":"OKP","x":"` + b64(pub) + `"}`
	case *ecdsa.PublicKey:
		if raw, err = pub.Bytes(); err != nil {
			t.Fatal(err)
		}
		jwk = `{"crv":"P-256","kty":"EC","x":"` + b64(raw[1:33]) + `","y":"` + b64(raw[33:]) + `"}`
	case *rsa.PublicKey:
		raw = x509.MarshalPKCS1PublicKey(pub)
		jwk = `{"e":"AQAB","kty":"RSA","n":"` + b64(pub.N.Bytes()) + `"}`
	}
	return map[string][]byte{
		"PEM": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"DER": der,
		"raw": raw,
		"JWK": []byte(jwk),
	}
}

// reencodeStd re-encodes a segment in the standard alphabet, padded or not.
func reencodeStd(t *testing.T, seg string, padded bool) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if padded {
		return base64.StdEncoding.EncodeToString(b)
	}
	return base64.RawStdEncoding.EncodeToString(b)
}

// flipUnusedBit changes the last character of a segment so that it decodes
// to the same bytes with a non-zero unused trailing bit.
func flipUnusedBit(seg string) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alpha, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alpha[i^1])
}

type attack struct {
	name   string
	raw    string
	err    error  // nil: the token must verify
	reason string // part of token.Reason(err): the refusal is for the intended check
}

// TestAttackCatalogue runs the RFC 8725 attack catalogue, and the ways a
// token can be malformed, against the verifier. Every refusal must be the
// expected sentinel, for the expected reason; the valid baselines must
// verify, so that the table cannot pass by refusing everything.
func TestAttackCatalogue(t *testing.T) {
	ks := mustKeys(t)
	e := newEnv(t, trusted(ks), -1) // no cache: each case is verified from scratch
	now := e.clock.Now()
	ed, es, rs := ks["ed"], ks["es"], ks["rs"]
	good := claimsAt(now, "jti-good")
	hdr := header("EdDSA", "ed")
	valid := forge(t, ed, hdr, good)
	seg := strings.Split(valid, ".")

	// A signature segment that has both '-' and '_', to re-encode with '+' and '/'.
	var dashed []string
	for i := 0; dashed == nil; i++ {
		s := strings.Split(forge(t, ed, hdr, claimsAt(now, fmt.Sprintf("jti-%d", i))), ".")
		if strings.Contains(s[2], "-") && strings.Contains(s[2], "_") {
			dashed = s
		}
	}

	// A token whose payload segment has unused bits (its length is not a multiple of 4).
	var odd []string
	for i := 0; odd == nil; i++ {
		s := strings.Split(forge(t, ed, hdr, claimsAt(now, fmt.Sprintf("jti-%d", i))), ".")
		if len(s[1])%4 != 0 {
			odd = s
		}
	}

	claims := func(f string, args ...any) string { return fmt.Sprintf(f, args...) }
	exp, iat := now.Add(10*time.Minute).Unix(), now.Unix()
	withClaims := func(body string) string { return forge(t, ed, hdr, body) }
	std := func(iss, aud string) string {
		return claims(`{"iss":%s,"sub":"user-1","aud":%s,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`, iss, aud, exp, iat)
	}

	cases := []attack{
		// Baselines: these must pass.
		{name: "valid EdDSA", raw: valid},
		{name: "valid ES256", raw: forge(t, es, header("ES256", "es"), good)},
		{name: "valid RS256", raw: forge(t, rs, header("RS256", "rs"), good)},
		{name: "valid typ application/at+jwt", raw: forge(t, ed, `{"alg":"EdDSA","typ":"application/at+jwt","kid":"ed"}`, good)},
		{name: "valid aud array holding ours", raw: withClaims(std(`"`+testIssuer+`"`, `["other","`+testAudience+`"]`))},
		{name: "valid exp within leeway", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`,
			testIssuer, testAudience, now.Add(-29*time.Second).Unix(), now.Add(-10*time.Minute).Unix()))},
		{name: "valid nbf within leeway", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"nbf":%d,"jti":"j","sid":"s"}`,
			testIssuer, testAudience, exp, iat, now.Add(29*time.Second).Unix()))},
		{name: "valid unknown claims ignored", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s","cnf":{"jkt":"x"},"n":[1,2]}`,
			testIssuer, testAudience, exp, iat))},

		// alg none: by construction, the algorithm comes from the key.
		{name: "alg none, empty signature", raw: b64s(`{"alg":"none","typ":"at+jwt","kid":"ed"}`) + "." + seg[1] + ".", err: token.ErrInvalidToken, reason: "empty segment"},
		{name: "alg none, signature kept", raw: b64s(`{"alg":"none","typ":"at+jwt","kid":"ed"}`) + "." + seg[1] + "." + seg[2], err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "alg None", raw: b64s(`{"alg":"None","typ":"at+jwt","kid":"ed"}`) + "." + seg[1] + "." + seg[2], err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "alg NONE", raw: b64s(`{"alg":"NONE","typ":"at+jwt","kid":"ed"}`) + "." + seg[1] + "." + seg[2], err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "alg nOnE", raw: b64s(`{"alg":"nOnE","typ":"at+jwt","kid":"ed"}`) + "." + seg[1] + "." + seg[2], err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "alg none, no kid", raw: b64s(`{"alg":"none","typ":"at+jwt"}`) + "." + seg[1] + ".AA", err: token.ErrInvalidToken, reason: "no kid"},
		{name: "alg missing", raw: forge(t, ed, `{"typ":"at+jwt","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "no alg"},
		{name: "alg eddsa (case)", raw: forge(t, ed, header("eddsa", "ed"), good), err: token.ErrInvalidToken, reason: "alg does not match"},

		// A key of one algorithm used under another.
		{name: "ES256 header on the EdDSA kid", raw: forge(t, es, header("ES256", "ed"), good), err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "RS256 header on the EdDSA kid", raw: forge(t, rs, header("RS256", "ed"), good), err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "EdDSA header on the ES256 kid", raw: forge(t, ed, header("EdDSA", "es"), good), err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "EdDSA header on the RS256 kid", raw: forge(t, ed, header("EdDSA", "rs"), good), err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "RS256 header on the ES256 kid", raw: forge(t, rs, header("RS256", "es"), good), err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "ES256 header on the RS256 kid", raw: forge(t, es, header("ES256", "rs"), good), err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "PS256 header on the RS256 kid", raw: forge(t, rs, header("PS256", "rs"), good), err: token.ErrInvalidToken, reason: "alg does not match"},
		{name: "ES384 header on the ES256 kid", raw: forge(t, es, header("ES384", "es"), good), err: token.ErrInvalidToken, reason: "alg does not match"},

		// Signatures that are not ours.
		{name: "signed by another Ed25519 key", raw: forge(t, ks["evil-ed"], hdr, good), err: token.ErrInvalidToken, reason: "signature does not verify"},
		{name: "signed by another P-256 key", raw: forge(t, ks["evil-es"], header("ES256", "es"), good), err: token.ErrInvalidToken, reason: "signature does not verify"},
		{name: "signed by another RSA key", raw: forge(t, ks["evil-rs"], header("RS256", "rs"), good), err: token.ErrInvalidToken, reason: "signature"},
		{name: "claims changed after signing", raw: seg[0] + "." + b64s(claimsAt(now, "jti-other")) + "." + seg[2], err: token.ErrInvalidToken, reason: "signature does not verify"},
		{name: "header changed after signing", raw: b64s(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt"}`) + "." + seg[1] + "." + seg[2], err: token.ErrInvalidToken, reason: "signature does not verify"},
		{name: "signature of another token", raw: seg[0] + "." + seg[1] + "." + dashed[2], err: token.ErrInvalidToken, reason: "signature does not verify"},
		{name: "ES256 signature in DER", raw: func() string {
			input := b64s(header("ES256", "es")) + "." + b64s(good)
			raw := sign(t, es, input)
			return input + "." + b64(derOf(raw))
		}(), err: token.ErrInvalidToken, reason: "wrong length"},

		// kid.
		{name: "kid missing", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt"}`, good), err: token.ErrInvalidToken, reason: "no kid"},
		{name: "kid empty", raw: forge(t, ed, header("EdDSA", ""), good), err: token.ErrInvalidToken, reason: "no kid"},
		{name: "kid unknown", raw: forge(t, ed, header("EdDSA", "nope"), good), err: token.ErrInvalidToken, reason: "no published key"},
		{name: "kid of the attacker's key", raw: forge(t, ks["evil-ed"], header("EdDSA", "evil-ed"), good), err: token.ErrInvalidToken, reason: "no published key"},
		{name: "kid numeric", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":1}`, good), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "kid null", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":null}`, good), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "kid path traversal", raw: forge(t, ed, header("EdDSA", "../../dev/null"), good), err: token.ErrInvalidToken, reason: "no published key"},

		// Headers that bring their own key, or extensions.
		{name: "jwk header with the attacker's key", raw: forge(t, ks["evil-ed"],
			`{"alg":"EdDSA","typ":"at+jwt","kid":"ed","jwk":{"kty":"OKP","crv":"Ed25519","x":"`+b64(ks["evil-ed"].priv.Public().(ed25519.PublicKey))+`"}}`, good),
			err: token.ErrInvalidToken, reason: "names a key"},
		{name: "jku header", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","jku":"https://evil.example/jwks.json"}`, good), err: token.ErrInvalidToken, reason: "names a key"},
		{name: "x5u header", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","x5u":"https://evil.example/cert.pem"}`, good), err: token.ErrInvalidToken, reason: "names a key"},
		{name: "x5c header", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","x5c":["MIIBszCCAVmgAwIBAgIU"]}`, good), err: token.ErrInvalidToken, reason: "names a key"},
		{name: "x5t header", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","x5t":"dGhpcyBpcyBhIHRlc3Q"}`, good), err: token.ErrInvalidToken, reason: "names a key"},
		{name: "crit with an unknown member", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","crit":["exp2"],"exp2":1}`, good), err: token.ErrInvalidToken, reason: "crit"},
		{name: "b64 false", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","b64":false,"crit":["b64"]}`, good), err: token.ErrInvalidToken, reason: "b64"},
		{name: "unknown header member", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","zip":"DEF"}`, good), err: token.ErrInvalidToken, reason: "unknown member"},

		// typ.
		{name: "typ missing", raw: forge(t, ed, `{"alg":"EdDSA","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "typ"},
		{name: "typ JWT (an ID token or other JWT)", raw: forge(t, ed, `{"alg":"EdDSA","typ":"JWT","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "typ"},
		{name: "typ AT+JWT", raw: forge(t, ed, `{"alg":"EdDSA","typ":"AT+JWT","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "typ"},
		{name: "typ at+JWT", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+JWT","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "typ"},
		{name: "typ dpop+jwt", raw: forge(t, ed, `{"alg":"EdDSA","typ":"dpop+jwt","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "typ"},
		{name: "typ number", raw: forge(t, ed, `{"alg":"EdDSA","typ":1,"kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "wrong type"},

		// iss and aud.
		{name: "wrong iss", raw: withClaims(std(`"https://evil.example.com"`, `"`+testAudience+`"`)), err: token.ErrInvalidToken, reason: "iss does not match"},
		{name: "iss with a trailing slash", raw: withClaims(std(`"`+testIssuer+`/"`, `"`+testAudience+`"`)), err: token.ErrInvalidToken, reason: "iss does not match"},
		{name: "iss in upper case", raw: withClaims(std(`"`+strings.ToUpper(testIssuer)+`"`, `"`+testAudience+`"`)), err: token.ErrInvalidToken, reason: "iss does not match"},
		{name: "iss missing", raw: withClaims(claims(`{"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "iss missing"},
		{name: "iss array", raw: withClaims(std(`["`+testIssuer+`"]`, `"`+testAudience+`"`)), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "wrong aud", raw: withClaims(std(`"`+testIssuer+`"`, `"other.example.com"`)), err: token.ErrInvalidToken, reason: "aud does not match"},
		{name: "aud array without ours", raw: withClaims(std(`"`+testIssuer+`"`, `["a","b"]`)), err: token.ErrInvalidToken, reason: "aud does not match"},
		{name: "aud empty array", raw: withClaims(std(`"`+testIssuer+`"`, `[]`)), err: token.ErrInvalidToken, reason: "aud does not match"},
		{name: "aud prefix of ours", raw: withClaims(std(`"`+testIssuer+`"`, `"api.example"`)), err: token.ErrInvalidToken, reason: "aud does not match"},
		{name: "aud array of non-strings", raw: withClaims(std(`"`+testIssuer+`"`, `[1]`)), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "aud missing", raw: withClaims(claims(`{"iss":%q,"sub":"u","exp":%d,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, exp, iat)), err: token.ErrInvalidToken, reason: "aud missing"},

		// Times.
		{name: "exp missing", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, iat)), err: token.ErrInvalidToken, reason: "exp missing"},
		{name: "exp past the leeway", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`,
			testIssuer, testAudience, now.Add(-30*time.Second).Unix(), now.Add(-10*time.Minute).Unix())), err: token.ErrExpired, reason: "exp passed"},
		{name: "exp as a string", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":"%d","iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "exp with a fraction", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d.5,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "exp huge", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":1e400,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, iat)), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "exp before iat", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, iat, exp)), err: token.ErrInvalidToken, reason: "exp is not after iat"},
		{name: "exp equal to iat", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, exp, exp)), err: token.ErrInvalidToken, reason: "exp is not after iat"},
		{name: "nbf in the future past the leeway", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"nbf":%d,"jti":"j","sid":"s"}`,
			testIssuer, testAudience, exp, iat, now.Add(31*time.Second).Unix())), err: token.ErrInvalidToken, reason: "nbf"},
		{name: "iat in the future past the leeway", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`,
			testIssuer, testAudience, exp, now.Add(31*time.Second).Unix())), err: token.ErrInvalidToken, reason: "iat is in the future"},
		{name: "iat missing", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, exp)), err: token.ErrInvalidToken, reason: "iat missing"},

		// Required identifiers.
		{name: "jti missing", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"sid":"s"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "jti"},
		{name: "jti empty", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"","sid":"s"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "jti"},
		{name: "sid missing", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "sid"},
		{name: "sub missing", raw: withClaims(claims(`{"iss":%q,"aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "sub"},
		{name: "sub number", raw: withClaims(claims(`{"iss":%q,"sub":1,"aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "wrong type"},
		{name: "roles not strings", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s","roles":[{"admin":true}]}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "wrong type"},

		// Duplicate and case-variant members.
		{name: "duplicate alg in header", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","alg":"none"}`, good), err: token.ErrInvalidToken, reason: "duplicate"},
		{name: "case-variant ALG in header", raw: forge(t, ed, `{"alg":"EdDSA","ALG":"none","typ":"at+jwt","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "duplicate"},
		{name: "case-variant Alg alone", raw: forge(t, ed, `{"Alg":"EdDSA","typ":"at+jwt","kid":"ed"}`, good), err: token.ErrInvalidToken, reason: "unknown member"},
		{name: "escaped duplicate kid", raw: forge(t, ed, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed","\u006bid":"rs"}`, good), err: token.ErrInvalidToken, reason: "duplicate"},
		{name: "duplicate sub in claims", raw: withClaims(claims(`{"iss":%q,"sub":"user-1","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s","sub":"admin"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "duplicate"},
		{name: "case-variant SUB in claims", raw: withClaims(claims(`{"iss":%q,"sub":"user-1","SUB":"admin","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s"}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "duplicate"},
		{name: "duplicate exp in claims", raw: withClaims(claims(`{"iss":%q,"sub":"u","aud":%q,"exp":%d,"iat":%d,"jti":"j","sid":"s","exp":99999999999}`, testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "duplicate"},
		{name: "claims not an object", raw: withClaims(`["iss"]`), err: token.ErrInvalidToken, reason: "not an object"},
		{name: "claims with invalid UTF-8", raw: withClaims(claims("{\"iss\":%q,\"sub\":\"u\xff\",\"aud\":%q,\"exp\":%d,\"iat\":%d,\"jti\":\"j\",\"sid\":\"s\"}", testIssuer, testAudience, exp, iat)), err: token.ErrInvalidToken, reason: "UTF-8"},
		{name: "claims with trailing data", raw: withClaims(good + "{}"), err: token.ErrInvalidToken, reason: "after the JSON"},

		// Encoding.
		{name: "padding on the signature", raw: seg[0] + "." + seg[1] + "." + seg[2] + "==", err: token.ErrInvalidToken, reason: "padding"},
		{name: "padding on the header", raw: paddedHeader(hdr) + "." + seg[1] + "." + seg[2], err: token.ErrInvalidToken, reason: "padding"},
		{name: "standard alphabet '+'", raw: dashed[0] + "." + dashed[1] + "." + strings.ReplaceAll(dashed[2], "-", "+"), err: token.ErrInvalidToken, reason: "alphabet"},
		{name: "standard alphabet '/'", raw: dashed[0] + "." + dashed[1] + "." + strings.ReplaceAll(dashed[2], "_", "/"), err: token.ErrInvalidToken, reason: "alphabet"},
		{name: "standard alphabet, padded", raw: dashed[0] + "." + dashed[1] + "." + reencodeStd(t, dashed[2], true), err: token.ErrInvalidToken, reason: "alphabet"},
		{name: "trailing bit changed on the signature", raw: seg[0] + "." + seg[1] + "." + flipUnusedBit(seg[2]), err: token.ErrInvalidToken, reason: "trailing bits"},
		{name: "trailing bit changed on the payload", raw: odd[0] + "." + flipUnusedBitOf(t, odd[1]) + "." + odd[2], err: token.ErrInvalidToken, reason: "trailing bits"},
		{name: "line break inside", raw: seg[0] + "." + seg[1][:20] + "\n" + seg[1][20:] + "." + seg[2], err: token.ErrInvalidToken, reason: "alphabet"},
		{name: "blank around", raw: " " + valid, err: token.ErrInvalidToken, reason: "alphabet"},
		{name: "Bearer prefix left in", raw: "Bearer " + valid, err: token.ErrInvalidToken, reason: "alphabet"},
		{name: "extra segment", raw: valid + "." + seg[2], err: token.ErrInvalidToken, reason: "three segments"},
		{name: "JWE-like five segments", raw: seg[0] + ".." + seg[1] + ".." + seg[2], err: token.ErrInvalidToken, reason: "three segments"},
		{name: "two segments", raw: seg[0] + "." + seg[1], err: token.ErrInvalidToken, reason: "three segments"},
		{name: "trailing dot", raw: valid + ".", err: token.ErrInvalidToken, reason: "three segments"},
		{name: "empty header", raw: "." + seg[1] + "." + seg[2], err: token.ErrInvalidToken, reason: "empty segment"},
		{name: "empty payload", raw: seg[0] + ".." + seg[2], err: token.ErrInvalidToken, reason: "empty segment"},
		{name: "empty signature", raw: seg[0] + "." + seg[1] + ".", err: token.ErrInvalidToken, reason: "empty segment"},
		{name: "empty token", raw: "", err: token.ErrInvalidToken, reason: "three segments"},
		{name: "JSON serialization", raw: `{"payload":"` + seg[1] + `","protected":"` + seg[0] + `","signature":"` + seg[2] + `"}`, err: token.ErrInvalidToken, reason: "JSON serialization"},
		{name: "flattened JSON with signatures", raw: `{"payload":"` + seg[1] + `","signatures":[{"protected":"` + seg[0] + `","signature":"` + seg[2] + `"}]}`, err: token.ErrInvalidToken, reason: "JSON serialization"},
		{name: "header not JSON", raw: forge(t, ed, `alg=EdDSA`, good), err: token.ErrInvalidToken, reason: "header"},
		{name: "oversized (1 MiB)", raw: seg[0] + "." + strings.Repeat("A", 1<<20) + "." + seg[2], err: token.ErrInvalidToken, reason: "larger than 8 KiB"},
		{name: "just over the size limit", raw: valid + strings.Repeat("A", jws.MaxSize+1-len(valid)), err: token.ErrInvalidToken, reason: "larger than 8 KiB"},
	}

	// HS256 keyed with our public keys, in every encoding.
	for _, kid := range []string{"ed", "es", "rs"} {
		for enc, secret := range publicEncodings(t, ks[kid]) {
			cases = append(cases, attack{
				name: fmt.Sprintf("HS256 keyed with the %s key as %s", kid, enc),
				raw:  hs256(header("HS256", kid), good, secret),
				err:  token.ErrInvalidToken, reason: "alg does not match",
			})
		}
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.verifier.Verify(t.Context(), tc.raw)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("baseline refused: %v", err)
				}
				if c.Subject == "" || c.Issuer != testIssuer || c.Audience != testAudience {
					t.Fatalf("baseline claims %+v", c)
				}
				return
			}
			if c != nil {
				t.Fatalf("refused token returned claims %+v", c)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Verify: %v, want %v", err, tc.err)
			}
			for _, other := range []error{token.ErrInvalidToken, token.ErrExpired, token.ErrRevoked} {
				if other != tc.err && errors.Is(err, other) {
					t.Fatalf("Verify: %v is also %v", err, other)
				}
			}
			if r := token.Reason(err); !strings.Contains(r, tc.reason) {
				t.Fatalf("refused for %q, want a reason with %q", r, tc.reason)
			}
		})
	}
}

// paddedHeader encodes a header (with trailing blanks, which JSON allows)
// in padded base64url.
func paddedHeader(h string) string {
	for !strings.Contains(base64.URLEncoding.EncodeToString([]byte(h)), "=") {
		h += " "
	}
	return base64.URLEncoding.EncodeToString([]byte(h))
}

// derOf encodes a 64-byte R||S signature as ASN.1 DER.
func derOf(raw []byte) []byte {
	enc := func(b []byte) []byte {
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(enc(raw[:32]), enc(raw[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// flipUnusedBitOf is flipUnusedBit for a segment that has unused bits.
func flipUnusedBitOf(t *testing.T, seg string) string {
	t.Helper()
	if len(seg)%4 == 0 {
		t.Fatalf("segment %q has no unused bits", seg)
	}
	return flipUnusedBit(seg)
}

// TestRevocationCatalogue checks the revoked cases: by jti, by sid, by the
// user's revoke-all time, each refused as ErrRevoked, cached or not.
func TestRevocationCatalogue(t *testing.T) {
	ks := mustKeys(t)
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			size := -1
			if cached {
				size = 100
			}
			now := t0
			tok := func(jti, sid, sub string, iat time.Time) string {
				return forge(t, ks["ed"], header("EdDSA", "ed"), fmt.Sprintf(
					`{"iss":%q,"sub":%q,"aud":%q,"exp":%d,"iat":%d,"jti":%q,"sid":%q}`,
					testIssuer, sub, testAudience, iat.Add(10*time.Minute).Unix(), iat.Unix(), jti, sid))
			}
			cases := []struct {
				name   string
				raw    string
				revoke func(e *env) error
				err    error
			}{
				{"jti denylisted", tok("j1", "s1", "u1", now), func(e *env) error {
					return e.revoked.DenyToken(t.Context(), "j1", now.Add(10*time.Minute))
				}, token.ErrRevoked},
				{"sid revoked", tok("j2", "s2", "u2", now), func(e *env) error {
					return e.revoked.RevokeSID(t.Context(), "s2", now.Add(10*time.Minute))
				}, token.ErrRevoked},
				{"issued before the user's revoke-all", tok("j3", "s3", "u3", now.Add(-time.Minute)), func(e *env) error {
					return e.revoked.RevokeUser(t.Context(), "u3", now, now.Add(10*time.Minute))
				}, token.ErrRevoked},
				{"issued after the user's revoke-all", tok("j4", "s4", "u4", now.Add(time.Second)), func(e *env) error {
					return e.revoked.RevokeUser(t.Context(), "u4", now, now.Add(10*time.Minute))
				}, nil},
				{"another jti denylisted", tok("j5", "s5", "u5", now), func(e *env) error {
					return e.revoked.DenyToken(t.Context(), "j5-other", now.Add(10*time.Minute))
				}, nil},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, trusted(ks), size)
					e.clock.Set(now.Add(2 * time.Second))
					if _, err := e.verifier.Verify(t.Context(), tc.raw); err != nil {
						t.Fatalf("before revocation: %v", err)
					}
					if err := tc.revoke(e); err != nil {
						t.Fatal(err)
					}
					_, err := e.verifier.Verify(t.Context(), tc.raw)
					if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
						t.Fatalf("after revocation: %v, want %v", err, tc.err)
					}
				})
			}
		})
	}
}
