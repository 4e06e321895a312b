package account_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/gatehouse-auth/gatehouse/account"
)

// gatedHashes makes every Argon2id computation of svc wait for release while
// it holds its slot, and counts computations: started so far, in flight now,
// and the most in flight at once.
type gatedHashes struct {
	mu                    sync.Mutex
	started, inFlight, hi int
	gate                  chan struct{}
	once                  sync.Once
}

func gateHashes(svc *account.Service) *gatedHashes {
	g := &gatedHashes{gate: make(chan struct{})}
	account.SetHashHook(svc, func() {
		g.mu.Lock()
		g.started++
		g.inFlight++
		g.hi = max(g.hi, g.inFlight)
		g.mu.Unlock()
		<-g.gate
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	})
	return g
}

// release lets every computation, waiting or to come, proceed.
func (g *gatedHashes) release() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedHashes) counts() (started, inFlight, hi int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started, g.inFlight, g.hi
}

// TestConcurrentHashesBounded starts 50 logins at once (right, wrong and
// unknown-user ones) against a service allowing 3 concurrent hashes: once
// every goroutine is blocked, exactly 3 are hashing and the other 47 wait for
// a slot; released, all 50 complete and no more than 3 ever hashed at once.
func TestConcurrentHashesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bound, logins = 3, 50
		f := newFixture(t, account.Config{MaxConcurrentHashes: bound})
		mustRegister(t, f.svc, "alice", password)
		g := gateHashes(f.svc)
		defer g.release() // on failure too: the bubble's goroutines must end

		type attempt struct {
			username, password string
			ok                 bool
		}
		attempts := []attempt{
			{"alice", password, true},
			{"alice", "wrong password", false},
			{"mallory", password, false},
		}
		errs := make(chan error, logins)
		for i := range logins {
			a := attempts[i%len(attempts)]
			go func() {
				_, err := f.svc.Authenticate(context.Background(), a.username, a.password)
				if a.ok {
					errs <- err
				} else if !errors.Is(err, account.ErrBadCredentials) {
					errs <- err
				} else {
					errs <- nil
				}
			}()
		}
		synctest.Wait()
		if started, inFlight, _ := g.counts(); started != bound || inFlight != bound {
			t.Fatalf("with every login blocked: %d hashes started, %d in flight; want %d and %d", started, inFlight, bound, bound)
		}
		g.release()
		for range logins {
			if err := <-errs; err != nil {
				t.Errorf("login: %v", err)
			}
		}
		if started, _, hi := g.counts(); started != logins || hi != bound {
			t.Errorf("%d hashes, at most %d at once; want %d and %d", started, hi, logins, bound)
		}
	})
}

// TestHashWaitCancelled fills the only hashing slot, then starts a login that
// must wait for it and cancels that login's context: it returns
// context.Canceled at once, without hashing.
func TestHashWaitCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, account.Config{MaxConcurrentHashes: 1})
		mustRegister(t, f.svc, "alice", password)
		g := gateHashes(f.svc)
		defer g.release() // on failure too: the bubble's goroutines must end

		first := make(chan error, 1)
		go func() {
			_, err := f.svc.Authenticate(context.Background(), "alice", password)
			first <- err
		}()
		synctest.Wait()

		ctx, cancel := context.WithCancel(context.Background())
		second := make(chan error, 1)
		go func() {
			_, err := f.svc.Authenticate(ctx, "alice", password)
			second <- err
		}()
		synctest.Wait()
		select {
		case err := <-second:
			t.Fatalf("second login returned %v while the only slot was taken", err)
		default:
		}

		cancel()
		synctest.Wait()
		select {
		case err := <-second:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled login = %v, want context.Canceled", err)
			}
		default:
			t.Fatal("cancelled login still waiting")
		}
		if started, _, _ := g.counts(); started != 1 {
			t.Errorf("%d hashes started, want 1 (the cancelled login must not hash)", started)
		}

		g.release()
		if err := <-first; err != nil {
			t.Errorf("first login: %v", err)
		}
	})
}
