package memory_test

import (
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
)

func TestRevocation(t *testing.T) {
	storetest.TestRevocation(t, func(_ *testing.T, c clock.Clock) revocation.Store { return memory.NewRevocations(c) })
}
