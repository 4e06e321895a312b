// Package clock gives domain code its notion of "now". Domain packages never
// call time.Now directly: they take a Clock, so that every expiry rule can be
// tested by moving a Fake clock instead of sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the current time.
type Clock interface {
	Now() time.Time
}

// System is the real wall clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// Fake is a manually advanced clock for tests and for the lab. It is safe for
// concurrent use. The zero value starts at the zero time; use NewFake.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a Fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// Offset is a clock that runs at wall speed but can be pushed ahead: the lab
// uses it to "let time pass" without touching the system clock. It is never
// used outside the lab's dev mode.
type Offset struct {
	mu   sync.Mutex
	skew time.Duration
}

// Now returns time.Now() plus the accumulated offset.
func (o *Offset) Now() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Now().Add(o.skew)
}

// Advance pushes the clock ahead by d.
func (o *Offset) Advance(d time.Duration) {
	o.mu.Lock()
	o.skew += d
	o.mu.Unlock()
}
