// Package account holds Gatehouse's users: registration, password
// verification, password changes, roles and forced logout.
//
// Passwords are hashed with Argon2id and stored as PHC strings
// ($argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>). The cost parameters default
// to the OWASP minimum and cannot be configured below it. A hash is
// re-computed with the current parameters when a user logs in with a hash made
// under older ones. Every Argon2id computation takes a slot from a bounded
// pool, so that a burst of logins cannot exhaust memory: each one holds the
// configured memory (19 MiB by default) while it runs.
//
// Usernames are normalised with the PRECIS UsernameCaseMapped profile
// (RFC 8265): "Alice" and "ＡＬＩＣＥ" are the same user, "alice".
//
// The package knows no HTTP and no database: it stores users through a Store.
package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

// Errors callers branch on. Errors from the store pass through wrapped, so
// errors.Is(err, store.ErrNotFound) holds for a missing user.
var (
	// ErrBadCredentials is returned when a username and password do not
	// match a user: unknown user, wrong password, or a username that cannot
	// be normalised. The cases are deliberately not told apart.
	ErrBadCredentials = errors.New("account: bad credentials")
	// ErrUsernameTaken is returned by Register when the normalised username
	// already belongs to a user.
	ErrUsernameTaken = errors.New("account: username taken")
	// ErrInvalidUsername is returned for a username that cannot be
	// normalised. The error is a *PolicyError that says why.
	ErrInvalidUsername = errors.New("account: invalid username")
	// ErrPasswordPolicy is returned for a new password that the policy
	// refuses. The error is a *PolicyError that says why.
	ErrPasswordPolicy = errors.New("account: password refused by policy")
	// ErrInvalidRole is returned by SetRoles for a malformed role name.
	ErrInvalidRole = errors.New("account: invalid role")
)

// PolicyError explains why a username or a password was refused. It wraps
// ErrInvalidUsername or ErrPasswordPolicy.
type PolicyError struct {
	// Err is ErrInvalidUsername or ErrPasswordPolicy.
	Err error
	// Reason is a short human-readable explanation, such as "must be at
	// least 8 characters". It never contains the refused input, so it is
	// safe to show to the client and to log.
	Reason string
}

// Error returns the sentinel's message followed by the reason.
func (e *PolicyError) Error() string { return e.Err.Error() + ": " + e.Reason }

// Unwrap returns the sentinel, ErrInvalidUsername or ErrPasswordPolicy.
func (e *PolicyError) Unwrap() error { return e.Err }

// Config configures a Service. The zero value is valid: every field has a
// secure default.
type Config struct {
	// Clock tells the time of creations and updates. Default: the system
	// clock.
	Clock clock.Clock
	// Params are the Argon2id cost parameters of new hashes. The zero value
	// means DefaultParams(). Params weaker than the OWASP minimum are
	// refused (see Params.Validate).
	Params Params
	// MaxConcurrentHashes bounds how many Argon2id computations run at once;
	// the others wait for a slot (or for their context to end). Each holds
	// Params.Memory KiB while it runs, so hashing never takes more than
	// MaxConcurrentHashes × Params.Memory (2 × 19 MiB by default on two
	// cores). Default (0): max(2, runtime.NumCPU()).
	MaxConcurrentHashes int
	// UserCacheTTL is how long User serves a user from memory (the hot path
	// of every authenticated request); default one second, negative
	// disables. Changes made through the Service drop the entry at once;
	// the TTL bounds how long a change made by another process (the CLI)
	// goes unseen.
	UserCacheTTL time.Duration
	// Gauges, if set, is told of every hash that starts waiting for a slot
	// (waiting +1), gets one (waiting -1, inFlight +1) and ends (inFlight
	// -1): the queue that the concurrency bound builds under a login flood.
	Gauges HashGauges
	// OnRehashError, if set, is called (synchronously, from Authenticate)
	// when a successful login found a hash made with other parameters and
	// could not store a new one. The login succeeds anyway. The error names
	// the user id, never the password.
	OnRehashError func(error)
}

// HashGauges receives the changes of the password-hashing queue (see
// Config.Gauges); *metrics.Metrics implements it.
type HashGauges interface {
	Argon2Waiting(delta int)
	Argon2InFlight(delta int)
}

// List limits: a List limit of zero or less means defaultListLimit, and a
// larger one than maxListLimit is lowered to it.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// Service is the account domain logic. It is safe for concurrent use.
type Service struct {
	store         Store
	clock         clock.Clock
	params        Params
	sem           chan struct{}
	dummy         string
	onRehashError func(error)
	gauges        HashGauges
	users         userCache

	// hashHook, set only by tests, is called by every Argon2id computation
	// while it holds its slot.
	hashHook func()
}

// New returns a Service storing users in s. It refuses an invalid Config.
func New(s Store, cfg Config) (*Service, error) {
	if s == nil {
		return nil, errors.New("account: nil store")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams()
	}
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.MaxConcurrentHashes < 0:
		return nil, fmt.Errorf("account: MaxConcurrentHashes is %d, must not be negative", cfg.MaxConcurrentHashes)
	case cfg.MaxConcurrentHashes == 0:
		cfg.MaxConcurrentHashes = max(2, runtime.NumCPU())
	}
	// The dummy hash that unknown users are checked against, so that they
	// cost one Argon2id computation with the current parameters, like a
	// wrong password. Its key is random: no password matches it.
	dummy, err := newHash(cfg.Params, make([]byte, cfg.Params.KeyLen))
	if err != nil {
		return nil, err
	}
	if _, err := rand.Read(dummy.key); err != nil {
		return nil, fmt.Errorf("account: dummy hash: %w", err)
	}
	if cfg.UserCacheTTL == 0 {
		cfg.UserCacheTTL = time.Second
	}
	return &Service{
		users:         userCache{ttl: cfg.UserCacheTTL, m: map[string]userEntry{}},
		store:         s,
		clock:         cfg.Clock,
		params:        cfg.Params,
		sem:           make(chan struct{}, cfg.MaxConcurrentHashes),
		dummy:         dummy.String(),
		onRehashError: cfg.OnRehashError,
		gauges:        cfg.Gauges,
	}, nil
}

// now returns the clock's time in UTC, without a monotonic reading.
func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// Register creates a user. The username is normalised (ErrInvalidUsername)
// and the password checked against the policy (ErrPasswordPolicy) before
// anything is hashed; a taken username is ErrUsernameTaken. The new user has
// no roles.
func (s *Service) Register(ctx context.Context, username, password string) (*User, error) {
	name, err := NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("account: register: %w", err)
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &User{
		ID:           id,
		Username:     name,
		PasswordHash: hash,
		Roles:        []string{},
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, ErrUsernameTaken
		}
		return nil, fmt.Errorf("account: create user: %w", err)
	}
	return u, nil
}

// Authenticate returns the user whose normalised username is username if
// password is theirs. An unknown user, a wrong password and a username that
// cannot be normalised are all ErrBadCredentials; an unknown user costs one
// Argon2id computation, like a wrong password. (A username that cannot be
// normalised is refused at once: it says nothing about who exists.)
//
// When the stored hash was made with other parameters than the current ones,
// the password is hashed again and stored; if that fails the login still
// succeeds and the error goes to Config.OnRehashError.
//
// If ctx ends while waiting for a hashing slot, the error wraps ctx.Err().
func (s *Service) Authenticate(ctx context.Context, username, password string) (*User, error) {
	name, err := NormalizeUsername(username)
	if err != nil {
		return nil, ErrBadCredentials
	}
	u, err := s.store.UserByUsername(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if _, _, err := s.verify(ctx, s.dummy, password); err != nil {
			return nil, fmt.Errorf("account: authenticate: %w", err)
		}
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("account: authenticate: look up user: %w", err)
	}
	ok, stored, err := s.verify(ctx, u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("account: authenticate user %s: %w", u.ID, err)
	}
	if !ok {
		return nil, ErrBadCredentials
	}
	if !s.params.matches(stored) {
		if err := s.rehash(ctx, u, password); err != nil && s.onRehashError != nil {
			s.onRehashError(err)
		}
	}
	return u, nil
}

// rehash stores a new hash of password made with the current parameters and
// updates u on success.
func (s *Service) rehash(ctx context.Context, u *User, password string) error {
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("account: rehash password of user %s: %w", u.ID, err)
	}
	now := s.now()
	defer s.users.drop(u.ID)
	if err := s.store.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
		return fmt.Errorf("account: rehash password of user %s: store: %w", u.ID, err)
	}
	u.PasswordHash = hash
	u.UpdatedAt = now
	return nil
}

// ChangePassword replaces the password of the user with id userID. current
// must be the user's password (ErrBadCredentials otherwise) and next must
// pass the policy (ErrPasswordPolicy); the policy is checked first. Ending
// the user's other sessions is the caller's job.
func (s *Service) ChangePassword(ctx context.Context, userID, current, next string) error {
	return s.ChangePasswordThen(ctx, userID, current, next, nil)
}

// ChangePasswordThen is ChangePassword with a step between the checks and
// the change: once the new password passes the policy and the current one
// is verified, revoke runs (the caller ends the user's other credentials
// there), and only when it succeeds is the new hash stored. A failure
// therefore never leaves the new password in place with the old
// credentials still alive; the user can simply try again. revoke may be nil.
func (s *Service) ChangePasswordThen(ctx context.Context, userID, current, next string, revoke func(context.Context) error) error {
	if err := checkPassword(next); err != nil {
		return err
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("account: change password: load user %q: %w", userID, err)
	}
	ok, _, err := s.verify(ctx, u.PasswordHash, current)
	if err != nil {
		return fmt.Errorf("account: change password of user %s: %w", u.ID, err)
	}
	if !ok {
		return ErrBadCredentials
	}
	hash, err := s.hashPassword(ctx, next)
	if err != nil {
		return fmt.Errorf("account: change password of user %s: %w", u.ID, err)
	}
	if revoke != nil {
		if err := revoke(ctx); err != nil {
			return fmt.Errorf("account: change password of user %s: end other credentials: %w", u.ID, err)
		}
	}
	defer s.users.drop(u.ID)
	if err := s.store.SetPasswordHash(ctx, u.ID, hash, s.now()); err != nil {
		return fmt.Errorf("account: change password of user %s: store: %w", u.ID, err)
	}
	return nil
}

// User returns the user with that id; a missing one is store.ErrNotFound.
//
// Users are served from memory for up to Config.UserCacheTTL; every change
// made through this Service drops the user from the cache at once.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	now := s.clock.Now()
	if u := s.users.get(id, now); u != nil {
		return u, nil
	}
	gen := s.users.generation()
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("account: load user %q: %w", id, err)
	}
	s.users.put(u, now, gen)
	return u, nil
}

// UserByUsername normalises username and returns that user. A username that
// cannot be normalised is ErrInvalidUsername; a missing user is
// store.ErrNotFound.
func (s *Service) UserByUsername(ctx context.Context, username string) (*User, error) {
	name, err := NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByUsername(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("account: load user by username: %w", err)
	}
	return u, nil
}

// roleRE is the syntax of a role name.
var roleRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// CheckRoles validates role names and returns them sorted without
// duplicates; a malformed name is ErrInvalidRole.
func CheckRoles(roles []string) ([]string, error) {
	clean := make([]string, 0, len(roles))
	for _, r := range roles {
		if !roleRE.MatchString(r) {
			return nil, fmt.Errorf("%w: %q must match %s", ErrInvalidRole, r, roleRE)
		}
		clean = append(clean, r)
	}
	slices.Sort(clean)
	return slices.Compact(clean), nil
}

// SetRoles replaces the roles of the user with that id. Each role must match
// ^[a-z][a-z0-9_-]{0,31}$ (ErrInvalidRole otherwise); duplicates are dropped
// and the roles stored sorted. An empty list removes every role.
func (s *Service) SetRoles(ctx context.Context, id string, roles []string) error {
	clean, err := CheckRoles(roles)
	if err != nil {
		return err
	}
	defer s.users.drop(id)
	if err := s.store.SetRoles(ctx, id, clean, s.now()); err != nil {
		return fmt.Errorf("account: set roles of user %q: %w", id, err)
	}
	return nil
}

// List returns up to limit users ordered by username, starting after the
// username after ("" for the first page; pass the last username of a page
// to get the next). A limit of zero or less means 100; more than 1000 means
// 1000.
func (s *Service) List(ctx context.Context, after string, limit int) ([]*User, error) {
	switch {
	case limit <= 0:
		limit = defaultListLimit
	case limit > maxListLimit:
		limit = maxListLimit
	}
	users, err := s.store.ListUsers(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("account: list users: %w", err)
	}
	return users, nil
}

// RevokeAll refuses every credential of the user with that id issued before
// at: it sets the user's RevokedBefore, which never moves backwards. Ending
// the user's sessions and refresh families is the caller's job.
func (s *Service) RevokeAll(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return errors.New("account: revoke all: zero time")
	}
	defer s.users.drop(id)
	if err := s.store.SetRevokedBefore(ctx, id, at.UTC()); err != nil {
		return fmt.Errorf("account: revoke credentials of user %q: %w", id, err)
	}
	return nil
}

// newID returns a new user id: 16 bytes from crypto/rand, base64url without
// padding.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("account: new user id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
