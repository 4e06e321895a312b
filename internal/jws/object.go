package jws

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of ScanObject. They are far above what a Gatehouse header or claims
// set holds; they exist so that hostile input costs a bounded amount of work.
const (
	// MaxMembers is the largest number of members of the scanned object.
	MaxMembers = 64
	// MaxDepth is the deepest nesting of arrays and objects, the scanned
	// object itself counting as 1.
	MaxDepth = 16
)

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values.
const (
	KindString Kind = iota + 1
	KindNumber
	KindBool
	KindNull
	KindArray
	KindObject
)

// Value is the value of one member found by ScanObject: its kind and its
// JSON text, already validated. Raw aliases the scanned input.
type Value struct {
	Kind Kind
	Raw  []byte
}

// Errors of ScanObject and of the Value accessors. They are reasons for a log,
// not for a client.
var (
	errJSONSyntax    = errors.New("invalid JSON")
	errJSONNotObject = errors.New("JSON value is not an object")
	errJSONTrailing  = errors.New("data after the JSON object")
	errJSONDuplicate = errors.New("duplicate or case-variant member name")
	errJSONMembers   = errors.New("too many members")
	errJSONDepth     = errors.New("JSON nested too deep")
	errJSONUTF8      = errors.New("string is not valid UTF-8")
	errJSONSurrogate = errors.New("string has an unpaired surrogate escape")
	errJSONControl   = errors.New("string has a control character")
	errJSONEscape    = errors.New("string has an invalid escape")
	errNotString     = errors.New("value is not a string")
	errNotInteger    = errors.New("value is not an integer")
	errNotStrings    = errors.New("value is not an array of strings")
)

// ScanObject checks that data is exactly one JSON object (RFC 8259; blanks
// around it allowed) and calls fn for each of its members in order, with the
// decoded member name and the member's value. It stops at the first error of
// its own or of fn.
//
// It is stricter than encoding/json, on purpose:
//   - two member names that are equal under Unicode case folding
//     (strings.EqualFold: "alg" and "ALG", "kid" and "\u212Aid") are refused,
//     because encoding/json matches struct fields case-insensitively and keeps
//     the last duplicate, which is how one token can mean two things;
//   - strings (names and values) must be valid UTF-8 and their escapes must
//     not leave a surrogate unpaired, where encoding/json would silently
//     substitute U+FFFD;
//   - at most MaxMembers members and MaxDepth levels of nesting.
//
// Nested values (arrays, objects) are fully validated with the same string
// rules, but the names of nested objects are not checked for duplicates: the
// tokens this package reads never nest objects. The name passed to fn is only
// valid during the call.
func ScanObject(data []byte, fn func(name []byte, v Value) error) error {
	s := scanner{data: data}
	s.skipBlank()
	if s.pos >= len(data) || data[s.pos] != '{' {
		if s.pos < len(data) && isValueStart(data[s.pos]) {
			return errJSONNotObject
		}
		return errJSONSyntax
	}
	s.pos++
	var seenBuf [16][]byte
	seen := seenBuf[:0]
	s.skipBlank()
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			if s.peek() != '"' {
				return errJSONSyntax
			}
			start := s.pos
			escaped, err := s.scanString()
			if err != nil {
				return err
			}
			name := data[start+1 : s.pos-1]
			if escaped {
				name = appendUnescaped(nil, name)
			}
			if len(seen) == MaxMembers {
				return errJSONMembers
			}
			for _, prev := range seen {
				if bytes.EqualFold(prev, name) {
					return errJSONDuplicate
				}
			}
			seen = append(seen, name)
			s.skipBlank()
			if s.peek() != ':' {
				return errJSONSyntax
			}
			s.pos++
			s.skipBlank()
			vstart := s.pos
			kind, err := s.scanValue(2)
			if err != nil {
				return err
			}
			if err := fn(name, Value{Kind: kind, Raw: data[vstart:s.pos]}); err != nil {
				return err
			}
			s.skipBlank()
			c := s.peek()
			s.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				return errJSONSyntax
			}
			s.skipBlank()
		}
	}
	s.skipBlank()
	if s.pos != len(data) {
		return errJSONTrailing
	}
	return nil
}

// Str returns the decoded string of a string value.
func (v Value) Str() (string, error) {
	if v.Kind != KindString {
		return "", errNotString
	}
	body := v.Raw[1 : len(v.Raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), nil
	}
	return string(appendUnescaped(make([]byte, 0, len(body)), body)), nil
}

// Int returns the value of an integer number: a JSON number with no fraction
// and no exponent that fits in an int64.
func (v Value) Int() (int64, error) {
	if v.Kind != KindNumber {
		return 0, errNotInteger
	}
	digits := v.Raw
	neg := digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) > 18 { // 18 digits always fit; NumericDates need 12
		return 0, errNotInteger
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errNotInteger // a fraction or an exponent
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// Strs returns the decoded strings of an array whose elements are all strings.
func (v Value) Strs() ([]string, error) {
	if v.Kind != KindArray {
		return nil, errNotStrings
	}
	s := scanner{data: v.Raw, pos: 1}
	var out []string
	s.skipBlank()
	if s.peek() == ']' {
		return []string{}, nil
	}
	for {
		if s.peek() != '"' {
			return nil, errNotStrings
		}
		start := s.pos
		if _, err := s.scanString(); err != nil {
			return nil, err
		}
		str, err := Value{Kind: KindString, Raw: v.Raw[start:s.pos]}.Str()
		if err != nil {
			return nil, err
		}
		out = append(out, str)
		s.skipBlank()
		c := s.peek()
		s.pos++
		if c == ']' {
			return out, nil
		}
		if c != ',' {
			return nil, errNotStrings
		}
		s.skipBlank()
	}
}

// scanner walks validated-as-it-goes JSON text.
type scanner struct {
	data []byte
	pos  int
}

// peek returns the byte at the position, or 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// skipBlank skips the four JSON whitespace characters.
func (s *scanner) skipBlank() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// isValueStart reports whether c can start a JSON value.
func isValueStart(c byte) bool {
	switch c {
	case '"', '[', '{', 't', 'f', 'n', '-':
		return true
	}
	return c >= '0' && c <= '9'
}

// scanValue validates one value at the position, at nesting depth depth, and
// moves past it.
func (s *scanner) scanValue(depth int) (Kind, error) {
	switch c := s.peek(); {
	case c == '"':
		_, err := s.scanString()
		return KindString, err
	case c == '-' || (c >= '0' && c <= '9'):
		return KindNumber, s.scanNumber()
	case c == 't':
		return KindBool, s.scanLiteral("true")
	case c == 'f':
		return KindBool, s.scanLiteral("false")
	case c == 'n':
		return KindNull, s.scanLiteral("null")
	case c == '[':
		if depth > MaxDepth {
			return 0, errJSONDepth
		}
		return KindArray, s.scanArray(depth)
	case c == '{':
		if depth > MaxDepth {
			return 0, errJSONDepth
		}
		return KindObject, s.scanNested(depth)
	default:
		return 0, errJSONSyntax
	}
}

// scanLiteral moves past lit or fails.
func (s *scanner) scanLiteral(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return errJSONSyntax
	}
	s.pos += len(lit)
	return nil
}

// scanArray validates an array at the position.
func (s *scanner) scanArray(depth int) error {
	s.pos++ // [
	s.skipBlank()
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if _, err := s.scanValue(depth + 1); err != nil {
			return err
		}
		s.skipBlank()
		c := s.peek()
		s.pos++
		if c == ']' {
			return nil
		}
		if c != ',' {
			return errJSONSyntax
		}
		s.skipBlank()
	}
}

// scanNested validates a nested object at the position.
func (s *scanner) scanNested(depth int) error {
	s.pos++ // {
	s.skipBlank()
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return errJSONSyntax
		}
		if _, err := s.scanString(); err != nil {
			return err
		}
		s.skipBlank()
		if s.peek() != ':' {
			return errJSONSyntax
		}
		s.pos++
		s.skipBlank()
		if _, err := s.scanValue(depth + 1); err != nil {
			return err
		}
		s.skipBlank()
		c := s.peek()
		s.pos++
		if c == '}' {
			return nil
		}
		if c != ',' {
			return errJSONSyntax
		}
		s.skipBlank()
	}
}

// scanNumber validates a number at the position:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) scanNumber() error {
	if s.peek() == '-' {
		s.pos++
	}
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.skipDigits()
	default:
		return errJSONSyntax
	}
	if s.peek() == '.' {
		s.pos++
		if !isDigit(s.peek()) {
			return errJSONSyntax
		}
		s.skipDigits()
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if !isDigit(s.peek()) {
			return errJSONSyntax
		}
		s.skipDigits()
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) skipDigits() {
	for s.pos < len(s.data) && isDigit(s.data[s.pos]) {
		s.pos++
	}
}

// scanString validates a string at the position (which holds its opening
// quote), moves past its closing quote, and reports whether it has escapes.
func (s *scanner) scanString() (escaped bool, err error) {
	s.pos++ // "
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			if err := s.scanEscape(); err != nil {
				return escaped, err
			}
		case c < 0x20:
			return escaped, errJSONControl
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return escaped, errJSONUTF8
			}
			s.pos += size
		}
	}
	return escaped, errJSONSyntax
}

// scanEscape validates the escape sequence at the position (its backslash)
// and moves past it; a high surrogate must be followed by an escaped low one.
func (s *scanner) scanEscape() error {
	if s.pos+1 >= len(s.data) {
		return errJSONSyntax
	}
	switch s.data[s.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return nil
	case 'u':
	default:
		return errJSONEscape
	}
	r, ok := hex4(s.data[s.pos+2:])
	if !ok {
		return errJSONEscape
	}
	s.pos += 6
	switch {
	case r >= 0xDC00 && r < 0xE000:
		return errJSONSurrogate
	case r >= 0xD800 && r < 0xDC00:
		if len(s.data)-s.pos < 6 || s.data[s.pos] != '\\' || s.data[s.pos+1] != 'u' {
			return errJSONSurrogate
		}
		r2, ok := hex4(s.data[s.pos+2:])
		if !ok {
			return errJSONEscape
		}
		if r2 < 0xDC00 || r2 >= 0xE000 {
			return errJSONSurrogate
		}
		s.pos += 6
	}
	return nil
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// appendUnescaped appends the decoded form of body, the inside of a string
// that scanString has validated, to dst.
func appendUnescaped(dst, body []byte) []byte {
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch body[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(body[i+2:])
			i += 6
			if r >= 0xD800 && r < 0xDC00 {
				r2, _ := hex4(body[i+2:])
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, body[i+1])
		}
		i += 2
	}
	return dst
}
