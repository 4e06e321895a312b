// Package keys is Gatehouse's signing key ring: it generates the keys that
// sign access tokens, keeps their private parts encrypted in a Store,
// publishes the public parts as a JWKS, and rotates, retires and removes
// them.
//
// A key's life, in the times of its Record:
//
//	created ── published in the JWKS at once
//	SignsFrom ── starts signing (creation + PublishDelay: verifiers that
//	             cache the JWKS learn the key before any token carries it)
//	RetiredAt ── stops signing: the moment its successor starts
//	RemoveAt  ── leaves the JWKS and stops verifying, once every token it
//	             signed has expired (RetiredAt + TokenLifetime + Leeway)
//
// Remove is the emergency exit: the key leaves the JWKS and is refused at
// once, and if it was signing, the ring promotes the next published key or
// generates one that signs immediately.
//
// The kid of a key is the RFC 7638 JWK thumbprint of its public key
// (SHA-256, base64url): deterministic, collision-free, and checkable, so a
// record whose public key was swapped does not load. Private keys are PKCS #8
// sealed with AES-256-GCM under a 32-byte key-encryption key (KEK) from the
// configuration, with the record's kid and alg as additional data; they are
// decrypted once, when the ring loads them, and kept in memory.
package keys

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/jws"
	"github.com/gatehouse-auth/gatehouse/store"
)

// Defaults of RingConfig.
const (
	// DefaultPublishDelay is the server's default publish delay (the
	// contract's 5 minutes). RingConfig's zero PublishDelay means none.
	DefaultPublishDelay = 5 * time.Minute
	// DefaultTokenLifetime is the default longest access-token lifetime.
	DefaultTokenLifetime = 10 * time.Minute
	// DefaultLeeway is the default leeway added before a retired key leaves
	// the JWKS: the largest leeway a verifier may use.
	DefaultLeeway = 60 * time.Second
)

// RingConfig configures a Ring.
type RingConfig struct {
	// KEK is the 32-byte key-encryption key that seals the private keys
	// (see ParseKEK, LoadOrCreateKEKFile). Required.
	KEK []byte
	// Alg is the algorithm of the keys the ring generates: EdDSA (the
	// default), ES256 or RS256. Keys of another algorithm stay valid until
	// they are retired; NewRing rotates when the newest key's algorithm is
	// not Alg.
	Alg string
	// Clock tells the time; nil is the system clock.
	Clock clock.Clock
	// PublishDelay is how long a new key is published before it signs.
	// Zero means it signs at once (--dev); servers use DefaultPublishDelay.
	// It must not be negative.
	PublishDelay time.Duration
	// TokenLifetime is the longest lifetime of the tokens the keys sign
	// (default DefaultTokenLifetime). An Issuer refuses a longer lifetime.
	TokenLifetime time.Duration
	// Leeway is the clock leeway that verifiers may grant past a token's
	// expiry (default DefaultLeeway, the largest a Gatehouse verifier allows).
	Leeway time.Duration
}

// Ring is the signing key ring. It is safe for concurrent use: reads
// (Signer, Public, JWKS) take no lock; changes are serialised and go
// through the Store first.
//
// With several instances on one Store, each instance sees the others'
// changes after its own Reload (or its own next change, which re-reads the
// Store first); call Reload periodically, well within PublishDelay.
type Ring struct {
	store         Store
	aead          cipher.AEAD
	alg           string
	clock         clock.Clock
	publishDelay  time.Duration
	tokenLifetime time.Duration
	keep          time.Duration // TokenLifetime + Leeway: retirement to removal

	mu    sync.Mutex // serialises changes and reloads
	state atomic.Pointer[ringState]
}

// SigningKey is a private key of the ring, ready to sign.
type SigningKey struct {
	kid, alg string
	priv     crypto.Signer
}

// KID returns the key id, for the token header.
func (k *SigningKey) KID() string { return k.kid }

// Alg returns the JWS algorithm, for the token header.
func (k *SigningKey) Alg() string { return k.alg }

// Sign returns the JWS signature of signingInput (the first two segments of
// a compact JWS and the dot between them).
func (k *SigningKey) Sign(signingInput []byte) ([]byte, error) {
	return jws.Sign(k.alg, k.priv, signingInput)
}

// ringKey is one record as the ring holds it in memory.
type ringKey struct {
	rec    Record
	pub    *publicKey
	signer *SigningKey // nil for keys that will never be used again
}

// published reports whether the key is in the JWKS and verifies at now.
func (k *ringKey) published(now time.Time) bool {
	return !k.rec.Removed && (k.rec.RemoveAt.IsZero() || now.Before(k.rec.RemoveAt))
}

// ringState is an immutable snapshot of the ring, swapped on every change.
type ringState struct {
	keys  []*ringKey // in signing order (see order)
	byKID map[string]*ringKey
	jwks  atomic.Pointer[jwksDoc]
}

// jwksDoc is an encoded JWKS and the span of time it is right for.
type jwksDoc struct {
	doc          []byte
	built, until time.Time // until is zero when no key of it is due to leave
}

// NewRing loads the ring from s, decrypting its keys, and makes sure that it
// has a key to sign with now: on an empty store it creates one that signs at
// once. A wrong KEK is ErrUnseal.
func NewRing(ctx context.Context, s Store, cfg RingConfig) (*Ring, error) {
	if s == nil {
		return nil, errors.New("keys: nil store")
	}
	aead, err := newAEAD(cfg.KEK)
	if err != nil {
		return nil, err
	}
	r := &Ring{store: s, aead: aead, alg: cfg.Alg, clock: cfg.Clock, publishDelay: cfg.PublishDelay, tokenLifetime: cfg.TokenLifetime}
	if r.alg == "" {
		r.alg = EdDSA
	}
	if _, ok := algorithms[r.alg]; !ok {
		return nil, fmt.Errorf("keys: unsupported algorithm %q (want EdDSA, ES256 or RS256)", r.alg)
	}
	if r.clock == nil {
		r.clock = clock.System{}
	}
	leeway := cfg.Leeway
	switch {
	case r.publishDelay < 0:
		return nil, errors.New("keys: negative publish delay")
	case r.tokenLifetime < 0:
		return nil, errors.New("keys: negative token lifetime")
	case leeway < 0:
		return nil, errors.New("keys: negative leeway")
	}
	if r.tokenLifetime == 0 {
		r.tokenLifetime = DefaultTokenLifetime
	}
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	r.keep = r.tokenLifetime + leeway

	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(ctx); err != nil {
		return nil, err
	}
	err = r.changeLocked(ctx, func(p *plan) error {
		if newest := p.newestLive(); newest != nil && newest.Alg != r.alg {
			_, err := p.rotate()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// TokenLifetime returns the longest access-token lifetime the ring keeps
// retired keys published for.
func (r *Ring) TokenLifetime() time.Duration { return r.tokenLifetime }

// Signer returns the key that signs now: the newest key whose SignsFrom has
// come, that is neither retired nor removed. In the rare case that there is
// none (the signer was removed by another instance), it repairs the ring
// first, as Remove does.
func (r *Ring) Signer(ctx context.Context) (*SigningKey, error) {
	if k := r.state.Load().signer(r.clock.Now()); k != nil {
		return k, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.changeLocked(ctx, func(*plan) error { return nil }); err != nil {
		return nil, err
	}
	if k := r.state.Load().signer(r.clock.Now()); k != nil {
		return k, nil
	}
	return nil, errors.New("keys: no signing key")
}

// Public returns the algorithm and public key of the published key kid: one
// that is in the JWKS now. ok is false for an unknown, removed or expired
// key. The algorithm is the key's own; a token's header cannot change it.
func (r *Ring) Public(kid string) (alg string, key crypto.PublicKey, ok bool) {
	k := r.state.Load().byKID[kid]
	if k == nil || !k.published(r.clock.Now()) {
		return "", nil, false
	}
	return k.rec.Alg, k.pub.key, true
}

// JWKS returns the JSON Web Key Set of the published keys, newest first:
// {"keys":[{"crv","kty","x"(,"y") or "e","n", "kid","alg","use":"sig"}]}.
// Private parts never appear. The encoding is cached until the ring
// changes or a key is due to leave.
func (r *Ring) JWKS() []byte {
	st := r.state.Load()
	now := r.clock.Now()
	if d := st.jwks.Load(); d != nil && !now.Before(d.built) && (d.until.IsZero() || now.Before(d.until)) {
		return bytes.Clone(d.doc)
	}
	d := st.buildJWKS(now)
	st.jwks.Store(d)
	return bytes.Clone(d.doc)
}

// Rotate creates a new key. It is published at once and signs from
// signsFrom (now plus the publish delay); at that moment the current signer
// retires, and it leaves the JWKS TokenLifetime plus Leeway later.
func (r *Ring) Rotate(ctx context.Context) (kid string, signsFrom time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rec *Record
	err = r.changeLocked(ctx, func(p *plan) error {
		rec, err = p.rotate()
		return err
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return rec.KID, rec.SignsFrom, nil
}

// RotateIfOlderThan rotates when the newest key (pending ones included) was
// created maxAge or more ago, for scheduled rotation. It returns the new
// key's kid and start, or an empty kid when no rotation was due.
func (r *Ring) RotateIfOlderThan(ctx context.Context, maxAge time.Duration) (kid string, signsFrom time.Time, err error) {
	if maxAge <= 0 {
		return "", time.Time{}, errors.New("keys: rotation age must be positive")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var rec *Record
	err = r.changeLocked(ctx, func(p *plan) error {
		if newest := p.newestCreated(); newest != nil && p.now.Sub(newest.CreatedAt) < maxAge {
			return nil
		}
		rec, err = p.rotate()
		return err
	})
	if err != nil || rec == nil {
		return "", time.Time{}, err
	}
	return rec.KID, rec.SignsFrom, nil
}

// Remove is the emergency removal of the key kid: from now on it is out of
// the JWKS, Public refuses it, and it never signs again. If it was signing,
// the earliest published key that was waiting for its turn signs at once,
// or, without one, a new key is generated that signs at once. Removing a
// removed key does nothing; an unknown kid is store.ErrNotFound.
func (r *Ring) Remove(ctx context.Context, kid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changeLocked(ctx, func(p *plan) error {
		rec := p.find(kid)
		if rec == nil {
			return fmt.Errorf("keys: remove %s: %w", kid, store.ErrNotFound)
		}
		if rec.Removed {
			return nil
		}
		rec.Removed = true
		if rec.RetiredAt.IsZero() || rec.RetiredAt.After(p.now) {
			rec.RetiredAt = p.now
		}
		if rec.RemoveAt.IsZero() || rec.RemoveAt.After(p.now) {
			rec.RemoveAt = p.now
		}
		p.changed[kid] = true
		return nil
	})
}

// Reload re-reads the Store, to see the changes of other instances. Keys
// already in memory are not decrypted again.
func (r *Ring) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(ctx)
}

// reloadLocked reads the store and installs what it holds.
func (r *Ring) reloadLocked(ctx context.Context) error {
	recs, err := r.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load signing keys: %w", err)
	}
	return r.install(recs, nil)
}

// install builds and swaps in the state for recs. Keys already in memory,
// or just generated (fresh), are reused; the others are checked and, when
// they may still be used, decrypted.
func (r *Ring) install(recs []*Record, fresh map[string]*ringKey) error {
	now := r.clock.Now()
	old := r.state.Load()
	st := &ringState{byKID: make(map[string]*ringKey, len(recs))}
	for _, rec := range recs {
		var prev *ringKey
		if fresh != nil {
			prev = fresh[rec.KID]
		}
		if prev == nil && old != nil {
			prev = old.byKID[rec.KID]
		}
		k := &ringKey{rec: *rec}
		same := prev != nil && prev.rec.Alg == rec.Alg &&
			bytes.Equal(prev.rec.Sealed, rec.Sealed) && bytes.Equal(prev.rec.PublicKey, rec.PublicKey)
		if same && (prev.signer != nil || !k.published(now)) {
			k.pub, k.signer = prev.pub, prev.signer
		} else {
			var err error
			if k.pub, k.signer, err = r.open(rec, k.published(now)); err != nil {
				return err
			}
		}
		if k.rec.Removed {
			k.signer = nil
		}
		st.keys = append(st.keys, k)
		st.byKID[rec.KID] = k
	}
	slices.SortFunc(st.keys, func(a, b *ringKey) int { return order(&a.rec, &b.rec) })
	r.state.Store(st)
	return nil
}

// open checks a stored record (algorithm, public key, kid) and, when
// decrypt is set, opens its private key and checks that it matches.
func (r *Ring) open(rec *Record, decrypt bool) (*publicKey, *SigningKey, error) {
	pub, err := parsePublicKey(rec.Alg, rec.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: record %s: %w", rec.KID, err)
	}
	if pub.kid != rec.KID {
		return nil, nil, fmt.Errorf("keys: record %s: the kid is not the thumbprint of its public key", rec.KID)
	}
	if !decrypt {
		return pub, nil, nil
	}
	pkcs8, err := unseal(r.aead, rec.KID, rec.Alg, rec.Sealed)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: record %s: %w", rec.KID, err)
	}
	defer clear(pkcs8)
	priv, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: record %s: parse private key: %w", rec.KID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("keys: record %s: private key of type %T", rec.KID, priv)
	}
	if eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub.key) {
		return nil, nil, fmt.Errorf("keys: record %s: the private key does not match the public key", rec.KID)
	}
	return pub, &SigningKey{kid: rec.KID, alg: rec.Alg, priv: signer}, nil
}

// signer returns the key that signs at now, or nil.
func (st *ringState) signer(now time.Time) *SigningKey {
	for i := len(st.keys) - 1; i >= 0; i-- {
		if k := st.keys[i]; signsAt(&k.rec, now) && k.signer != nil {
			return k.signer
		}
	}
	return nil
}

// buildJWKS encodes the keys published at now.
func (st *ringState) buildJWKS(now time.Time) *jwksDoc {
	d := &jwksDoc{built: now}
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	first := true
	for i := len(st.keys) - 1; i >= 0; i-- {
		k := st.keys[i]
		if !k.published(now) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(k.pub.jwk)
		if at := k.rec.RemoveAt; !at.IsZero() && (d.until.IsZero() || at.Before(d.until)) {
			d.until = at
		}
	}
	b.WriteString("]}")
	d.doc = b.Bytes()
	return d
}

// signsAt reports whether the record's key signs at now.
func signsAt(rec *Record, now time.Time) bool {
	return !rec.Removed && !rec.SignsFrom.After(now) && (rec.RetiredAt.IsZero() || now.Before(rec.RetiredAt))
}

// order is the signing order: by SignsFrom, then CreatedAt, then KID.
func order(a, b *Record) int {
	if c := a.SignsFrom.Compare(b.SignsFrom); c != 0 {
		return c
	}
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.KID, b.KID)
}

// plan is a change being prepared under r.mu, on a fresh read of the store.
type plan struct {
	r       *Ring
	now     time.Time
	recs    []*Record
	fresh   map[string]*ringKey // generated in this change
	changed map[string]bool     // existing records whose lifecycle changed
}

// changeLocked re-reads the store, applies edit, restores the ring's
// invariants (each key retires when its successor starts; someone signs
// now), writes what changed, and installs the result.
func (r *Ring) changeLocked(ctx context.Context, edit func(*plan) error) error {
	recs, err := r.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load signing keys: %w", err)
	}
	p := &plan{r: r, now: r.clock.Now(), recs: recs, fresh: map[string]*ringKey{}, changed: map[string]bool{}}
	p.normalize()
	if err := edit(p); err != nil {
		return err
	}
	p.normalize()
	if err := p.ensureSigner(); err != nil {
		return err
	}
	p.normalize()

	// New keys first: a crash before the updates leaves a ring that the
	// next change repairs, never one without its signer.
	for _, rec := range p.recs {
		if p.fresh[rec.KID] != nil {
			if err := r.store.CreateSigningKey(ctx, rec); err != nil {
				return fmt.Errorf("keys: save signing key %s: %w", rec.KID, err)
			}
		}
	}
	for _, rec := range p.recs {
		if p.changed[rec.KID] && p.fresh[rec.KID] == nil {
			if err := r.store.UpdateSigningKey(ctx, rec.KID, rec.Lifecycle); err != nil {
				return fmt.Errorf("keys: update signing key %s: %w", rec.KID, err)
			}
		}
	}
	if len(p.fresh) == 0 && len(p.changed) == 0 {
		return r.install(p.recs, nil)
	}
	recs, err = r.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load signing keys: %w", err)
	}
	return r.install(recs, p.fresh)
}

// live returns the records that are not removed, in signing order.
func (p *plan) live() []*Record {
	var live []*Record
	for _, rec := range p.recs {
		if !rec.Removed {
			live = append(live, rec)
		}
	}
	slices.SortFunc(live, order)
	return live
}

func (p *plan) find(kid string) *Record {
	for _, rec := range p.recs {
		if rec.KID == kid {
			return rec
		}
	}
	return nil
}

// newestLive returns the live record that signs last, or nil.
func (p *plan) newestLive() *Record {
	if live := p.live(); len(live) > 0 {
		return live[len(live)-1]
	}
	return nil
}

// newestCreated returns the most recently created live record, or nil.
func (p *plan) newestCreated() *Record {
	var newest *Record
	for _, rec := range p.live() {
		if newest == nil || rec.CreatedAt.After(newest.CreatedAt) {
			newest = rec
		}
	}
	return newest
}

// normalize sets the retirement of every live key not yet retired to the
// start of its successor, and its removal time to match. Retirements in the
// past are facts and stay as they are: a key that stopped signing never
// signs again.
func (p *plan) normalize() {
	live := p.live()
	for i, rec := range live {
		if !rec.RetiredAt.IsZero() && !rec.RetiredAt.After(p.now) {
			continue
		}
		var retire, remove time.Time
		if i+1 < len(live) {
			retire = live[i+1].SignsFrom
			remove = retire.Add(p.r.keep)
		}
		if !retire.Equal(rec.RetiredAt) || !remove.Equal(rec.RemoveAt) {
			rec.RetiredAt, rec.RemoveAt = retire, remove
			p.changed[rec.KID] = true
		}
	}
}

// ensureSigner makes sure that some key signs now: the earliest key waiting
// for its turn starts at once, or a new key is generated that does.
func (p *plan) ensureSigner() error {
	live := p.live()
	for _, rec := range live {
		if signsAt(rec, p.now) {
			return nil
		}
	}
	for _, rec := range live {
		if rec.SignsFrom.After(p.now) {
			rec.SignsFrom = p.now
			p.changed[rec.KID] = true
			return nil
		}
	}
	_, err := p.generate(p.now)
	return err
}

// rotate adds a key that signs after the publish delay.
func (p *plan) rotate() (*Record, error) {
	return p.generate(p.now.Add(p.r.publishDelay))
}

// generate adds a new key of the ring's algorithm that signs from signsFrom.
func (p *plan) generate(signsFrom time.Time) (*Record, error) {
	alg := p.r.alg
	priv, err := algorithms[alg].generate()
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	pub, err := newPublicKey(alg, priv.Public())
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: encode private key: %w", err)
	}
	defer clear(pkcs8)
	spki, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: encode public key: %w", err)
	}
	sealed, err := seal(p.r.aead, pub.kid, alg, pkcs8)
	if err != nil {
		return nil, err
	}
	now := p.now.UTC()
	rec := &Record{
		KID: pub.kid, Alg: alg, Sealed: sealed, PublicKey: spki, CreatedAt: now,
		Lifecycle: Lifecycle{SignsFrom: signsFrom.UTC()},
	}
	p.recs = append(p.recs, rec)
	p.fresh[rec.KID] = &ringKey{rec: *rec, pub: pub, signer: &SigningKey{kid: pub.kid, alg: alg, priv: priv}}
	return rec, nil
}
