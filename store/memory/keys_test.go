package memory_test

import (
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
)

func TestKeys(t *testing.T) {
	storetest.TestKeys(t, func(*testing.T, clock.Clock) keys.Store { return memory.NewKeys() })
}
