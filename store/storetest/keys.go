package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/store"
)

// TestKeys runs the conformance suite for keys.Store. open must return a new,
// empty store (c is given for symmetry with the other suites; a key store
// needs no clock). Beyond the store's own promises, it runs two key rings on
// one store, as two instances would.
func TestKeys(t *testing.T, open func(t *testing.T, c clock.Clock) keys.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s keys.Store, c *clock.Fake)
	}{
		{"Empty", testKeysEmpty},
		{"RoundTrip", testKeysRoundTrip},
		{"Conflict", testKeysConflict},
		{"Update", testKeysUpdate},
		{"RemovedIsSticky", testKeysRemovedSticky},
		{"Copies", testKeysCopies},
		{"Concurrent", testKeysConcurrent},
		{"TwoRings", testKeysTwoRings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tt.f(t, open(t, c), c)
		})
	}
}

// newKeyRecord returns a record with random key material: the store does
// not interpret it.
func newKeyRecord(t testing.TB, created time.Time) *keys.Record {
	t.Helper()
	return &keys.Record{
		KID:       newID(t, "kid"),
		Alg:       keys.EdDSA,
		Sealed:    randomBytes(t, 76),
		PublicKey: randomBytes(t, 44),
		CreatedAt: created,
		Lifecycle: keys.Lifecycle{SignsFrom: created.Add(5 * time.Minute)},
	}
}

// keysList returns the store's records.
func keysList(t testing.TB, s keys.Store) []*keys.Record {
	t.Helper()
	recs, err := s.SigningKeys(context.Background())
	wantErr(t, "SigningKeys", err, nil)
	return recs
}

// checkKeyRecords compares records in order.
func checkKeyRecords(t testing.TB, what string, got, want []*keys.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		p := fmt.Sprintf("%s[%d]", what, i)
		if g.KID != w.KID || g.Alg != w.Alg {
			t.Errorf("%s = %s/%s, want %s/%s", p, g.KID, g.Alg, w.KID, w.Alg)
		}
		if !bytes.Equal(g.Sealed, w.Sealed) || !bytes.Equal(g.PublicKey, w.PublicKey) {
			t.Errorf("%s: key material differs", p)
		}
		if g.Removed != w.Removed {
			t.Errorf("%s.Removed = %v, want %v", p, g.Removed, w.Removed)
		}
		checkTime(t, p+".CreatedAt", g.CreatedAt, w.CreatedAt)
		checkTime(t, p+".SignsFrom", g.SignsFrom, w.SignsFrom)
		checkTime(t, p+".RetiredAt", g.RetiredAt, w.RetiredAt)
		checkTime(t, p+".RemoveAt", g.RemoveAt, w.RemoveAt)
	}
}

func testKeysEmpty(t *testing.T, s keys.Store, _ *clock.Fake) {
	if recs := keysList(t, s); len(recs) != 0 {
		t.Fatalf("new store has %d records", len(recs))
	}
	err := s.UpdateSigningKey(context.Background(), "missing", keys.Lifecycle{Removed: true})
	wantErr(t, "UpdateSigningKey(missing)", err, store.ErrNotFound)
}

func testKeysRoundTrip(t *testing.T, s keys.Store, c *clock.Fake) {
	ctx := context.Background()
	now := c.Now()
	// Created out of order and in another zone: listed oldest first, in UTC.
	second := newKeyRecord(t, now.Add(time.Hour).In(elsewhere))
	second.RetiredAt = now.Add(2 * time.Hour).In(elsewhere)
	second.RemoveAt = now.Add(3 * time.Hour).In(elsewhere)
	first := newKeyRecord(t, now)
	third := newKeyRecord(t, now.Add(2*time.Hour))
	third.Alg = keys.RS256
	third.Removed = true
	for _, r := range []*keys.Record{second, third, first} {
		wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, r), nil)
	}
	checkKeyRecords(t, "SigningKeys", keysList(t, s), []*keys.Record{first, second, third})

	// Same CreatedAt: ordered by kid.
	a, b := newKeyRecord(t, now.Add(3*time.Hour)), newKeyRecord(t, now.Add(3*time.Hour))
	a.KID, b.KID = "kid-a-"+a.KID, "kid-b-"+b.KID
	wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, b), nil)
	wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, a), nil)
	checkKeyRecords(t, "SigningKeys", keysList(t, s), []*keys.Record{first, second, third, a, b})
}

func testKeysConflict(t *testing.T, s keys.Store, c *clock.Fake) {
	ctx := context.Background()
	r := newKeyRecord(t, c.Now())
	wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, r), nil)
	dup := newKeyRecord(t, c.Now().Add(time.Minute))
	dup.KID = r.KID
	wantErr(t, "CreateSigningKey(same kid)", s.CreateSigningKey(ctx, dup), store.ErrConflict)
	checkKeyRecords(t, "SigningKeys", keysList(t, s), []*keys.Record{r})
}

func testKeysUpdate(t *testing.T, s keys.Store, c *clock.Fake) {
	ctx := context.Background()
	r := newKeyRecord(t, c.Now())
	other := newKeyRecord(t, c.Now().Add(time.Second))
	wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, r), nil)
	wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, other), nil)

	l := keys.Lifecycle{
		SignsFrom: c.Now().Add(time.Minute).In(elsewhere),
		RetiredAt: c.Now().Add(time.Hour),
		RemoveAt:  c.Now().Add(time.Hour + 11*time.Minute),
	}
	wantErr(t, "UpdateSigningKey", s.UpdateSigningKey(ctx, r.KID, l), nil)
	want := *r
	want.Lifecycle = l
	checkKeyRecords(t, "after update", keysList(t, s), []*keys.Record{&want, other})

	// Times can go back to zero (a retirement that is called off).
	wantErr(t, "UpdateSigningKey", s.UpdateSigningKey(ctx, r.KID, keys.Lifecycle{SignsFrom: l.SignsFrom}), nil)
	want.Lifecycle = keys.Lifecycle{SignsFrom: l.SignsFrom}
	checkKeyRecords(t, "after un-retiring", keysList(t, s), []*keys.Record{&want, other})

	wantErr(t, "UpdateSigningKey(missing)", s.UpdateSigningKey(ctx, "missing", l), store.ErrNotFound)
}

func testKeysRemovedSticky(t *testing.T, s keys.Store, c *clock.Fake) {
	ctx := context.Background()
	r := newKeyRecord(t, c.Now())
	wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, r), nil)
	removed := keys.Lifecycle{SignsFrom: r.SignsFrom, RetiredAt: c.Now(), RemoveAt: c.Now(), Removed: true}
	wantErr(t, "UpdateSigningKey(remove)", s.UpdateSigningKey(ctx, r.KID, removed), nil)
	// A stale writer that does not know of the removal cannot undo it.
	stale := keys.Lifecycle{SignsFrom: r.SignsFrom, RetiredAt: c.Now().Add(time.Hour), RemoveAt: c.Now().Add(2 * time.Hour)}
	wantErr(t, "UpdateSigningKey(stale)", s.UpdateSigningKey(ctx, r.KID, stale), nil)
	recs := keysList(t, s)
	if len(recs) != 1 || !recs[0].Removed {
		t.Fatalf("after a stale update, Removed = false: the removal was undone")
	}
}

func testKeysCopies(t *testing.T, s keys.Store, c *clock.Fake) {
	ctx := context.Background()
	r := newKeyRecord(t, c.Now())
	want := *r
	want.Sealed, want.PublicKey = bytes.Clone(r.Sealed), bytes.Clone(r.PublicKey)
	wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, r), nil)
	// Changing what was passed in changes nothing stored.
	r.Sealed[0] ^= 0xff
	r.PublicKey[0] ^= 0xff
	r.Removed = true
	got := keysList(t, s)
	checkKeyRecords(t, "after changing the input", got, []*keys.Record{&want})
	// Changing what came out changes nothing stored.
	got[0].Sealed[0] ^= 0xff
	got[0].PublicKey[0] ^= 0xff
	got[0].SignsFrom = time.Time{}
	checkKeyRecords(t, "after changing the output", keysList(t, s), []*keys.Record{&want})
}

func testKeysConcurrent(t *testing.T, s keys.Store, c *clock.Fake) {
	ctx := context.Background()
	recs := make([]*keys.Record, goroutines)
	for g := range recs {
		recs[g] = newKeyRecord(t, c.Now().Add(time.Duration(g)*time.Second))
		wantErr(t, "CreateSigningKey", s.CreateSigningKey(ctx, recs[g]), nil)
	}
	runConcurrently(t, goroutines, func(g int) error {
		for i := range opsEach {
			l := keys.Lifecycle{SignsFrom: recs[g].SignsFrom, RetiredAt: c.Now().Add(time.Duration(i) * time.Second)}
			if err := s.UpdateSigningKey(ctx, recs[g].KID, l); err != nil {
				return err
			}
			if _, err := s.SigningKeys(ctx); err != nil {
				return err
			}
		}
		// Everyone tries to create the same kid: exactly one wins.
		err := s.CreateSigningKey(ctx, &keys.Record{KID: "contended", Alg: keys.EdDSA, CreatedAt: c.Now().Add(time.Hour)})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		return nil
	})
	got := keysList(t, s)
	if len(got) != goroutines+1 {
		t.Fatalf("%d records, want %d", len(got), goroutines+1)
	}
	for g, r := range got[:goroutines] {
		checkTime(t, fmt.Sprintf("record %d RetiredAt", g), r.RetiredAt, c.Now().Add((opsEach-1)*time.Second))
	}
}

// testKeysTwoRings runs two key rings on one store, as two instances would:
// what one does, the other sees after Reload.
func testKeysTwoRings(t *testing.T, s keys.Store, c *clock.Fake) {
	ctx := context.Background()
	kek := make([]byte, keys.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	cfg := keys.RingConfig{KEK: kek, Clock: c, PublishDelay: 5 * time.Minute}
	a, err := keys.NewRing(ctx, s, cfg)
	wantErr(t, "NewRing(a)", err, nil)
	b, err := keys.NewRing(ctx, s, cfg)
	wantErr(t, "NewRing(b)", err, nil)
	sa, err := a.Signer(ctx)
	wantErr(t, "a.Signer", err, nil)
	sb, err := b.Signer(ctx)
	wantErr(t, "b.Signer", err, nil)
	if sa.KID() != sb.KID() {
		t.Fatalf("two rings on one store sign with %s and %s", sa.KID(), sb.KID())
	}

	kid, signsFrom, err := a.Rotate(ctx)
	wantErr(t, "a.Rotate", err, nil)
	if _, _, ok := b.Public(kid); ok {
		t.Fatal("b knows the new key before Reload")
	}
	wantErr(t, "b.Reload", b.Reload(ctx), nil)
	if _, _, ok := b.Public(kid); !ok {
		t.Fatal("b does not publish the new key after Reload")
	}
	if !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Fatalf("JWKS differ:\n%s\n%s", a.JWKS(), b.JWKS())
	}
	c.Set(signsFrom)
	sb, err = b.Signer(ctx)
	wantErr(t, "b.Signer", err, nil)
	if sb.KID() != kid {
		t.Fatalf("b signs with %s after the new key's start, want %s", sb.KID(), kid)
	}

	wantErr(t, "b.Remove", b.Remove(ctx, kid), nil)
	wantErr(t, "a.Reload", a.Reload(ctx), nil)
	if _, _, ok := a.Public(kid); ok {
		t.Fatal("a still publishes the key b removed")
	}
	sa, err = a.Signer(ctx)
	wantErr(t, "a.Signer", err, nil)
	if sa.KID() == kid {
		t.Fatal("a signs with the removed key")
	}

	// A third instance with another KEK refuses to start.
	wrong := bytes.Clone(kek)
	wrong[0] ^= 1
	_, err = keys.NewRing(ctx, s, keys.RingConfig{KEK: wrong, Clock: c})
	wantErr(t, "NewRing(wrong KEK)", err, keys.ErrUnseal)
}
