package refresh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
)

var (
	// ErrInvalidGrant is returned by Manager.Rotate for any token that cannot
	// be exchanged: malformed, unknown, expired, revoked or reused. The HTTP
	// layer answers 400 invalid_grant, whatever the reason.
	ErrInvalidGrant = errors.New("refresh: invalid grant")
	// ErrReuse is returned by Manager.Rotate when a rotated token was
	// presented outside the grace rule and its family has just been revoked.
	// It wraps ErrInvalidGrant. The caller audits a high-severity event and
	// revokes the family's access tokens by sid.
	ErrReuse = fmt.Errorf("%w: reuse of a rotated token, family revoked", ErrInvalidGrant)
)

// Limits on the configuration and on the device description.
const (
	maxGrace     = time.Minute
	maxSiblings  = 1000
	maxUserAgent = 512
	maxIP        = 64
)

// Config configures a Manager. Zero lifetimes and a zero MaxSiblings take the
// defaults of DefaultConfig; a zero Grace turns the grace rule off.
type Config struct {
	// Clock tells the time; nil means the system clock.
	Clock clock.Clock
	// IdleLifetime is how long a token stays usable after it is minted
	// (default 14 days), capped at the family's absolute expiry.
	IdleLifetime time.Duration
	// AbsoluteLifetime is how long a family lives after the login, however
	// often it is refreshed (default 30 days). It must not be shorter than
	// IdleLifetime.
	AbsoluteLifetime time.Duration
	// Grace is how long after a rotation the rotated token may be presented
	// again for a sibling (see the package documentation). 0 turns the rule
	// off; the maximum is one minute; DefaultConfig sets 10 s.
	Grace time.Duration
	// MaxSiblings is how many siblings one rotated token may give within
	// Grace (default 32, at most 1000).
	MaxSiblings int
}

// DefaultConfig returns the defaults: the system clock, 14 days idle, 30 days
// absolute, 10 s grace, 32 siblings.
func DefaultConfig() Config {
	return Config{
		Clock:            clock.System{},
		IdleLifetime:     14 * 24 * time.Hour,
		AbsoluteLifetime: 30 * 24 * time.Hour,
		Grace:            10 * time.Second,
		MaxSiblings:      32,
	}
}

// Meta describes the login that starts a family.
type Meta struct {
	// Delivery is DeliveryBody (the default when empty) or DeliveryCookie.
	Delivery string
	// UserAgent is the client's User-Agent header, as received.
	UserAgent string
	// IP is the client address.
	IP string
}

// Manager applies the rules of refresh tokens over a Store. It is safe for
// concurrent use.
type Manager struct {
	store Store
	cfg   Config
}

// NewManager returns a Manager over s. It refuses a configuration that
// contradicts itself: negative values, an idle lifetime longer than the
// absolute one, a grace period over one minute or not shorter than the idle
// lifetime, more than 1000 siblings.
func NewManager(s Store, cfg Config) (*Manager, error) {
	if s == nil {
		return nil, errors.New("refresh: nil store")
	}
	def := DefaultConfig()
	if cfg.Clock == nil {
		cfg.Clock = def.Clock
	}
	if cfg.IdleLifetime == 0 {
		cfg.IdleLifetime = def.IdleLifetime
	}
	if cfg.AbsoluteLifetime == 0 {
		cfg.AbsoluteLifetime = def.AbsoluteLifetime
	}
	if cfg.MaxSiblings == 0 {
		cfg.MaxSiblings = def.MaxSiblings
	}
	switch {
	case cfg.IdleLifetime < 0 || cfg.AbsoluteLifetime < 0:
		return nil, errors.New("refresh: config: negative lifetime")
	case cfg.IdleLifetime > cfg.AbsoluteLifetime:
		return nil, fmt.Errorf("refresh: config: idle lifetime %v longer than absolute lifetime %v", cfg.IdleLifetime, cfg.AbsoluteLifetime)
	case cfg.Grace < 0 || cfg.Grace > maxGrace:
		return nil, fmt.Errorf("refresh: config: grace %v outside [0, %v]", cfg.Grace, maxGrace)
	case cfg.Grace >= cfg.IdleLifetime:
		return nil, fmt.Errorf("refresh: config: grace %v not shorter than idle lifetime %v", cfg.Grace, cfg.IdleLifetime)
	case cfg.MaxSiblings < 0 || cfg.MaxSiblings > maxSiblings:
		return nil, fmt.Errorf("refresh: config: max siblings %d outside [1, %d]", cfg.MaxSiblings, maxSiblings)
	}
	return &Manager{store: s, cfg: cfg}, nil
}

// Start begins a family for the user (a login) and returns its first token.
func (m *Manager) Start(ctx context.Context, userID string, meta Meta) (string, Family, error) {
	if userID == "" {
		return "", Family{}, errors.New("start refresh family: empty user id")
	}
	switch meta.Delivery {
	case "":
		meta.Delivery = DeliveryBody
	case DeliveryBody, DeliveryCookie:
	default:
		return "", Family{}, fmt.Errorf("start refresh family: unknown delivery %q", meta.Delivery)
	}
	id, err := newFamilyID()
	if err != nil {
		return "", Family{}, fmt.Errorf("start refresh family: %w", err)
	}
	tok, hash, err := newSecret()
	if err != nil {
		return "", Family{}, fmt.Errorf("start refresh family: %w", err)
	}
	now := m.cfg.Clock.Now()
	expires := now.Add(m.cfg.AbsoluteLifetime)
	idle := now.Add(m.cfg.IdleLifetime) // not after expires: NewManager checks it
	f := &Family{
		ID:            id,
		UserID:        userID,
		CreatedAt:     now,
		LastUsedAt:    now,
		IdleExpiresAt: idle,
		ExpiresAt:     expires,
		Delivery:      meta.Delivery,
		UserAgent:     sanitise(meta.UserAgent, maxUserAgent),
		IP:            sanitise(meta.IP, maxIP),
	}
	first := &Token{
		Hash:          hash,
		FamilyID:      id,
		Generation:    1,
		CreatedAt:     now,
		IdleExpiresAt: idle,
	}
	if err := m.store.CreateFamily(ctx, f, first); err != nil {
		return "", Family{}, fmt.Errorf("start refresh family: %w", err)
	}
	return tok, *f, nil
}

// Rotate exchanges a refresh token for the next one and returns it with its
// family and what happened. Any refusal wraps ErrInvalidGrant; a reuse is
// ErrReuse and comes with the (now revoked) family so that the caller can
// audit it and revoke its access tokens. Expired and revoked families are
// also returned with their outcome, for the audit. A malformed token is
// refused without a store round trip.
func (m *Manager) Rotate(ctx context.Context, token string) (string, Family, Outcome, error) {
	presented, ok := parseToken(token)
	if !ok {
		return "", Family{}, OutcomeInvalid, fmt.Errorf("%w: malformed token", ErrInvalidGrant)
	}
	next, nextHash, err := newSecret()
	if err != nil {
		return "", Family{}, OutcomeInvalid, fmt.Errorf("rotate refresh token: %w", err)
	}
	now := m.cfg.Clock.Now()
	res, err := m.store.Rotate(ctx, RotateRequest{
		Presented:     presented,
		NextHash:      nextHash,
		Now:           now,
		IdleExpiresAt: now.Add(m.cfg.IdleLifetime),
		Grace:         m.cfg.Grace,
		MaxSiblings:   m.cfg.MaxSiblings,
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", Family{}, OutcomeInvalid, fmt.Errorf("%w: unknown token", ErrInvalidGrant)
	case err != nil:
		return "", Family{}, OutcomeInvalid, fmt.Errorf("rotate refresh token: %w", err)
	}
	switch res.Outcome {
	case OutcomeRotated, OutcomeGraceReplay:
		return next, res.Family, res.Outcome, nil
	case OutcomeReuse:
		return "", res.Family, res.Outcome, ErrReuse
	case OutcomeExpired:
		return "", res.Family, res.Outcome, fmt.Errorf("%w: expired", ErrInvalidGrant)
	case OutcomeRevoked:
		return "", res.Family, res.Outcome, fmt.Errorf("%w: family revoked", ErrInvalidGrant)
	default:
		return "", Family{}, OutcomeInvalid, fmt.Errorf("rotate refresh token: store answered outcome %v", res.Outcome)
	}
}

// FamilyOf returns the family of a refresh token, current or rotated, live
// or not, without changing anything: the hybrid mode uses it to check the
// CSRF token bound to the family before a refresh. A malformed or unknown
// token is store.ErrNotFound.
func (m *Manager) FamilyOf(ctx context.Context, token string) (Family, error) {
	hash, ok := parseToken(token)
	if !ok {
		return Family{}, fmt.Errorf("refresh family: malformed: %w", store.ErrNotFound)
	}
	f, err := m.store.FamilyByTokenHash(ctx, hash)
	if err != nil {
		return Family{}, fmt.Errorf("refresh family: %w", err)
	}
	return *f, nil
}

// Revoke revokes the family of a refresh token (RFC 7009) and returns it.
// The token may be current or rotated. A malformed or unknown token is
// store.ErrNotFound. Revoking a revoked family is not an error; the family
// then keeps its first RevokedAt.
func (m *Manager) Revoke(ctx context.Context, token string) (Family, error) {
	hash, ok := parseToken(token)
	if !ok {
		return Family{}, fmt.Errorf("revoke refresh token: malformed: %w", store.ErrNotFound)
	}
	f, err := m.store.FamilyByTokenHash(ctx, hash)
	if err != nil {
		return Family{}, fmt.Errorf("revoke refresh token: %w", err)
	}
	f, err = m.store.RevokeFamily(ctx, f.ID, m.cfg.Clock.Now())
	if err != nil {
		return Family{}, fmt.Errorf("revoke refresh token: %w", err)
	}
	return *f, nil
}

// RevokeFamily revokes one of the user's families (the device list) and
// returns it. A family of another user, or none, is store.ErrNotFound and
// revokes nothing.
func (m *Manager) RevokeFamily(ctx context.Context, userID, id string) (Family, error) {
	f, err := m.store.Family(ctx, id)
	if err != nil {
		return Family{}, fmt.Errorf("revoke refresh family: %w", err)
	}
	if f.UserID != userID {
		return Family{}, fmt.Errorf("revoke refresh family: %w", store.ErrNotFound)
	}
	f, err = m.store.RevokeFamily(ctx, id, m.cfg.Clock.Now())
	if err != nil {
		return Family{}, fmt.Errorf("revoke refresh family: %w", err)
	}
	return *f, nil
}

// RevokeUser revokes every live family of the user (forced logout, password
// change) and returns them.
func (m *Manager) RevokeUser(ctx context.Context, userID string) ([]Family, error) {
	fs, err := m.store.RevokeUserFamilies(ctx, userID, m.cfg.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("revoke user refresh families: %w", err)
	}
	return values(fs), nil
}

// List returns the user's live families, newest first.
func (m *Manager) List(ctx context.Context, userID string) ([]Family, error) {
	fs, err := m.store.FamiliesByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list refresh families: %w", err)
	}
	return values(fs), nil
}

func values(fs []*Family) []Family {
	out := make([]Family, len(fs))
	for i, f := range fs {
		out[i] = *f
	}
	return out
}

// sanitise drops control characters and invalid UTF-8 and cuts s to at most
// limit bytes on a rune boundary.
func sanitise(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > limit {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
