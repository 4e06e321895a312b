package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password policy (NIST SP 800-63B): a length range counted in Unicode code
// points, no composition rules.
const (
	minPasswordLen = 8
	maxPasswordLen = 128
)

// checkPassword applies the password policy to a new password: valid UTF-8,
// no NUL, 8 to 128 code points. The password is used as given (no Unicode
// normalisation).
func checkPassword(p string) error {
	refuse := func(reason string) error { return &PolicyError{Err: ErrPasswordPolicy, Reason: reason} }
	switch {
	case !utf8.ValidString(p):
		return refuse("must be valid UTF-8")
	case strings.IndexByte(p, 0) >= 0:
		return refuse("must not contain a NUL character")
	}
	switch n := utf8.RuneCountInString(p); {
	case n < minPasswordLen:
		return refuse(fmt.Sprintf("must be at least %d characters", minPasswordLen))
	case n > maxPasswordLen:
		return refuse(fmt.Sprintf("must be at most %d characters", maxPasswordLen))
	}
	return nil
}

// Params are Argon2id cost parameters.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism (lanes).
	Threads uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes.
	KeyLen uint32

	// insecureForTests marks the params of InsecureFastParamsForTests.
	insecureForTests bool
}

// DefaultParams returns the default cost: the OWASP Password Storage Cheat
// Sheet's minimum for Argon2id, m=19456 KiB (19 MiB), t=2, p=1, with a
// 16-byte salt and a 32-byte key. One hash takes about 30 ms on a current
// server core.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// InsecureFastParamsForTests returns parameters far too weak for real
// passwords (64 KiB, one pass), so that tests which register and log in
// many users run fast. Validate accepts them only in a test binary
// (testing.Testing()); everywhere else they are refused.
func InsecureFastParamsForTests() Params {
	return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32, insecureForTests: true}
}

// owaspMinimums are the equally strong minimum configurations that the OWASP
// Password Storage Cheat Sheet lists for Argon2id (memory in KiB, passes).
var owaspMinimums = [...]struct{ memory, time uint32 }{
	{47104, 1}, {19456, 2}, {12288, 3}, {9216, 4}, {7168, 5},
}

// Bounds of the parameters, for new hashes and for stored PHC strings alike.
const (
	maxMemory  = 4 << 20 // KiB: 4 GiB
	maxTime    = 100
	maxThreads = 16
	minSaltLen = 16 // for new hashes; stored ones may have 8 (minStoredSalt)
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Validate reports whether p can hash new passwords: at least as strong as
// one of the OWASP minimum configurations (m=47104 t=1, m=19456 t=2,
// m=12288 t=3, m=9216 t=4 or m=7168 t=5, with memory in KiB), 1 to 16
// threads, at most 4 GiB and 100 passes, a salt of 16 to 64 bytes and a key
// of 16 to 64 bytes.
func (p Params) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("account: invalid Argon2id params: "+format, args...)
	}
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return bad("threads %d, want 1 to %d", p.Threads, maxThreads)
	case p.Time < 1 || p.Time > maxTime:
		return bad("time %d, want 1 to %d", p.Time, maxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return bad("memory %d KiB, want %d to %d", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return bad("salt length %d, want %d to %d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return bad("key length %d, want %d to %d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	if p.insecureForTests {
		if !testing.Testing() {
			return errors.New("account: InsecureFastParamsForTests used outside a test binary")
		}
		return nil
	}
	for _, floor := range owaspMinimums {
		if p.Memory >= floor.memory && p.Time >= floor.time {
			return nil
		}
	}
	return bad("m=%d KiB, t=%d is weaker than the OWASP minimum (m=19456 KiB, t=2, or an equivalent)", p.Memory, p.Time)
}

// matches reports whether h was made with exactly these parameters.
func (p Params) matches(h phcHash) bool {
	return h.memory == p.Memory && h.time == p.Time && h.threads == p.Threads &&
		len(h.salt) == int(p.SaltLen) && len(h.key) == int(p.KeyLen)
}

// newHash returns a hash with parameters p, a new random salt and key.
func newHash(p Params, key []byte) (phcHash, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return phcHash{}, fmt.Errorf("account: salt: %w", err)
	}
	return phcHash{memory: p.Memory, time: p.Time, threads: p.Threads, salt: salt, key: key}, nil
}

// hashPassword hashes password with the current parameters and a new salt
// and returns the PHC string.
func (s *Service) hashPassword(ctx context.Context, password string) (string, error) {
	h, err := newHash(s.params, nil)
	if err != nil {
		return "", err
	}
	h.key, err = s.argon2id(ctx, password, h.salt, h.memory, h.time, h.threads, s.params.KeyLen)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// verify reports whether password matches the PHC string encoded, and
// returns the parsed hash. An error means the hash could not be checked: a
// malformed stored hash, or ctx ended while waiting for a slot.
func (s *Service) verify(ctx context.Context, encoded, password string) (bool, phcHash, error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, phcHash{}, fmt.Errorf("stored password hash: %w", err)
	}
	key, err := s.argon2id(ctx, password, h.salt, h.memory, h.time, h.threads, uint32(len(h.key)))
	if err != nil {
		return false, phcHash{}, err
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1, h, nil
}

// argon2id computes an Argon2id key while holding one of the service's
// hashing slots. It returns ctx.Err() (wrapped) without hashing if ctx ends
// first.
func (s *Service) argon2id(ctx context.Context, password string, salt []byte, memory, time uint32, threads uint8, keyLen uint32) ([]byte, error) {
	// Checked first: a select with a free slot and a done ctx picks either.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wait for a hashing slot: %w", err)
	}
	if s.gauges != nil {
		s.gauges.Argon2Waiting(1)
	}
	select {
	case s.sem <- struct{}{}:
		if s.gauges != nil {
			s.gauges.Argon2Waiting(-1)
			s.gauges.Argon2InFlight(1)
			defer s.gauges.Argon2InFlight(-1)
		}
	case <-ctx.Done():
		if s.gauges != nil {
			s.gauges.Argon2Waiting(-1)
		}
		return nil, fmt.Errorf("wait for a hashing slot: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.hashHook != nil {
		s.hashHook()
	}
	return argon2.IDKey([]byte(password), salt, time, memory, threads, keyLen), nil
}
