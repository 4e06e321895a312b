package keys_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/keys"
)

func TestParseKEK(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // has '+' and '/' in std base64
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"standard, padded", base64.StdEncoding.EncodeToString(raw), true},
		{"standard, unpadded", base64.RawStdEncoding.EncodeToString(raw), true},
		{"url, padded", base64.URLEncoding.EncodeToString(raw), true},
		{"url, unpadded", base64.RawURLEncoding.EncodeToString(raw), true},
		{"trailing newline", base64.StdEncoding.EncodeToString(raw) + "\n", true},
		{"31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), false},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 1)), false},
		{"16 bytes (AES-128)", base64.StdEncoding.EncodeToString(raw[:16]), false},
		{"hex", strings.Repeat("ab", 32), false},
		{"empty", "", false},
		{"not base64", "correct horse battery staple!!", false},
		{"inner blank", base64.StdEncoding.EncodeToString(raw)[:20] + " " + base64.StdEncoding.EncodeToString(raw)[20:], false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keys.ParseKEK(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseKEK: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !bytes.Equal(got, raw) {
				t.Fatalf("ParseKEK decoded %x", got)
			}
			if err != nil && len(tc.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)[:8]) {
				t.Fatalf("the error repeats the key: %v", err)
			}
		})
	}
}

func TestLoadOrCreateKEKFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	kek, err := keys.LoadOrCreateKEKFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(kek) != keys.KEKSize {
		t.Fatalf("key of %d bytes", len(kek))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("created with mode %04o, want 0600", perm)
	}
	again, err := keys.LoadOrCreateKEKFile(path)
	if err != nil || !bytes.Equal(again, kek) {
		t.Fatalf("second load: %v (same key: %v)", err, bytes.Equal(again, kek))
	}
	other, err := keys.LoadOrCreateKEKFile(filepath.Join(dir, "other"))
	if err != nil || bytes.Equal(other, kek) {
		t.Fatalf("another file gave %v (same key: %v)", err, bytes.Equal(other, kek))
	}
}

func TestLoadKEKFileRefusals(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\n"
	cases := []struct {
		name    string
		setup   func(t *testing.T, path string)
		message string // part of the error
	}{
		{"group readable", func(t *testing.T, path string) { write(t, path, good, 0o640) }, "chmod 600"},
		{"world readable", func(t *testing.T, path string) { write(t, path, good, 0o604) }, "chmod 600"},
		{"group writable only", func(t *testing.T, path string) { write(t, path, good, 0o620) }, "chmod 600"},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"not a key", func(t *testing.T, path string) { write(t, path, "hello\n", 0o600) }, "not base64"},
		{"short key", func(t *testing.T, path string) {
			write(t, path, base64.StdEncoding.EncodeToString(make([]byte, 16)), 0o600)
		}, "16 bytes"},
		{"huge file", func(t *testing.T, path string) { write(t, path, strings.Repeat("A", 1<<20), 0o600) }, "too large"},
		{"missing directory", func(*testing.T, string) {}, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kek")
			if tc.name == "missing directory" {
				path = filepath.Join(t.TempDir(), "nope", "kek")
			}
			tc.setup(t, path)
			_, err := keys.LoadOrCreateKEKFile(path)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q does not say %q", err, tc.message)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(good)[:10]) {
				t.Fatalf("the error repeats the key: %v", err)
			}
		})
	}
}

func write(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask may have cleared bits
		t.Fatal(err)
	}
}
