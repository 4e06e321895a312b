package account

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// referenceVectors are Argon2id known answers from the reference
// implementation, P-H-C/phc-winner-argon2, src/test.c (the "Test Argon2id
// version number: 0x13" block): password "password", salt "somesalt"
// (8 bytes, so below the 16 we use for new hashes but within what stored
// hashes may have), 32-byte output. The same strings appear in the test
// suites of libsodium-compatible libraries.
var referenceVectors = []struct {
	name, password, encoded string
}{
	{"m=256 t=2 p=1", "password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"m=256 t=2 p=2", "password", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"},
	{"m=65536 t=2 p=1", "password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
}

func TestReferenceVectors(t *testing.T) {
	for _, v := range referenceVectors {
		t.Run(v.name, func(t *testing.T) {
			h, err := parsePHC(v.encoded)
			if err != nil {
				t.Fatalf("parsePHC: %v", err)
			}
			if string(h.salt) != "somesalt" {
				t.Errorf("salt = %q, want %q", h.salt, "somesalt")
			}
			if got := h.String(); got != v.encoded {
				t.Errorf("re-encoded = %s, want %s", got, v.encoded)
			}
			key := argon2.IDKey([]byte(v.password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
			if string(key) != string(h.key) {
				t.Errorf("derived key differs from the reference")
			}
			wrong := argon2.IDKey([]byte("passwore"), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
			if string(wrong) == string(h.key) {
				t.Errorf("a wrong password derived the reference key")
			}
		})
	}
}

const validPHC = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

// malformedPHC are strings parsePHC must refuse; they seed the fuzzer too.
var malformedPHC = []struct{ name, in string }{
	{"empty", ""},
	{"dollar only", "$"},
	{"no leading dollar", "argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"upper-case algorithm", "$ARGON2ID$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
	{"no version", "$argon2id$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"version 16", "$argon2id$v=16$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"version leading zero", "$argon2id$v=019$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"params out of order", "$argon2id$v=19$t=2,m=19456,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"missing p", "$argon2id$v=19$m=19456,t=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"extra param", "$argon2id$v=19$m=19456,t=2,p=1,keyid=abc$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"space in param", "$argon2id$v=19$m= 19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"plus sign", "$argon2id$v=19$m=+19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"negative", "$argon2id$v=19$m=-1,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"empty m", "$argon2id$v=19$m=,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"m overflows uint32", "$argon2id$v=19$m=4294967296,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"m over 4 GiB", "$argon2id$v=19$m=4194305,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"m under 8p", "$argon2id$v=19$m=15,t=2,p=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"m zero", "$argon2id$v=19$m=0,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"t zero", "$argon2id$v=19$m=19456,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"t over 100", "$argon2id$v=19$m=19456,t=101,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"p zero", "$argon2id$v=19$m=19456,t=2,p=0$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"p over 16", "$argon2id$v=19$m=19456,t=2,p=17$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"p 256 wraps uint8", "$argon2id$v=19$m=19456,t=2,p=256$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"empty salt", "$argon2id$v=19$m=19456,t=2,p=1$$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"salt of 7 bytes", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"salt of 65 bytes", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 87) + "$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"url alphabet", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPP-"},
	{"newline in salt", "$argon2id$v=19$m=19456,t=2,p=1$c29tZX\nNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"CR in hash", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y\r7cJHAph8ArZWb2GRPPc"},
	{"non-canonical trailing bits", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHR$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"impossible base64 length", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQAA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPcA"},
	{"empty hash", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$"},
	{"hash of 15 bytes", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm"},
	{"hash of 65 bytes", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$" + strings.Repeat("A", 87)},
	{"missing hash", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ"},
	{"trailing dollar", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$"},
	{"trailing newline", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n"},
	{"leading space", " $argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
	{"too long", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$" + strings.Repeat("A", 300)},
	{"NUL", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ\x00$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
}

func TestParsePHC(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		h, err := parsePHC(validPHC)
		if err != nil {
			t.Fatalf("parsePHC: %v", err)
		}
		if h.memory != 19456 || h.time != 2 || h.threads != 1 || len(h.salt) != 16 || len(h.key) != 32 {
			t.Errorf("parsed m=%d t=%d p=%d salt=%d key=%d, want 19456 2 1 16 32",
				h.memory, h.time, h.threads, len(h.salt), len(h.key))
		}
		if got := h.String(); got != validPHC {
			t.Errorf("re-encoded = %s, want %s", got, validPHC)
		}
	})
	t.Run("largest bounds", func(t *testing.T) {
		in := "$argon2id$v=19$m=4194304,t=100,p=16$" + strings.Repeat("A", 86) + "$" + strings.Repeat("A", 86)
		h, err := parsePHC(in)
		if err != nil {
			t.Fatalf("parsePHC: %v", err)
		}
		if h.memory != 4194304 || h.time != 100 || h.threads != 16 || len(h.salt) != 64 || len(h.key) != 64 {
			t.Errorf("parsed m=%d t=%d p=%d salt=%d key=%d", h.memory, h.time, h.threads, len(h.salt), len(h.key))
		}
	})
	for _, tc := range malformedPHC {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parsePHC(tc.in); !errors.Is(err, errMalformedPHC) {
				t.Errorf("parsePHC(%q) error = %v, want errMalformedPHC", tc.in, err)
			}
		})
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add(validPHC)
	for _, v := range referenceVectors {
		f.Add(v.encoded)
	}
	for _, tc := range malformedPHC {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := parsePHC(in)
		if err != nil {
			if !errors.Is(err, errMalformedPHC) {
				t.Fatalf("parsePHC(%q) error %v does not wrap errMalformedPHC", in, err)
			}
			return
		}
		// Strict means canonical: whatever parses re-encodes to the input.
		if got := h.String(); got != in {
			t.Fatalf("parsePHC(%q) re-encodes to %q", in, got)
		}
		if h.threads < 1 || h.threads > maxThreads || h.time < 1 || h.time > maxTime ||
			h.memory < 8*uint32(h.threads) || h.memory > maxMemory ||
			len(h.salt) < minStoredSalt || len(h.salt) > maxSaltLen ||
			len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
			t.Fatalf("parsePHC(%q) accepted out-of-bounds parameters", in)
		}
	})
}
