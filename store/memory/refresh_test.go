package memory_test

import (
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
)

func TestRefresh(t *testing.T) {
	storetest.TestRefresh(t, func(_ *testing.T, c clock.Clock) refresh.Store { return memory.NewRefresh(c) })
}
