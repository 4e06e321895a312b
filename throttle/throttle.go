// Package throttle slows down password guessing at login, per account and per
// client address.
//
// A Limiter counts failed login attempts per key in a sliding window. The
// first few failures are free; after them each further attempt must wait an
// exponentially growing delay, and a hard cap refuses every attempt once the
// window holds Max failures (see Policy). The HTTP layer asks two limiters
// before it checks a password: one keyed by the account (AccountKey), one by
// the client address (IPKey).
//
// Throttling only ever concerns login attempts. It knows nothing about
// sessions or tokens: an attacker hammering an account can slow down the
// rightful user's next login, but never ends or locks the sessions the user
// already has, and a login with a valid password resets the account's count.
//
// Memory is the in-process implementation; a shared backend (Redis) for
// several instances implements the same Limiter interface.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Limiter decides whether a login attempt for a key may proceed.
//
// The protocol for one attempt is: Check; when it allows the attempt, check
// the password, then end the attempt with exactly one of Failure, Success or
// Release. Check reserves the attempt atomically: from the moment it is
// allowed it counts against the hard cap, so any number of concurrent
// attempts can never slip past it. The backoff follows recorded failures
// only: attempts in flight are not failures, so that concurrent logins with
// the right password (one account on several devices, an office behind one
// address) are not refused. A reservation that is never ended lapses after
// AttemptHold.
//
// Implementations are safe for concurrent use.
type Limiter interface {
	// Check reports whether an attempt for key may proceed now. When it
	// may, retryAfter is 0 and the attempt is reserved; when it may not,
	// retryAfter > 0 says how long to wait (for a Retry-After header).
	Check(ctx context.Context, key string) (retryAfter time.Duration, err error)
	// Failure ends a reserved attempt for key as a failure (a wrong
	// password). Without a reservation, it records a failure all the same.
	Failure(ctx context.Context, key string) error
	// Success ends a reserved attempt for key as a success and clears the
	// failures recorded for key.
	Success(ctx context.Context, key string) error
	// Release ends a reserved attempt for key without counting it: the
	// password was not checked (another limiter refused, a store failed),
	// or the login succeeded and the key's failures must be kept (the
	// client address of a successful login: see IPKey).
	Release(ctx context.Context, key string) error
}

// AttemptHold is how long an attempt reserved by Check counts when nobody
// ends it with Failure, Success or Release. It must exceed the longest a
// login attempt can take (the password hash and its queue), which the
// server's request timeout bounds.
const AttemptHold = time.Minute

// Policy says how many failures a key may have and how fast.
//
// Within a sliding Window at most Max failures are allowed. The first Free
// failures cost nothing; after them, with n failures in the window, the next
// attempt must wait BaseDelay·2^(n−Free) after the latest failure, capped at
// MaxDelay. With Max failures in the window, every attempt is refused until
// the oldest one leaves the window.
type Policy struct {
	// Window is the length of the sliding window.
	Window time.Duration
	// Max is the hard cap on failures within Window.
	Max int
	// Free is the number of failures before any delay applies.
	Free int
	// BaseDelay is the delay after the first failure beyond Free.
	BaseDelay time.Duration
	// MaxDelay caps the exponential delay.
	MaxDelay time.Duration
}

// DefaultAccountPolicy is the policy per account: at most 100 failures per
// account per hour, 5 free, then 1 s, 2 s, 4 s … up to 5 minutes between
// attempts. In practice the backoff keeps a single attacker well below the
// cap; the cap is the guarantee whatever the delays.
var DefaultAccountPolicy = Policy{
	Window:    time.Hour,
	Max:       100,
	Free:      5,
	BaseDelay: time.Second,
	MaxDelay:  5 * time.Minute,
}

// DefaultIPPolicy is the policy per client address (per /64 for IPv6): at
// most 1000 failures per hour, 20 free, then 1 s, 2 s … up to one minute.
//
// It is more generous than the account policy because many people share one
// address: an office or a mobile carrier behind NAT sends every employee's
// typos from the same IP, and a strict per-address limit would lock all of
// them out because of a few. The per-address limit is there to slow down
// password spraying (one guess against many accounts), which the account
// policy cannot see; the protection of each account is the account policy.
var DefaultIPPolicy = Policy{
	Window:    time.Hour,
	Max:       1000,
	Free:      20,
	BaseDelay: time.Second,
	MaxDelay:  time.Minute,
}

// Validate reports whether p is usable: a window of at least a second, a
// positive Max, 0 ≤ Free ≤ Max, and 0 < BaseDelay ≤ MaxDelay ≤ Window.
func (p Policy) Validate() error {
	switch {
	case p.Window < time.Second:
		return fmt.Errorf("throttle policy: window %v is shorter than 1s", p.Window)
	case p.Max < 1:
		return fmt.Errorf("throttle policy: max %d must be at least 1", p.Max)
	case p.Free < 0 || p.Free > p.Max:
		return fmt.Errorf("throttle policy: free %d must be between 0 and max %d", p.Free, p.Max)
	case p.BaseDelay <= 0:
		return fmt.Errorf("throttle policy: base delay %v must be positive", p.BaseDelay)
	case p.MaxDelay < p.BaseDelay:
		return fmt.Errorf("throttle policy: max delay %v is shorter than base delay %v", p.MaxDelay, p.BaseDelay)
	case p.MaxDelay > p.Window:
		return fmt.Errorf("throttle policy: max delay %v is longer than the window %v", p.MaxDelay, p.Window)
	}
	return nil
}

// delay returns the wait required after the latest failure when the window
// holds n failures, or 0 when n is still within the free allowance.
func (p Policy) delay(n int) time.Duration {
	if n < p.Free {
		return 0
	}
	shift := n - p.Free
	if shift >= 62 {
		return p.MaxDelay
	}
	d := p.BaseDelay << shift
	if d <= 0 || d>>shift != p.BaseDelay || d > p.MaxDelay {
		return p.MaxDelay
	}
	return d
}

// maxKeyLen bounds the length of a stored key; longer keys are replaced by
// a hash so that memory stays bounded whatever a client sends.
const maxKeyLen = 128

// compactKey returns key, or a fixed-size digest of it when it is longer
// than maxKeyLen.
func compactKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// AccountKey returns the limiter key of an account. Pass the username as
// the account package normalises it, so that case and width variants of a
// name share one count; a name too long to be stored is replaced by its
// SHA-256 digest.
func AccountKey(username string) string {
	return compactKey("user:" + username)
}

// IPKey returns the limiter key of a client address. IPv4 addresses (and
// IPv4-mapped IPv6 ones) count one by one; IPv6 addresses count per /64,
// since a single client usually holds a whole /64 and could otherwise
// change address at every attempt. The zone is ignored.
func IPKey(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	switch {
	case !addr.IsValid():
		return "ip:invalid"
	case addr.Is4():
		return "ip:" + addr.String()
	}
	// PrefixFrom with 64 bits never fails on an IPv6 address.
	p, _ := addr.Prefix(64)
	return "ip:" + p.String()
}

// errBadKey is returned for an empty key.
var errBadKey = errors.New("throttle: empty key")
