package audit

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "alice", 64, "alice"},
		{"plain cut", "abcdef", 3, "abc"},
		{"unicode kept", "zoë 日本", 64, "zoë 日本"},
		{"newline", "a\nb", 64, "a\uFFFDb"},
		{"crlf", "a\r\nb", 64, "a\uFFFD\uFFFDb"},
		{"nul", "a\x00b", 64, "a\uFFFDb"},
		{"esc", "\x1b[31m", 64, "\uFFFD[31m"},
		{"tab", "a\tb", 64, "a\uFFFDb"},
		{"c1 next line", "a\u0085b", 64, "a\uFFFDb"},
		{"line separator", "a\u2028b", 64, "a\uFFFDb"},
		{"bidi override", "a\u202eb", 64, "a\uFFFDb"},
		{"invalid utf-8", "a\xffb", 64, "a\uFFFDb"},
		{"cut at a character boundary", "ééé", 5, "éé"},
		{"replacement counts toward the bound", "\n\n\n", 7, "\uFFFD\uFFFD"},
		{"empty", "", 64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in, tt.max); got != tt.want {
				t.Fatalf("sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "alice", "a\nb", "\r\n", "\x00", "\x1b[2J", "\u2028", "\u202e", "\xff\xfe", "é", strings.Repeat("x", 300)} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<12 {
			return
		}
		got := sanitize(s, max)
		if len(got) > max {
			t.Fatalf("sanitize(%q, %d) is %d bytes", s, max, len(got))
		}
		if !utf8.ValidString(got) {
			t.Fatalf("sanitize(%q) = %q is not valid UTF-8", s, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("sanitize(%q) = %q keeps %U", s, got, r)
			}
		}
		if clean(s) && len(s) <= max && got != s {
			t.Fatalf("sanitize changed clean %q to %q", s, got)
		}
	})
}
