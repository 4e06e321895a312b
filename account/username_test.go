package account_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/account"
)

func TestNormalizeUsername(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means refused
	}{
		{"lower case stays", "alice", "alice"},
		{"case mapped", "Alice", "alice"},
		{"all caps", "ALICE", "alice"},
		{"full width mapped", "ＡＬＩＣＥ", "alice"},
		{"full width digits", "bob１２３", "bob123"},
		{"decomposed to NFC", "e\u0301lodie", "\u00e9lodie"},
		{"precomposed kept", "\u00c9lodie", "\u00e9lodie"},
		{"greek case mapped", "ΑΘΗΝΑ", "αθηνα"},
		{"punctuation allowed", "alice.smith@example.com", "alice.smith@example.com"},
		{"one character", "a", "a"},
		{"64 characters", strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"64 full-width characters", strings.Repeat("Ａ", 64), strings.Repeat("a", 64)},
		{"65 characters", strings.Repeat("a", 65), ""},
		{"65 full-width characters", strings.Repeat("Ａ", 65), ""},
		{"huge input", strings.Repeat("a", 5000), ""},
		{"empty", "", ""},
		{"leading space", " alice", ""},
		{"trailing space", "alice ", ""},
		{"inner space", "alice smith", ""},
		{"only spaces", "   ", ""},
		{"no-break space", "alice\u00a0smith", ""},
		{"ideographic space", "alice\u3000", ""},
		{"tab", "alice\tsmith", ""},
		{"LF", "alice\n", ""},
		{"CR", "alice\r", ""},
		{"CRLF injection", "alice\r\nadmin", ""},
		{"NUL", "ali\x00ce", ""},
		{"DEL", "alice\x7f", ""},
		{"C1 control", "alice\u0085", ""},
		{"escape", "\x1b[31malice", ""},
		{"invalid UTF-8", "alice\xff", ""},
		{"truncated UTF-8", "alice\xc3", ""},
		{"zero-width space", "ali\u200bce", ""},
		{"right-to-left override", "alice\u202egpj", ""},
		{"symbol", "alice\u2603", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := account.NormalizeUsername(tc.in)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("NormalizeUsername(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("NormalizeUsername(%q) = %q, want an error", tc.in, got)
			}
			if !errors.Is(err, account.ErrInvalidUsername) {
				t.Fatalf("error %v does not wrap ErrInvalidUsername", err)
			}
			var pe *account.PolicyError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("error %v is not a *PolicyError with a reason", err)
			}
		})
	}
}

func TestNormalizeUsernameIdempotent(t *testing.T) {
	for _, in := range []string{"Alice", "ＡＬＩＣＥ", "e\u0301lodie", "ΑΘΗΝΑ", "Straße"} {
		once, err := account.NormalizeUsername(in)
		if err != nil {
			t.Fatalf("NormalizeUsername(%q): %v", in, err)
		}
		twice, err := account.NormalizeUsername(once)
		if err != nil || twice != once {
			t.Errorf("NormalizeUsername(%q) = %q, %v; want it unchanged", once, twice, err)
		}
	}
}
