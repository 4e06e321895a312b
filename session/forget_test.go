package session_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

// TestForget plays two instances on one store: "here" caches sessions, and
// "elsewhere" deletes them behind its back. The fake clock never moves, so
// nothing leaves the cache by age: only what the case does to "here"
// makes it see the deletions.
func TestForget(t *testing.T) {
	cases := []struct {
		name string
		// act tells "here" about the deletions (or not); secrets are
		// u1's first and second sessions, then u2's.
		act func(m *session.Manager, hashes [3][]byte)
		// want says which of the three sessions "here" still serves.
		want [3]bool
	}{
		{"nothing: the cache serves the deleted sessions", func(*session.Manager, [3][]byte) {}, [3]bool{true, true, true}},
		{"forget one", func(m *session.Manager, h [3][]byte) { m.Forget(h[0]) }, [3]bool{false, true, true}},
		{"forget an unknown hash", func(m *session.Manager, _ [3][]byte) { m.Forget(make([]byte, 32)) }, [3]bool{true, true, true}},
		{"forget a user", func(m *session.Manager, _ [3][]byte) { m.ForgetUser("u1") }, [3]bool{false, false, true}},
		{"forget all", func(m *session.Manager, _ [3][]byte) { m.ForgetAll() }, [3]bool{false, false, false}},
		{"cache off", func(m *session.Manager, _ [3][]byte) { m.SetCacheEnabled(false) }, [3]bool{false, false, false}},
		{"cache off and on again: it restarts empty", func(m *session.Manager, _ [3][]byte) {
			m.SetCacheEnabled(false)
			m.SetCacheEnabled(true)
		}, [3]bool{false, false, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			here, elsewhere := twoInstances(t)
			var secrets [3]session.Secret
			var hashes [3][]byte
			for i, user := range []string{"u1", "u1", "u2"} {
				s, _, err := elsewhere.Create(t.Context(), user, session.Meta{})
				if err != nil {
					t.Fatal(err)
				}
				secrets[i], hashes[i] = s, s.Hash()
				if _, err := here.Lookup(t.Context(), s); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range secrets {
				if err := elsewhere.Delete(t.Context(), s); err != nil {
					t.Fatal(err)
				}
			}
			tc.act(here, hashes)
			for i, s := range secrets {
				_, err := here.Lookup(t.Context(), s)
				if err != nil && !errors.Is(err, session.ErrNoSession) {
					t.Fatal(err)
				}
				if served := err == nil; served != tc.want[i] {
					t.Errorf("session %d served = %v, want %v", i, served, tc.want[i])
				}
			}
		})
	}
}

// twoInstances returns two Managers on one store with a clock that does
// not move.
func twoInstances(t *testing.T) (here, elsewhere *session.Manager) {
	t.Helper()
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := memory.New(fc)
	var err error
	if here, err = session.NewManager(st, session.Config{Clock: fc}); err != nil {
		t.Fatal(err)
	}
	if elsewhere, err = session.NewManager(st, session.Config{Clock: fc}); err != nil {
		t.Fatal(err)
	}
	return here, elsewhere
}

func TestCacheOffAsksTheStoreEveryTime(t *testing.T) {
	here, elsewhere := twoInstances(t)
	here.SetCacheEnabled(false)
	secret, _, err := elsewhere.Create(t.Context(), "u1", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	// A lookup while the cache is off keeps nothing.
	if _, err := here.Lookup(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	if err := elsewhere.Delete(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Lookup(t.Context(), secret); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("lookup with the cache off after a delete elsewhere: %v", err)
	}
	// Back on, the cache keeps sessions again.
	here.SetCacheEnabled(true)
	secret, _, err = elsewhere.Create(t.Context(), "u1", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := here.Lookup(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	if err := elsewhere.Delete(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Lookup(t.Context(), secret); err != nil {
		t.Fatalf("the cache, on again, did not keep the session: %v", err)
	}
}

// TestForgetWhileLookingUp runs lookups, deletions elsewhere, Forget and
// cache switches at once, for the race detector, and then checks that
// nothing deleted is served once the switching is over.
func TestForgetWhileLookingUp(t *testing.T) {
	here, elsewhere := twoInstances(t)
	secrets := make([]session.Secret, 16)
	for i := range secrets {
		s, _, err := elsewhere.Create(t.Context(), "u1", session.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		secrets[i] = s
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				s := secrets[(i+w)%len(secrets)]
				if _, err := here.Lookup(t.Context(), s); err != nil && !errors.Is(err, session.ErrNoSession) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, s := range secrets {
			if err := elsewhere.Delete(t.Context(), s); err != nil {
				t.Error(err)
				return
			}
			here.Forget(s.Hash())
			here.SetCacheEnabled(i%3 != 0)
		}
		here.ForgetUser("u1")
	}()
	wg.Wait()
	for i, s := range secrets {
		if _, err := here.Lookup(t.Context(), s); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("session %d, deleted and forgotten, is still served: %v", i, err)
		}
	}
}
