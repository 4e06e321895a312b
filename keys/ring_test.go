package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/jws"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

var t0 = time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)

const (
	delay    = 5 * time.Minute
	lifetime = 10 * time.Minute
	leeway   = 30 * time.Second
)

func newKEK(t *testing.T) []byte {
	t.Helper()
	kek := make([]byte, keys.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	return kek
}

// fixture is a ring on a memory store with a fake clock.
type fixture struct {
	store *memory.Keys
	clock *clock.Fake
	kek   []byte
	ring  *keys.Ring
}

func newFixture(t *testing.T, alg string) *fixture {
	t.Helper()
	f := &fixture{store: memory.NewKeys(), clock: clock.NewFake(t0), kek: newKEK(t)}
	f.ring = f.open(t, alg)
	return f
}

// open starts a ring on the fixture's store, as another instance would.
func (f *fixture) open(t *testing.T, alg string) *keys.Ring {
	t.Helper()
	r, err := keys.NewRing(t.Context(), f.store, keys.RingConfig{
		KEK: f.kek, Alg: alg, Clock: f.clock, PublishDelay: delay, TokenLifetime: lifetime, Leeway: leeway,
	})
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

func (f *fixture) signer(t *testing.T) string {
	t.Helper()
	k, err := f.ring.Signer(t.Context())
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	return k.KID()
}

func (f *fixture) record(t *testing.T, kid string) *keys.Record {
	t.Helper()
	recs, err := f.store.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.KID == kid {
			return r
		}
	}
	t.Fatalf("no record %s", kid)
	return nil
}

func (f *fixture) count(t *testing.T) int {
	t.Helper()
	recs, err := f.store.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func (f *fixture) rotate(t *testing.T) (string, time.Time) {
	t.Helper()
	kid, from, err := f.ring.Rotate(t.Context())
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return kid, from
}

// jwksKids lists the kids of the ring's JWKS, in order.
func jwksKids(t *testing.T, r *keys.Ring) []string {
	t.Helper()
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.JWKS(), &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	kids := []string{}
	for _, k := range doc.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func published(r *keys.Ring, kid string) bool {
	_, _, ok := r.Public(kid)
	return ok
}

func TestNewRingCreatesFirstKey(t *testing.T) {
	f := newFixture(t, "")
	kid := f.signer(t)
	rec := f.record(t, kid)
	if rec.Alg != keys.EdDSA {
		t.Errorf("default alg %s, want EdDSA", rec.Alg)
	}
	if !rec.SignsFrom.Equal(t0) {
		t.Errorf("the first key signs from %v, want at once (%v)", rec.SignsFrom, t0)
	}
	if got := jwksKids(t, f.ring); !slices.Equal(got, []string{kid}) {
		t.Errorf("JWKS kids %q, want [%s]", got, kid)
	}
	// A second start on the same store keeps the key.
	again := f.open(t, "")
	if k, err := again.Signer(t.Context()); err != nil || k.KID() != kid {
		t.Fatalf("restarted ring signs with %v, %v; want %s", k, err, kid)
	}
	if f.count(t) != 1 {
		t.Fatalf("restart created a key: %d records", f.count(t))
	}
}

func TestPublishBeforeSign(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	old := f.signer(t)
	f.clock.Advance(time.Hour)
	start := f.clock.Now()
	kid, signsFrom := f.rotate(t)

	if !signsFrom.Equal(start.Add(delay)) {
		t.Fatalf("signsFrom %v, want now + publish delay %v", signsFrom, start.Add(delay))
	}
	// Published at once, newest first, but not signing yet.
	if !published(f.ring, kid) {
		t.Fatal("the new key is not published at once")
	}
	if got := jwksKids(t, f.ring); !slices.Equal(got, []string{kid, old}) {
		t.Fatalf("JWKS kids %q, want [new old]", got)
	}
	steps := []struct {
		name string
		at   time.Time
		want string
	}{
		{"at rotation", start, old},
		{"just before the new key's start", signsFrom.Add(-time.Nanosecond), old},
		{"at the new key's start", signsFrom, kid},
		{"later", signsFrom.Add(time.Hour), kid},
	}
	for _, s := range steps {
		f.clock.Set(s.at)
		if got := f.signer(t); got != s.want {
			t.Errorf("%s: signer %s, want %s", s.name, got, s.want)
		}
	}
	// The old key retired at the new key's start, and is removed from the
	// JWKS once every token it signed has expired.
	rec := f.record(t, old)
	if !rec.RetiredAt.Equal(signsFrom) {
		t.Errorf("old key RetiredAt %v, want %v", rec.RetiredAt, signsFrom)
	}
	if want := signsFrom.Add(lifetime + leeway); !rec.RemoveAt.Equal(want) {
		t.Errorf("old key RemoveAt %v, want %v", rec.RemoveAt, want)
	}
}

func TestRetiredKeyLeavesAfterLifetime(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	old := f.signer(t)
	kid, signsFrom := f.rotate(t)
	removeAt := signsFrom.Add(lifetime + leeway)
	steps := []struct {
		name      string
		at        time.Time
		published bool
	}{
		{"while still signing", signsFrom.Add(-time.Second), true},
		{"just retired", signsFrom, true},
		{"a token signed last may still be valid", removeAt.Add(-time.Nanosecond), true},
		{"every token it signed has expired", removeAt, false},
		{"much later", removeAt.Add(24 * time.Hour), false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.clock.Set(s.at)
			if got := published(f.ring, old); got != s.published {
				t.Errorf("Public(old) ok = %v, want %v", got, s.published)
			}
			want := []string{kid}
			if s.published {
				want = append(want, old)
			}
			// The JWKS is cached, yet follows the clock.
			if got := jwksKids(t, f.ring); !slices.Equal(got, want) {
				t.Errorf("JWKS kids %q, want %q", got, want)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	cases := []struct {
		name string
		// setup returns the kid to remove and the expected signer after
		// (empty: a newly generated key); newKeys is how many keys the
		// removal must generate.
		setup   func(t *testing.T, f *fixture) (remove, signer string)
		newKeys int
	}{
		{"the only signer", func(t *testing.T, f *fixture) (string, string) {
			return f.signer(t), ""
		}, 1},
		{"the signer, with a key waiting for its turn", func(t *testing.T, f *fixture) (string, string) {
			old := f.signer(t)
			kid, _ := f.rotate(t)
			return old, kid // the waiting key starts at once
		}, 0},
		{"a key waiting for its turn", func(t *testing.T, f *fixture) (string, string) {
			old := f.signer(t)
			kid, _ := f.rotate(t)
			return kid, old // the old key keeps signing, no longer due to retire
		}, 0},
		{"a retired key still published", func(t *testing.T, f *fixture) (string, string) {
			old := f.signer(t)
			kid, from := f.rotate(t)
			f.clock.Set(from.Add(time.Minute))
			return old, kid
		}, 0},
		{"the signer, after its predecessor retired", func(t *testing.T, f *fixture) (string, string) {
			_, from := f.rotate(t)
			f.clock.Set(from.Add(time.Minute))
			return f.signer(t), "" // the retired key does not come back
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, keys.EdDSA)
			victim, wantSigner := tc.setup(t, f)
			before := f.count(t)
			if err := f.ring.Remove(t.Context(), victim); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if published(f.ring, victim) {
				t.Error("the removed key still verifies")
			}
			if slices.Contains(jwksKids(t, f.ring), victim) {
				t.Error("the removed key is still in the JWKS")
			}
			if got := f.count(t) - before; got != tc.newKeys {
				t.Errorf("removal generated %d keys, want %d", got, tc.newKeys)
			}
			signer := f.signer(t)
			if signer == victim {
				t.Fatal("the removed key still signs")
			}
			if wantSigner != "" && signer != wantSigner {
				t.Errorf("signer %s, want %s", signer, wantSigner)
			}
			if !published(f.ring, signer) {
				t.Error("the signer is not published")
			}
			// Nothing brings it back: not time, not a restart, not a rotation.
			f.clock.Advance(time.Hour)
			f.rotate(t)
			f.clock.Advance(time.Hour)
			if published(f.open(t, keys.EdDSA), victim) || published(f.ring, victim) || f.signer(t) == victim {
				t.Error("the removed key came back")
			}
			if rec := f.record(t, victim); !rec.Removed {
				t.Error("the record is not marked removed")
			}
		})
	}
}

func TestRemoveKeepsSignerUntilItsTurn(t *testing.T) {
	// Removing the waiting key calls off the old key's retirement.
	f := newFixture(t, keys.EdDSA)
	old := f.signer(t)
	kid, from := f.rotate(t)
	if err := f.ring.Remove(t.Context(), kid); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(from.Add(24 * time.Hour))
	if got := f.signer(t); got != old {
		t.Fatalf("signer %s, want the old key %s", got, old)
	}
	if !published(f.ring, old) {
		t.Fatal("the old key left the JWKS although it still signs")
	}
	if rec := f.record(t, old); !rec.RetiredAt.IsZero() || !rec.RemoveAt.IsZero() {
		t.Fatalf("old key retires at %v, leaves at %v; want never", rec.RetiredAt, rec.RemoveAt)
	}
}

func TestRemoveErrors(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	if err := f.ring.Remove(t.Context(), "no-such-kid"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Remove(unknown) = %v, want store.ErrNotFound", err)
	}
	kid := f.signer(t)
	if err := f.ring.Remove(t.Context(), kid); err != nil {
		t.Fatal(err)
	}
	n := f.count(t)
	if err := f.ring.Remove(t.Context(), kid); err != nil {
		t.Errorf("Remove twice = %v, want nil", err)
	}
	if f.count(t) != n {
		t.Error("removing a removed key generated a key")
	}
}

// TestSignerRepairs covers a store whose signer was removed by another
// instance that did not finish: the ring repairs it when asked to sign.
func TestSignerRepairs(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	kid := f.signer(t)
	rec := f.record(t, kid)
	l := rec.Lifecycle
	l.Removed = true
	if err := f.store.UpdateSigningKey(t.Context(), kid, l); err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if published(f.ring, kid) {
		t.Fatal("Reload did not see the removal")
	}
	got := f.signer(t)
	if got == kid || !published(f.ring, got) {
		t.Fatalf("signer %s after repair", got)
	}
}

func TestRotateIfOlderThan(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	first := f.signer(t)
	const maxAge = 30 * 24 * time.Hour
	steps := []struct {
		name    string
		advance time.Duration
		rotates bool
	}{
		{"new ring", 0, false},
		{"just under the age", maxAge - time.Second, false},
		{"at the age", time.Second, true},
		{"right after rotating (the new key is young)", time.Minute, false},
		{"the new key's age", maxAge, true},
	}
	for _, s := range steps {
		f.clock.Advance(s.advance)
		kid, from, err := f.ring.RotateIfOlderThan(t.Context(), maxAge)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if (kid != "") != s.rotates {
			t.Fatalf("%s: rotated = %v, want %v", s.name, kid != "", s.rotates)
		}
		if kid != "" && (!from.Equal(f.clock.Now().Add(delay)) || !published(f.ring, kid)) {
			t.Fatalf("%s: new key %s from %v", s.name, kid, from)
		}
	}
	if f.count(t) != 3 {
		t.Fatalf("%d keys, want 3", f.count(t))
	}
	if published(f.ring, first) {
		t.Fatal("the first key is still published long after its retirement")
	}
	if _, _, err := f.ring.RotateIfOlderThan(t.Context(), 0); err == nil {
		t.Fatal("RotateIfOlderThan(0) accepted")
	}
}

func TestAlgChangeRotates(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	old := f.signer(t)
	f.clock.Advance(time.Hour)
	es := f.open(t, keys.ES256)
	k, err := es.Signer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if k.KID() != old {
		t.Fatalf("the new key signs before its publish delay")
	}
	f.clock.Advance(delay)
	if k, err = es.Signer(t.Context()); err != nil || k.Alg() != keys.ES256 {
		t.Fatalf("after the delay, signer %v (%v), want an ES256 key", k, err)
	}
	// Another start with the same algorithm does not rotate again.
	n := f.count(t)
	f.open(t, keys.ES256)
	if f.count(t) != n {
		t.Fatal("a restart with the same algorithm rotated")
	}
}

func TestWrongKEK(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	wrong := bytes.Clone(f.kek)
	wrong[31] ^= 0x80
	_, err := keys.NewRing(t.Context(), f.store, keys.RingConfig{KEK: wrong, Clock: f.clock})
	if !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("NewRing with the wrong KEK: %v, want ErrUnseal", err)
	}
	if f.count(t) != 1 {
		t.Fatal("a ring with the wrong KEK wrote to the store")
	}
}

// copyStore copies src into a new store, letting change alter each record.
func copyStore(t *testing.T, src *memory.Keys, change func(recs []*keys.Record)) *memory.Keys {
	t.Helper()
	recs, err := src.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	change(recs)
	dst := memory.NewKeys()
	for _, r := range recs {
		if err := dst.CreateSigningKey(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestTamperEvident(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	f.clock.Advance(time.Minute)
	f.rotate(t)
	f.clock.Advance(time.Minute)
	f.open(t, keys.ES256) // adds an ES256 key: three keys, all published, in this order
	if f.count(t) != 3 {
		t.Fatalf("%d keys, want 3", f.count(t))
	}
	cases := []struct {
		name   string
		change func(recs []*keys.Record)
		unseal bool // the failure is ErrUnseal (else another refusal)
	}{
		{"sealed keys swapped between kids", func(recs []*keys.Record) {
			recs[0].Sealed, recs[1].Sealed = recs[1].Sealed, recs[0].Sealed
		}, true},
		{"sealed key and public key both moved to another kid", func(recs []*keys.Record) {
			recs[0].Sealed, recs[1].Sealed = recs[1].Sealed, recs[0].Sealed
			recs[0].PublicKey, recs[1].PublicKey = recs[1].PublicKey, recs[0].PublicKey
		}, false},
		{"kid renamed to another's", func(recs []*keys.Record) {
			recs[0].KID, recs[1].KID = recs[1].KID, recs[0].KID
		}, false},
		{"public key replaced", func(recs []*keys.Record) {
			recs[2].PublicKey, recs[0].PublicKey = recs[0].PublicKey, recs[2].PublicKey
		}, false},
		{"alg changed", func(recs []*keys.Record) { recs[2].Alg = keys.EdDSA }, false},
		{"ciphertext bit flipped", func(recs []*keys.Record) { recs[1].Sealed[20] ^= 1 }, true},
		{"nonce bit flipped", func(recs []*keys.Record) { recs[1].Sealed[0] ^= 1 }, true},
		{"ciphertext truncated", func(recs []*keys.Record) { recs[1].Sealed = recs[1].Sealed[:10] }, true},
		{"sealed under another KEK", func(recs []*keys.Record) {
			other := newFixture(t, keys.EdDSA)
			orec := other.record(t, other.signer(t))
			*recs[1] = *orec
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := copyStore(t, f.store, tc.change)
			_, err := keys.NewRing(t.Context(), s, keys.RingConfig{KEK: f.kek, Clock: f.clock})
			if err == nil {
				t.Fatal("NewRing accepted a tampered store")
			}
			if errors.Is(err, keys.ErrUnseal) != tc.unseal {
				t.Fatalf("NewRing: %v (ErrUnseal: %v, want %v)", err, errors.Is(err, keys.ErrUnseal), tc.unseal)
			}
		})
	}
	// And the untouched copy loads.
	s := copyStore(t, f.store, func([]*keys.Record) {})
	if _, err := keys.NewRing(t.Context(), s, keys.RingConfig{KEK: f.kek, Clock: f.clock}); err != nil {
		t.Fatalf("NewRing on an intact copy: %v", err)
	}
}

// jwk is a JWKS entry as a verifier reads it.
type jwk map[string]string

// thumbprint computes the RFC 7638 thumbprint independently of the package.
func thumbprint(t *testing.T, k jwk) string {
	t.Helper()
	var required []string
	switch k["kty"] {
	case "OKP":
		required = []string{"crv", "kty", "x"}
	case "EC":
		required = []string{"crv", "kty", "x", "y"}
	case "RSA":
		required = []string{"e", "kty", "n"}
	}
	m := map[string]string{}
	for _, name := range required {
		m[name] = k[name]
	}
	b, err := json.Marshal(m) // sorted keys, no blanks
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// publicFromJWK rebuilds a public key from a JWK with crypto alone.
func publicFromJWK(t *testing.T, k jwk) crypto.PublicKey {
	t.Helper()
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil {
			t.Fatalf("JWK member %q is not strict base64url: %v", s, err)
		}
		return b
	}
	switch k["kty"] {
	case "OKP":
		if k["crv"] != "Ed25519" {
			t.Fatalf("OKP crv %q", k["crv"])
		}
		return ed25519.PublicKey(dec(k["x"]))
	case "EC":
		if k["crv"] != "P-256" {
			t.Fatalf("EC crv %q", k["crv"])
		}
		x, y := dec(k["x"]), dec(k["y"])
		if len(x) != 32 || len(y) != 32 {
			t.Fatalf("EC coordinates of %d and %d bytes", len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		return pub
	case "RSA":
		e := new(big.Int).SetBytes(dec(k["e"]))
		return &rsa.PublicKey{N: new(big.Int).SetBytes(dec(k["n"])), E: int(e.Int64())}
	}
	t.Fatalf("kty %q", k["kty"])
	return nil
}

func TestJWKSContents(t *testing.T) {
	cases := []struct {
		alg, kty string
		members  []string
	}{
		{keys.EdDSA, "OKP", []string{"alg", "crv", "kid", "kty", "use", "x"}},
		{keys.ES256, "EC", []string{"alg", "crv", "kid", "kty", "use", "x", "y"}},
		{keys.RS256, "RSA", []string{"alg", "e", "kid", "kty", "n", "use"}},
	}
	for _, tc := range cases {
		t.Run(tc.alg, func(t *testing.T) {
			f := newFixture(t, tc.alg)
			signer, err := f.ring.Signer(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Keys []jwk `json:"keys"`
			}
			dec := json.NewDecoder(bytes.NewReader(f.ring.JWKS()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("JWKS: %v", err)
			}
			if len(doc.Keys) != 1 {
				t.Fatalf("%d keys", len(doc.Keys))
			}
			k := doc.Keys[0]
			var names []string
			for name := range k {
				names = append(names, name)
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.members) { // no d, p, q, dp, dq, qi
				t.Fatalf("JWK members %q, want exactly %q", names, tc.members)
			}
			if k["kty"] != tc.kty || k["alg"] != tc.alg || k["use"] != "sig" || k["kid"] != signer.KID() {
				t.Fatalf("JWK %v", k)
			}
			if got := thumbprint(t, k); got != k["kid"] {
				t.Errorf("kid %s is not the RFC 7638 thumbprint %s", k["kid"], got)
			}
			pub := publicFromJWK(t, k)
			alg, ringPub, ok := f.ring.Public(k["kid"])
			if !ok || alg != tc.alg || !ringPub.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Fatalf("the JWKS key is not the ring's public key (%s %v)", alg, ok)
			}
			if tc.alg == keys.RS256 && pub.(*rsa.PublicKey).N.BitLen() != 3072 {
				t.Errorf("RSA key of %d bits, want 3072", pub.(*rsa.PublicKey).N.BitLen())
			}
			// The signer's signatures verify under the published key.
			msg := []byte("header.payload")
			sig, err := signer.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := jws.Verify(tc.alg, pub, msg, sig); err != nil {
				t.Fatalf("a signature does not verify with the JWKS key: %v", err)
			}
			// The returned document is a copy.
			d := f.ring.JWKS()
			d[0] = 'X'
			if f.ring.JWKS()[0] != '{' {
				t.Fatal("changing the returned JWKS changed the ring's")
			}
		})
	}
}

func TestRingConfig(t *testing.T) {
	kek := newKEK(t)
	cases := []struct {
		name  string
		store keys.Store
		cfg   keys.RingConfig
	}{
		{"nil store", nil, keys.RingConfig{KEK: kek}},
		{"no KEK", memory.NewKeys(), keys.RingConfig{}},
		{"short KEK", memory.NewKeys(), keys.RingConfig{KEK: kek[:16]}},
		{"unknown alg", memory.NewKeys(), keys.RingConfig{KEK: kek, Alg: "HS256"}},
		{"alg none", memory.NewKeys(), keys.RingConfig{KEK: kek, Alg: "none"}},
		{"negative publish delay", memory.NewKeys(), keys.RingConfig{KEK: kek, PublishDelay: -time.Second}},
		{"negative lifetime", memory.NewKeys(), keys.RingConfig{KEK: kek, TokenLifetime: -time.Second}},
		{"negative leeway", memory.NewKeys(), keys.RingConfig{KEK: kek, Leeway: -time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := keys.NewRing(t.Context(), tc.store, tc.cfg); err == nil {
				t.Fatal("NewRing accepted it")
			}
		})
	}
	r, err := keys.NewRing(t.Context(), memory.NewKeys(), keys.RingConfig{KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	if r.TokenLifetime() != keys.DefaultTokenLifetime {
		t.Errorf("default TokenLifetime %v", r.TokenLifetime())
	}
}

// TestConcurrentUse runs readers against rotations and removals; run with -race.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, keys.EdDSA)
	ctx := t.Context()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, err := f.ring.Signer(ctx)
				if err != nil {
					errs <- err
					return
				}
				if _, _, ok := f.ring.Public(k.KID()); !ok {
					// The signer may have been removed meanwhile; it must then be gone from the JWKS too.
					if bytes.Contains(f.ring.JWKS(), []byte(k.KID())) {
						errs <- errors.New("a key refused by Public is in the JWKS")
						return
					}
				}
				_ = f.ring.JWKS()
			}
		})
	}
	for i := range 20 {
		kid, _, err := f.ring.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(delay)
		if i%3 == 0 {
			if err := f.ring.Remove(ctx, kid); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.ring.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNilClockIsSystem(t *testing.T) {
	r, err := keys.NewRing(context.Background(), memory.NewKeys(), keys.RingConfig{KEK: newKEK(t)})
	if err != nil {
		t.Fatal(err)
	}
	k, err := r.Signer(context.Background())
	if err != nil || !published(r, k.KID()) {
		t.Fatalf("Signer: %v", err)
	}
}
