package throttle_test

import (
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/throttle"
	"github.com/gatehouse-auth/gatehouse/throttle/throttletest"
)

// TestMemoryConformance runs the suite that every Limiter passes.
func TestMemoryConformance(t *testing.T) {
	throttletest.Run(t, func(_ *testing.T, c clock.Clock, p throttle.Policy) throttle.Limiter {
		return throttle.NewMemory(c, p)
	})
}
