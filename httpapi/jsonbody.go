package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"

	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body accepted (64 KiB); larger is 413.
const MaxBodyBytes = 64 << 10

// readBody reads the whole body, bounded by MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, problemf(http.StatusRequestEntityTooLarge, classTooLarge,
				"The request body is larger than %d bytes.", MaxBodyBytes)
		}
		return nil, badRequest("The request body could not be read.")
	}
	return body, nil
}

// mediaType returns the request's media type, lower-cased, or "" if absent
// or malformed.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return ""
	}
	return mt
}

// decodeJSON decodes a JSON request body into dst, a pointer to a struct
// with json tags, strictly: the media type must be application/json (else
// 415); the body must be valid UTF-8, one object, with no trailing data, no
// unknown member, no member named in another case than its tag, no
// duplicate member, and values of the right type (else 400); at most
// MaxBodyBytes (else 413).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if mediaType(r) != "application/json" {
		return problemf(http.StatusUnsupportedMediaType, classUnsupportedMedia,
			"The request body must be application/json.")
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, dst)
}

// unmarshalStrict is decodeJSON's parser, separate so that it can be fuzzed.
func unmarshalStrict(body []byte, dst any) error {
	if !utf8.Valid(body) {
		return badRequest("The request body is not valid UTF-8.")
	}
	names := fieldNames(reflect.TypeOf(dst).Elem())
	if err := checkMembers(body, names); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return badRequest("Member %q has the wrong type.", ute.Field)
		}
		return badRequest("The request body is not a valid JSON object.")
	}
	return nil
}

// checkMembers scans a JSON document that must be one object and refuses
// duplicate members, members whose name is not exactly one of names,
// trailing data, and nested objects or arrays (no request body of the API
// has any).
func checkMembers(body []byte, names map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return badRequest("The request body is not valid JSON.")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return badRequest("The request body must be a JSON object.")
	}
	seen := make(map[string]bool, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badRequest("The request body is not valid JSON.")
		}
		key, ok := tok.(string)
		if !ok {
			return badRequest("The request body is not valid JSON.")
		}
		folded := strings.ToLower(key)
		if seen[folded] {
			return badRequest("Member %q appears more than once.", key)
		}
		seen[folded] = true
		if !names[key] {
			return badRequest("Unknown member %q.", key)
		}
		val, err := dec.Token()
		if err != nil {
			return badRequest("The request body is not valid JSON.")
		}
		if _, ok := val.(json.Delim); ok {
			return badRequest("Member %q must be a string, number, boolean or null.", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return badRequest("The request body is not valid JSON.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("The request body has data after the JSON object.")
	}
	return nil
}

var fieldNameCache sync.Map // reflect.Type → map[string]bool

// fieldNames returns the JSON member names of a struct type's fields.
func fieldNames(t reflect.Type) map[string]bool {
	if v, ok := fieldNameCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	fieldNameCache.Store(t, names)
	return names
}

// requireString reports a clear 400 when a required member is missing.
func requireString(name, v string) error {
	if v == "" {
		return badRequest("Member %q is required.", name)
	}
	return nil
}
