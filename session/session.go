// Package session implements session mode: the state lives on the server.
//
// At login the Manager draws a 256-bit secret from crypto/rand; the client
// keeps it in an HttpOnly cookie and the store keeps only its SHA-256 hash,
// so a copy of the store cannot be replayed as cookies. Each session also has
// a public id, a different random value, for the device list and the API.
//
// Two timeouts are enforced by the server: an idle timeout, measured from the
// last recorded use, and an absolute timeout from login. Recording a use is a
// store write, so the Manager coalesces it: the last-seen time is written at
// most once per TouchInterval for a session. The idle deadline is computed
// from the recorded time, so a session may expire up to TouchInterval earlier
// than with exact tracking, never later.
//
// The CSRF token of a session is derived from its secret (see package csrf):
// it changes at every login and nothing about it is stored.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-auth/gatehouse/csrf"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

// SecretLen is the length of a session secret in bytes (256 bits).
const SecretLen = 32

// encodedSecretLen is the length of a secret in unpadded base64url.
const encodedSecretLen = 43

var (
	// ErrNoSession means the presented secret is malformed, unknown, revoked
	// or expired. Callers answer 401 and do not say which.
	ErrNoSession = errors.New("session: no such session")
	// ErrNotFound means a session id named by its owner does not exist (or
	// belongs to someone else).
	ErrNotFound = errors.New("session: not found")
	// ErrExpired is the ErrNoSession of a session that Lookup found past its
	// idle or absolute timeout (and deleted); Lookup returns the session
	// with it, so that the caller can audit the expiry.
	ErrExpired = fmt.Errorf("%w: expired", ErrNoSession)
)

// Config sets the session lifetimes. The zero value of a field means its
// default.
type Config struct {
	// Clock is the source of time; default clock.System.
	Clock clock.Clock
	// IdleTimeout ends a session that has not been used for this long;
	// default 30 minutes.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after login, however active;
	// default 12 hours.
	AbsoluteTimeout time.Duration
	// TouchInterval is the minimum time between two last-seen writes of one
	// session; default one minute, capped at a tenth of IdleTimeout.
	TouchInterval time.Duration
	// CacheTTL is how long a looked-up session is served from memory before
	// the store is asked again; default one second, negative disables the
	// cache. Changes made through this Manager (logout, revoke) reach the
	// cache at once; the TTL bounds only how long a change made behind its
	// back (another process on the same store) can go unseen.
	CacheTTL time.Duration
}

// Defaults of Config.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultTouchInterval   = time.Minute
	DefaultCacheTTL        = time.Second
)

func (c *Config) fill() error {
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if c.IdleTimeout < 0 || c.AbsoluteTimeout < 0 || c.TouchInterval < 0 {
		return errors.New("session: timeouts must be positive")
	}
	if c.IdleTimeout > c.AbsoluteTimeout {
		return fmt.Errorf("session: idle timeout %s is longer than the absolute timeout %s", c.IdleTimeout, c.AbsoluteTimeout)
	}
	if c.TouchInterval == 0 {
		c.TouchInterval = min(DefaultTouchInterval, c.IdleTimeout/10)
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.TouchInterval > c.IdleTimeout/2 {
		return fmt.Errorf("session: touch interval %s must be at most half the idle timeout %s", c.TouchInterval, c.IdleTimeout)
	}
	return nil
}

// Manager runs the session lifecycle over a Store. It is safe for concurrent
// use.
type Manager struct {
	store Store
	cfg   Config
	cache cache
}

// NewManager returns a Manager, or an error if cfg is contradictory.
func NewManager(s Store, cfg Config) (*Manager, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	m := &Manager{store: s, cfg: cfg}
	m.cache.init(cfg.CacheTTL)
	return m, nil
}

// Config returns the effective configuration (defaults filled in).
func (m *Manager) Config() Config { return m.cfg }

// Meta describes the device a session is created from.
type Meta struct {
	UserAgent string
	IP        string
}

// Secret is a session secret as the client holds it: unpadded base64url of
// 32 random bytes. It is never logged: its LogValue and String redact it.
type Secret struct {
	raw [SecretLen]byte
}

// String returns a redacted form; use Encode for the cookie value.
func (Secret) String() string { return "[REDACTED]" }

// GoString returns a redacted form.
func (Secret) GoString() string { return "[REDACTED]" }

// LogValue makes slog print a redacted form.
func (Secret) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// Encode returns the cookie value.
func (s Secret) Encode() string { return base64.RawURLEncoding.EncodeToString(s.raw[:]) }

// Hash returns the SHA-256 hash under which the store keeps the session.
func (s Secret) Hash() []byte {
	h := sha256.Sum256(s.raw[:])
	return h[:]
}

// CSRFToken returns the CSRF token bound to this session.
func (s Secret) CSRFToken() string { return csrf.Token(s.raw[:]) }

// ValidCSRF reports, in constant time, whether presented is this session's
// CSRF token.
func (s Secret) ValidCSRF(presented string) bool { return csrf.Valid(s.raw[:], presented) }

// ParseSecret decodes a cookie value. Anything but exactly 43 characters of
// canonical unpadded base64url is refused with ErrNoSession.
func ParseSecret(v string) (Secret, error) {
	var s Secret
	if len(v) != encodedSecretLen {
		return s, ErrNoSession
	}
	n, err := base64.RawURLEncoding.Strict().Decode(s.raw[:], []byte(v))
	if err != nil || n != SecretLen {
		return Secret{}, ErrNoSession
	}
	return s, nil
}

func newSecret() (Secret, error) {
	var s Secret
	if _, err := rand.Read(s.raw[:]); err != nil {
		return s, fmt.Errorf("session: read random: %w", err)
	}
	return s, nil
}

// NewID returns a random 128-bit opaque id in unpadded base64url.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Create starts a new session for userID with a fresh secret. A secret
// presented by the client is never adopted: every login calls Create.
func (m *Manager) Create(ctx context.Context, userID string, meta Meta) (Secret, *Session, error) {
	secret, err := newSecret()
	if err != nil {
		return Secret{}, nil, err
	}
	id, err := NewID()
	if err != nil {
		return Secret{}, nil, err
	}
	now := m.cfg.Clock.Now().UTC()
	s := &Session{
		ID:         id,
		Hash:       secret.Hash(),
		UserID:     userID,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(m.cfg.AbsoluteTimeout),
		UserAgent:  meta.UserAgent,
		IP:         meta.IP,
	}
	s.IdleExpiresAt = m.idleDeadline(s, now)
	if err := m.store.CreateSession(ctx, s); err != nil {
		return Secret{}, nil, fmt.Errorf("create session: %w", err)
	}
	return secret, s, nil
}

func (m *Manager) idleDeadline(s *Session, seen time.Time) time.Time {
	d := seen.Add(m.cfg.IdleTimeout)
	if d.After(s.ExpiresAt) {
		return s.ExpiresAt
	}
	return d
}

// Lookup returns the live session for a secret and records the use
// (coalesced). An unknown, revoked or expired secret is ErrNoSession; one
// that Lookup itself finds expired is ErrExpired (which is ErrNoSession),
// returned with the session. The
// Manager re-checks both deadlines with its own configuration, so shortening
// a timeout takes effect for existing sessions at once.
func (m *Manager) Lookup(ctx context.Context, secret Secret) (*Session, error) {
	hash := secret.Hash()
	now := m.cfg.Clock.Now()
	s := m.cache.get(hash, now)
	if s == nil {
		gen := m.cache.generation()
		var err error
		s, err = m.store.SessionByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNoSession
		}
		if err != nil {
			return nil, fmt.Errorf("look up session: %w", err)
		}
		m.cache.put(s, now, gen)
	}
	if !m.live(s, now) {
		m.cache.drop(hash)
		defer m.cache.drop(hash)
		if err := m.store.DeleteSession(ctx, hash); err != nil {
			return nil, fmt.Errorf("delete expired session: %w", err)
		}
		return s, ErrExpired
	}
	if now.Sub(s.LastSeenAt) >= m.cfg.TouchInterval {
		seen := now.UTC()
		idle := m.idleDeadline(s, seen)
		err := m.store.TouchSession(ctx, hash, seen, idle)
		if errors.Is(err, store.ErrNotFound) {
			// Revoked between the read and the write.
			m.cache.drop(hash)
			return nil, ErrNoSession
		}
		if err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
		s.LastSeenAt, s.IdleExpiresAt = seen, idle
		m.cache.touched(hash, seen, idle)
	}
	return s, nil
}

// live reports whether s is live at now under both the stored deadlines
// and the Manager's current timeouts.
func (m *Manager) live(s *Session, now time.Time) bool {
	return now.Before(s.ExpiresAt) && now.Before(s.IdleExpiresAt) &&
		now.Before(s.CreatedAt.Add(m.cfg.AbsoluteTimeout)) && now.Before(s.LastSeenAt.Add(m.cfg.IdleTimeout))
}

// Delete ends the session with that secret (logout). Ending a session that
// does not exist is not an error.
func (m *Manager) Delete(ctx context.Context, secret Secret) error {
	// Dropped before and after the delete: a lookup that read the store in
	// between cannot put the session back (see cache.put).
	m.cache.drop(secret.Hash())
	defer m.cache.drop(secret.Hash())
	if err := m.store.DeleteSession(ctx, secret.Hash()); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// List returns the user's live sessions, newest first.
func (m *Manager) List(ctx context.Context, userID string) ([]*Session, error) {
	ss, err := m.store.SessionsByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	now := m.cfg.Clock.Now()
	live := ss[:0]
	for _, s := range ss {
		if m.live(s, now) {
			live = append(live, s)
		}
	}
	return live, nil
}

// Revoke ends the user's session with public id id. A session of another
// user is ErrNotFound, exactly as a missing one.
func (m *Manager) Revoke(ctx context.Context, userID, id string) (*Session, error) {
	s, err := m.store.DeleteUserSession(ctx, userID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("revoke session: %w", err)
	}
	m.cache.drop(s.Hash)
	return s, nil
}

// RevokeAll ends every session of the user except the one whose secret is
// keep (nil keeps none), and returns the ended sessions.
func (m *Manager) RevokeAll(ctx context.Context, userID string, keep *Secret) ([]*Session, error) {
	var keepHash []byte
	if keep != nil {
		keepHash = keep.Hash()
	}
	// Drop the cached sessions first, so that none is served while the
	// store deletes them, and again after, for any looked up meanwhile.
	m.cache.dropUser(userID, keepHash)
	ss, err := m.store.DeleteUserSessions(ctx, userID, keepHash)
	m.cache.dropUser(userID, keepHash)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	return ss, nil
}

// Forget drops the session with that hash from the Manager's cache, so
// that its next lookup asks the store. It is for changes made behind the
// Manager's back: another instance deleting a session in a shared store.
func (m *Manager) Forget(hash []byte) { m.cache.drop(hash) }

// ForgetUser drops every cached session of the user (see Forget).
func (m *Manager) ForgetUser(userID string) { m.cache.dropUser(userID, nil) }

// ForgetAll empties the cache (see Forget): for when changes made
// elsewhere may have been missed.
func (m *Manager) ForgetAll() { m.cache.dropAll() }

// SetCacheEnabled turns the session cache on or off. While it is off, every
// lookup asks the store: for when the changes made elsewhere cannot be
// followed. Either way the cache restarts empty. It changes nothing when
// Config.CacheTTL disables the cache.
func (m *Manager) SetCacheEnabled(on bool) { m.cache.setEnabled(on) }
