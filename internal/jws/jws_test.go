package jws

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var enc = base64.RawURLEncoding.EncodeToString

// compact joins a header JSON, a payload and a signature into a token.
func compact(header, payload string, sig []byte) string {
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

const goodHeader = `{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}`

var sig64 = bytes.Repeat([]byte{0xA5}, 64)

// flipUnusedBit changes the last character of a base64url segment so that
// it decodes to the same bytes plus a non-zero unused trailing bit.
func flipUnusedBit(seg string) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alpha, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alpha[last^1])
}

func TestParse(t *testing.T) {
	good := compact(goodHeader, `{"sub":"u"}`, sig64)
	segs := strings.Split(good, ".")
	cases := []struct {
		name string
		raw  string
		err  error
	}{
		{"valid", good, nil},
		{"typ absent is for the caller to refuse", compact(`{"alg":"EdDSA","kid":"k1"}`, `{}`, sig64), nil},
		{"too large", good + strings.Repeat("A", MaxSize), errTooLarge},
		{"json serialization", `{"payload":"` + segs[1] + `","protected":"` + segs[0] + `","signature":"` + segs[2] + `"}`, errJSONForm},
		{"two segments", segs[0] + "." + segs[1], errSegments},
		{"four segments", good + "." + segs[2], errSegments},
		{"five segments (JWE)", good + ".AAAA.BBBB", errSegments},
		{"one segment", segs[0], errSegments},
		{"empty string", "", errSegments},
		{"empty header", "." + segs[1] + "." + segs[2], errEmptySegment},
		{"empty payload", segs[0] + ".." + segs[2], errEmptySegment},
		{"empty signature", segs[0] + "." + segs[1] + ".", errEmptySegment},
		{"only dots", "..", errEmptySegment},
		{"padding", segs[0] + "." + segs[1] + "." + segs[2] + "==", errPadding},
		{"padded header", enc([]byte(goodHeader)) + "=." + segs[1] + "." + segs[2], errPadding},
		{"plus", segs[0] + "." + segs[1] + "." + strings.Replace(segs[2], "-", "+", 1) + "+", errAlphabet},
		{"slash", segs[0] + "." + segs[1] + ".a/" + segs[2], errAlphabet},
		{"newline inside (base64 would skip it)", segs[0] + "." + segs[1] + "." + segs[2][:10] + "\n" + segs[2][10:], errAlphabet},
		{"carriage return", segs[0] + "\r." + segs[1] + "." + segs[2], errAlphabet},
		{"space", segs[0] + ". " + segs[1] + "." + segs[2], errAlphabet},
		{"non-ascii", segs[0] + "." + segs[1] + "é." + segs[2], errAlphabet},
		{"non-canonical signature trailing bits", segs[0] + "." + segs[1] + "." + flipUnusedBit(segs[2]), errBase64},
		{"non-canonical header trailing bits", flipUnusedBit(segs[0]) + "." + segs[1] + "." + segs[2], errBase64},
		{"impossible base64 length", segs[0] + "." + segs[1] + "." + segs[2] + "AAA", errBase64},
		{"header not json", compact(`alg=EdDSA`, `{}`, sig64), errHeaderJSON},
		{"header json array", compact(`["alg","EdDSA"]`, `{}`, sig64), errHeaderJSON},
		{"header trailing data", compact(goodHeader+`x`, `{}`, sig64), errHeaderJSON},
		{"duplicate alg", compact(`{"alg":"EdDSA","alg":"none","kid":"k1"}`, `{}`, sig64), errHeaderJSON},
		{"case-variant ALG after alg", compact(`{"alg":"EdDSA","ALG":"none","kid":"k1"}`, `{}`, sig64), errHeaderJSON},
		{"escaped duplicate kid", compact(`{"alg":"EdDSA","kid":"k1","\u006bid":"k2"}`, `{}`, sig64), errHeaderJSON},
		{"Alg alone", compact(`{"Alg":"EdDSA","kid":"k1"}`, `{}`, sig64), errHeaderUnknown},
		{"unknown member", compact(`{"alg":"EdDSA","kid":"k1","foo":"bar"}`, `{}`, sig64), errHeaderUnknown},
		{"cty", compact(`{"alg":"EdDSA","kid":"k1","cty":"JWT"}`, `{}`, sig64), errHeaderUnknown},
		{"jwk", compact(`{"alg":"EdDSA","kid":"k1","jwk":{"kty":"OKP"}}`, `{}`, sig64), errHeaderNamesKey},
		{"jku", compact(`{"alg":"EdDSA","kid":"k1","jku":"https://evil.example/jwks"}`, `{}`, sig64), errHeaderNamesKey},
		{"x5u", compact(`{"alg":"EdDSA","kid":"k1","x5u":"https://evil.example/cert"}`, `{}`, sig64), errHeaderNamesKey},
		{"x5c", compact(`{"alg":"EdDSA","kid":"k1","x5c":["MIIB"]}`, `{}`, sig64), errHeaderNamesKey},
		{"x5t", compact(`{"alg":"EdDSA","kid":"k1","x5t":"abc"}`, `{}`, sig64), errHeaderNamesKey},
		{"x5t#S256", compact(`{"alg":"EdDSA","kid":"k1","x5t#S256":"abc"}`, `{}`, sig64), errHeaderNamesKey},
		{"crit", compact(`{"alg":"EdDSA","kid":"k1","crit":["exp"]}`, `{}`, sig64), errHeaderCrit},
		{"crit empty", compact(`{"alg":"EdDSA","kid":"k1","crit":[]}`, `{}`, sig64), errHeaderCrit},
		{"b64 false", compact(`{"alg":"EdDSA","kid":"k1","b64":false,"crit":["b64"]}`, `{}`, sig64), errHeaderB64},
		{"b64 true", compact(`{"alg":"EdDSA","kid":"k1","b64":true}`, `{}`, sig64), errHeaderB64},
		{"kid number", compact(`{"alg":"EdDSA","kid":1}`, `{}`, sig64), errHeaderType},
		{"kid null", compact(`{"alg":"EdDSA","kid":null}`, `{}`, sig64), errHeaderType},
		{"kid array", compact(`{"alg":"EdDSA","kid":["k1"]}`, `{}`, sig64), errHeaderType},
		{"alg object", compact(`{"alg":{"name":"EdDSA"},"kid":"k1"}`, `{}`, sig64), errHeaderType},
		{"typ number", compact(`{"alg":"EdDSA","kid":"k1","typ":1}`, `{}`, sig64), errHeaderType},
		{"no kid", compact(`{"alg":"EdDSA"}`, `{}`, sig64), errNoKid},
		{"empty kid", compact(`{"alg":"EdDSA","kid":""}`, `{}`, sig64), errNoKid},
		{"no alg", compact(`{"kid":"k1"}`, `{}`, sig64), errNoAlg},
		{"empty alg", compact(`{"alg":"","kid":"k1"}`, `{}`, sig64), errNoAlg},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.raw)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse: error %v, want %v", err, tc.err)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	raw := compact(`{"kid":"k\u0031","alg":"ES256","typ":"at+jwt"}`, `{"sub":"u"}`, sig64)
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Header != (Header{Alg: "ES256", Kid: "k1", Typ: "at+jwt"}) {
		t.Errorf("header = %+v", got.Header)
	}
	if string(got.Payload) != `{"sub":"u"}` || !bytes.Equal(got.Signature, sig64) {
		t.Errorf("payload %q signature %x", got.Payload, got.Signature)
	}
	if want := raw[:strings.LastIndexByte(raw, '.')]; string(got.SigningInput) != want {
		t.Errorf("signing input %q, want %q", got.SigningInput, want)
	}
}

// TestParseHugeIsQuick checks that a 1 MiB token is refused by its size,
// before any decoding: it must cost far less than decoding 1 MiB would.
func TestParseHugeIsQuick(t *testing.T) {
	huge := strings.Repeat("A", 1<<20) + "." + "A" + "." + "A"
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if _, err := Parse(huge); !errors.Is(err, errTooLarge) {
				b.Fatalf("Parse: %v", err)
			}
		}
	})
	if per := time.Duration(res.NsPerOp()); per > time.Microsecond {
		t.Fatalf("refusing a 1 MiB token took %v per call; it must not read the token", per)
	}
	if res.AllocsPerOp() != 0 {
		t.Fatalf("refusing a 1 MiB token allocated %d times", res.AllocsPerOp())
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts is
// canonical: re-encoding the parts gives back the exact input, so one token
// has one spelling.
func FuzzParse(f *testing.F) {
	good := compact(goodHeader, `{"sub":"u"}`, sig64)
	segs := strings.Split(good, ".")
	for _, s := range []string{
		good, "", ".", "..", "...", good + ".", segs[0] + "." + segs[1], good + "==",
		flipUnusedBit(good), segs[0] + ".\n" + segs[1] + "." + segs[2],
		compact(`{"alg":"none","kid":"k"}`, `{}`, nil),
		compact(`{"alg":"EdDSA","alg":"EdDSA","kid":"k"}`, `{}`, sig64),
		compact(`{"alg":"EdDSA","kid":"k","jwk":{}}`, `{}`, sig64),
		compact(`{"alg":"EdDSA","kid":"k","crit":["x"],"x":1}`, `{}`, sig64),
		`{"payload":"e30","signatures":[]}`,
		compact(`{"alg":"EdDSA","kid":"\ud800"}`, `{}`, sig64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := Parse(raw)
		if err != nil {
			if got.Header != (Header{}) || got.Payload != nil || got.Signature != nil || got.SigningInput != nil {
				t.Fatalf("Parse(%q) failed (%v) but returned parts", raw, err)
			}
			return
		}
		if len(raw) > MaxSize {
			t.Fatalf("accepted %d bytes", len(raw))
		}
		segs := strings.Split(raw, ".")
		if len(segs) != 3 {
			t.Fatalf("accepted %q: %d segments", raw, len(segs))
		}
		header, err := base64.RawURLEncoding.DecodeString(segs[0])
		if err != nil {
			t.Fatalf("accepted header segment %q: %v", segs[0], err)
		}
		rebuilt := enc(header) + "." + enc(got.Payload) + "." + enc(got.Signature)
		if rebuilt != raw {
			t.Fatalf("accepted %q, which is not canonical (re-encoded %q)", raw, rebuilt)
		}
		if string(got.SigningInput) != segs[0]+"."+segs[1] {
			t.Fatalf("signing input %q", got.SigningInput)
		}
		if got.Header.Alg == "" || got.Header.Kid == "" {
			t.Fatalf("accepted header %+v", got.Header)
		}
		var h map[string]any
		if err := json.Unmarshal(header, &h); err != nil {
			t.Fatalf("accepted header %q that encoding/json refuses: %v", header, err)
		}
		for name := range h {
			switch name {
			case "alg", "kid", "typ":
			default:
				t.Fatalf("accepted header member %q in %q", name, header)
			}
		}
		if h["alg"] != got.Header.Alg || h["kid"] != got.Header.Kid {
			t.Fatalf("header %q parsed as %+v", header, got.Header)
		}
	})
}
