package jws

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// member is what ScanObject reported for one member.
type member struct {
	name string
	kind Kind
	raw  string
}

func scanAll(data []byte) ([]member, error) {
	var got []member
	err := ScanObject(data, func(name []byte, v Value) error {
		got = append(got, member{string(name), v.Kind, string(v.Raw)})
		return nil
	})
	return got, err
}

func TestScanObject(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		want  []member // nil with a nil err means the empty object
		err   error
		names []string // checked instead of want when set
	}{
		{name: "empty object", in: `{}`},
		{name: "blanks around", in: " \t\r\n{ } \n"},
		{name: "flat members", in: `{"a":"x","b":12,"c":true,"d":null,"e":[1,"2"],"f":{"g":[]}}`,
			want: []member{{"a", KindString, `"x"`}, {"b", KindNumber, `12`}, {"c", KindBool, `true`},
				{"d", KindNull, `null`}, {"e", KindArray, `[1,"2"]`}, {"f", KindObject, `{"g":[]}`}}},
		{name: "escaped name decoded", in: `{"\u0061lg":1}`, want: []member{{"alg", KindNumber, "1"}}},
		{name: "surrogate pair", in: `{"\ud83d\ude00":-0.5e+3}`, want: []member{{"😀", KindNumber, "-0.5e+3"}}},
		{name: "duplicate", in: `{"sub":"a","sub":"b"}`, err: errJSONDuplicate},
		{name: "case variant", in: `{"alg":"a","ALG":"b"}`, err: errJSONDuplicate},
		{name: "escaped duplicate", in: `{"alg":"a","\u0061lg":"b"}`, err: errJSONDuplicate},
		{name: "kelvin sign folds to k", in: `{"kid":"a","\u212aid":"b"}`, err: errJSONDuplicate},
		{name: "nested duplicates are not members", in: `{"a":{"x":1,"x":2}}`,
			want: []member{{"a", KindObject, `{"x":1,"x":2}`}}},
		{name: "array", in: `[]`, err: errJSONNotObject},
		{name: "string", in: `"x"`, err: errJSONNotObject},
		{name: "empty input", in: ``, err: errJSONSyntax},
		{name: "trailing data", in: `{}x`, err: errJSONTrailing},
		{name: "two objects", in: `{}{}`, err: errJSONTrailing},
		{name: "trailing comma", in: `{"a":1,}`, err: errJSONSyntax},
		{name: "missing colon", in: `{"a" 1}`, err: errJSONSyntax},
		{name: "single quotes", in: `{'a':1}`, err: errJSONSyntax},
		{name: "unterminated", in: `{"a":1`, err: errJSONSyntax},
		{name: "unterminated string", in: `{"a":"x}`, err: errJSONSyntax},
		{name: "leading zero", in: `{"a":01}`, err: errJSONSyntax},
		{name: "plus sign", in: `{"a":+1}`, err: errJSONSyntax},
		{name: "bare fraction", in: `{"a":1.}`, err: errJSONSyntax},
		{name: "bad literal", in: `{"a":tru}`, err: errJSONSyntax},
		{name: "control character", in: "{\"a\":\"x\ty\"}", err: errJSONControl},
		{name: "invalid utf-8", in: "{\"a\":\"\xff\"}", err: errJSONUTF8},
		{name: "utf-8 encoded surrogate", in: "{\"a\":\"\xed\xa0\x80\"}", err: errJSONUTF8},
		{name: "lone high surrogate", in: `{"a":"\ud800"}`, err: errJSONSurrogate},
		{name: "lone low surrogate", in: `{"a":"\udc00"}`, err: errJSONSurrogate},
		{name: "high then not low", in: `{"a":"\ud800\u0041"}`, err: errJSONSurrogate},
		{name: "bad escape", in: `{"a":"\x41"}`, err: errJSONEscape},
		{name: "short unicode escape", in: `{"a":"\u12"}`, err: errJSONEscape},
		{name: "byte order mark", in: "\xef\xbb\xbf{}", err: errJSONSyntax},
		{name: "too deep", in: `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, err: errJSONDepth},
		{name: "deepest allowed", in: `{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`,
			names: []string{"a"}},
		{name: "too many members", in: manyMembers(MaxMembers + 1), err: errJSONMembers},
		{name: "most members allowed", in: manyMembers(MaxMembers), names: memberNames(MaxMembers)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scanAll([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("ScanObject(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if tc.names != nil {
				var names []string
				for _, m := range got {
					names = append(names, m.name)
				}
				if !reflect.DeepEqual(names, tc.names) {
					t.Fatalf("names = %q, want %q", names, tc.names)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ScanObject(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func memberNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "m" + strconv.Itoa(i)
	}
	return names
}

func manyMembers(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range memberNames(n) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + name + `":0`)
	}
	b.WriteByte('}')
	return b.String()
}

func TestValueAccessors(t *testing.T) {
	value := func(t *testing.T, text string) Value {
		t.Helper()
		var v Value
		if err := ScanObject([]byte(`{"v":`+text+`}`), func(_ []byte, got Value) error { v = got; return nil }); err != nil {
			t.Fatalf("scan %s: %v", text, err)
		}
		return v
	}
	strCases := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", `"abc"`, "abc", true},
		{"escapes", `"a\"\\\/\b\f\n\r\tb"`, "a\"\\/\b\f\n\r\tb", true},
		{"unicode escape", `"\u00e9\u20ac"`, "é€", true},
		{"raw utf-8", `"é€"`, "é€", true},
		{"nul escape", `"\u0000"`, "\x00", true},
		{"number", `1`, "", false},
		{"null", `null`, "", false},
		{"array", `["a"]`, "", false},
	}
	for _, tc := range strCases {
		t.Run("Str/"+tc.name, func(t *testing.T) {
			got, err := value(t, tc.in).Str()
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("Str(%s) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
	intCases := []struct {
		name, in string
		want     int64
		ok       bool
	}{
		{"zero", `0`, 0, true},
		{"negative zero", `-0`, 0, true},
		{"numeric date", `1700000000`, 1700000000, true},
		{"negative", `-42`, -42, true},
		{"18 digits", `999999999999999999`, 999999999999999999, true},
		{"19 digits", `1000000000000000000`, 0, false},
		{"fraction", `1700000000.5`, 0, false},
		{"exponent", `17e8`, 0, false},
		{"string", `"1"`, 0, false},
		{"bool", `true`, 0, false},
	}
	for _, tc := range intCases {
		t.Run("Int/"+tc.name, func(t *testing.T) {
			got, err := value(t, tc.in).Int()
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("Int(%s) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
	strsCases := []struct {
		name, in string
		want     []string
		ok       bool
	}{
		{"empty", `[]`, []string{}, true},
		{"blank empty", `[ ]`, []string{}, true},
		{"two", `["a", "b\u0021"]`, []string{"a", "b!"}, true},
		{"number element", `["a",1]`, nil, false},
		{"nested array", `[["a"]]`, nil, false},
		{"string", `"a"`, nil, false},
	}
	for _, tc := range strsCases {
		t.Run("Strs/"+tc.name, func(t *testing.T) {
			got, err := value(t, tc.in).Strs()
			if (err == nil) != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Strs(%s) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

// surrogateEscape finds an escaped UTF-16 surrogate.
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F]`)

// FuzzStrictObject compares ScanObject with encoding/json. What ScanObject
// accepts, encoding/json accepts with the same members and values; what it
// refuses and encoding/json accepts is refused for one of its deliberate,
// documented strictnesses, and the stated reason must hold.
func FuzzStrictObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"alg":"EdDSA","typ":"at+jwt","kid":"k"}`, `{"a":[1,2,{"b":null}],"c":-1.5E-7}`,
		`{"a":1,"A":2}`, `{"\u0041":1,"a":2}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud800"}`,
		"{\"a\":\"\xff\"}", `{"a":1,}`, `[1]`, `{"a":01}`, ` { "a" : "b" } `, `{"a":{}}{`,
		`{"aud":["x","y"],"exp":1700000000,"roles":[]}`, `{"k\u212a":1,"kk":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scanAll(data)
		refOK := json.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
		var ref map[string]any
		var keys []string
		if refOK {
			ref, keys = refDecode(t, data)
		}
		if err == nil {
			if !refOK {
				t.Fatalf("ScanObject accepts %q, encoding/json refuses it", data)
			}
			if len(got) != len(keys) || len(got) != len(ref) {
				t.Fatalf("%q: members %+v, encoding/json has keys %q", data, got, keys)
			}
			for i, m := range got {
				if m.name != keys[i] {
					t.Fatalf("%q: member %d is %q, encoding/json says %q", data, i, m.name, keys[i])
				}
				checkValue(t, data, m, ref[m.name])
			}
			return
		}
		if !refOK {
			return
		}
		// Both parse it as JSON; the refusal must be one of ours, for a true reason.
		switch {
		case errors.Is(err, errJSONDuplicate):
			if !hasFoldDuplicate(keys) {
				t.Fatalf("%q: refused as duplicate, keys %q have none", data, keys)
			}
		case errors.Is(err, errJSONUTF8):
			if utf8.Valid(data) {
				t.Fatalf("%q: refused as invalid UTF-8, but it is valid", data)
			}
		case errors.Is(err, errJSONSurrogate):
			if !surrogateEscape.Match(data) {
				t.Fatalf("%q: refused for a surrogate, has no surrogate escape", data)
			}
		case errors.Is(err, errJSONDepth):
			if !anyDeeper(data) {
				t.Fatalf("%q: refused as too deep", data)
			}
		case errors.Is(err, errJSONMembers):
			if len(keys) <= MaxMembers {
				t.Fatalf("%q: refused for %d members", data, len(keys))
			}
		default:
			t.Fatalf("ScanObject refuses %q (%v), encoding/json accepts it", data, err)
		}
	})
}

// refDecode decodes data with encoding/json, keeping numbers as json.Number,
// and lists its top-level keys in order, duplicates included.
func refDecode(t *testing.T, data []byte) (map[string]any, []string) {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("encoding/json: valid %q does not decode: %v", data, err)
	}
	d = json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if _, err := d.Token(); err != nil { // {
		t.Fatal(err)
	}
	var keys []string
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return m, keys
}

// checkValue compares one member's value with encoding/json's decoding.
func checkValue(t *testing.T, data []byte, m member, want any) {
	t.Helper()
	var v any
	d := json.NewDecoder(strings.NewReader(m.raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%q: raw value %q of %q does not decode: %v", data, m.raw, m.name, err)
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("%q: value of %q is %#v, encoding/json says %#v", data, m.name, v, want)
	}
	val := Value{Kind: m.kind, Raw: []byte(m.raw)}
	switch w := want.(type) {
	case string:
		s, err := val.Str()
		if m.kind != KindString || err != nil || s != w {
			t.Fatalf("%q: Str of %q = %q, %v (kind %d); want %q", data, m.name, s, err, m.kind, w)
		}
	case json.Number:
		if m.kind != KindNumber || string(w) != m.raw {
			t.Fatalf("%q: number %q kind %d raw %q", data, m.name, m.kind, m.raw)
		}
		if n, err := val.Int(); err == nil {
			if ref, rerr := strconv.ParseInt(string(w), 10, 64); rerr != nil || ref != n {
				t.Fatalf("%q: Int of %s = %d, strconv says %d, %v", data, w, n, ref, rerr)
			}
		}
	case bool:
		if m.kind != KindBool {
			t.Fatalf("%q: bool %q has kind %d", data, m.name, m.kind)
		}
	case nil:
		if m.kind != KindNull {
			t.Fatalf("%q: null %q has kind %d", data, m.name, m.kind)
		}
	case []any:
		if m.kind != KindArray {
			t.Fatalf("%q: array %q has kind %d", data, m.name, m.kind)
		}
		strs, err := val.Strs()
		allStrings := true
		for _, e := range w {
			if _, ok := e.(string); !ok {
				allStrings = false
			}
		}
		if allStrings != (err == nil) {
			t.Fatalf("%q: Strs of %q = %q, %v; all strings: %v", data, m.name, strs, err, allStrings)
		}
		for i := range strs {
			if strs[i] != w[i] {
				t.Fatalf("%q: Strs of %q = %q, want %q", data, m.name, strs, w)
			}
		}
	case map[string]any:
		if m.kind != KindObject {
			t.Fatalf("%q: object %q has kind %d", data, m.name, m.kind)
		}
	}
}

func hasFoldDuplicate(keys []string) bool {
	for i := range keys {
		for j := range i {
			if strings.EqualFold(keys[i], keys[j]) {
				return true
			}
		}
	}
	return false
}

// anyDeeper reports whether data nests brackets deeper than MaxDepth outside
// strings: the decoded map loses duplicate keys, whose values may be deeper.
func anyDeeper(data []byte) bool {
	d, inStr, esc := 0, false, false
	for _, c := range data {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			d++
			if d > MaxDepth {
				return true
			}
		case c == ']' || c == '}':
			d--
		}
	}
	return false
}
