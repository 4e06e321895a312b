package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// KEKSize is the size of the key-encryption key: AES-256.
const KEKSize = 32

// ErrUnseal is returned when a sealed private key does not open: the
// key-encryption key is not the one the key was sealed with, or the record
// was altered (its ciphertext, or its kid or alg, which the seal covers).
var ErrUnseal = errors.New("keys: cannot decrypt signing key: wrong key-encryption key, or the record was altered")

// sealVersion is part of the additional data, so that a later format cannot
// be confused with this one.
const sealVersion = "gatehouse-signing-key-v1"

// ParseKEK decodes a key-encryption key given as base64 (standard or URL
// alphabet, padded or not; surrounding blanks ignored) of exactly 32 bytes,
// for example the output of `openssl rand -base64 32`. Errors never repeat
// the input.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			if len(b) != KEKSize {
				return nil, fmt.Errorf("keys: the key-encryption key is %d bytes, want %d (base64 of 32 random bytes)", len(b), KEKSize)
			}
			return b, nil
		}
	}
	return nil, errors.New("keys: the key-encryption key is not base64 (want base64 of 32 random bytes)")
}

// maxKEKFile bounds what LoadOrCreateKEKFile reads.
const maxKEKFile = 1 << 10

// LoadOrCreateKEKFile returns the key-encryption key kept in the file at
// path, creating the file with a new random key (base64, mode 0600) when it
// does not exist. It is meant for --dev, where no key is configured. An
// existing file that is not a regular file, or that its group or others can
// access in any way, is refused rather than used.
func LoadOrCreateKEKFile(path string) ([]byte, error) {
	kek := make([]byte, KEKSize)
	if _, err := rand.Read(kek); err != nil {
		return nil, fmt.Errorf("keys: generate key-encryption key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(kek) + "\n")
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("keys: write key-encryption key file %s: %w", path, err)
		}
		return kek, nil
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("keys: create key-encryption key file: %w", err)
	}
	clear(kek)
	return readKEKFile(path)
}

// readKEKFile reads an existing key file after checking its type and mode
// on the opened file (no race between the check and the read).
func readKEKFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: open key-encryption key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: stat key-encryption key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: key-encryption key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keys: key-encryption key file %s has mode %04o: group or others can access it; run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKEKFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys: read key-encryption key file: %w", err)
	}
	defer clear(b)
	if len(b) > maxKEKFile {
		return nil, fmt.Errorf("keys: key-encryption key file %s is too large", path)
	}
	kek, err := ParseKEK(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return kek, nil
}

// newAEAD returns AES-256-GCM under kek.
func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("keys: the key-encryption key is %d bytes, want %d", len(kek), KEKSize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keys: key-encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}

// additionalData binds a sealed key to its record's kid and alg.
func additionalData(kid, alg string) []byte {
	return []byte(sealVersion + "|" + kid + "|" + alg)
}

// seal encrypts a PKCS #8 private key for the record kid/alg.
func seal(aead cipher.AEAD, kid, alg string, pkcs8 []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pkcs8)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, pkcs8, additionalData(kid, alg)), nil
}

// unseal decrypts what seal made for the record kid/alg.
func unseal(aead cipher.AEAD, kid, alg string, sealed []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrUnseal
	}
	n := aead.NonceSize()
	pkcs8, err := aead.Open(nil, sealed[:n], sealed[n:], additionalData(kid, alg))
	if err != nil {
		return nil, ErrUnseal
	}
	return pkcs8, nil
}
