package memory_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/store/storetest"
)

func TestAccounts(t *testing.T) {
	storetest.TestAccounts(t, func(_ *testing.T, c clock.Clock) account.Store { return memory.New(c) })
}

func TestSessions(t *testing.T) {
	storetest.TestSessions(t, func(_ *testing.T, c clock.Clock) session.Store { return memory.New(c) })
}

func TestAudit(t *testing.T) {
	storetest.TestAudit(t, func(_ *testing.T, c clock.Clock) audit.Store { return memory.New(c) })
}

// TestNilClockIsSystem checks that New(nil) tells liveness by the wall clock.
func TestNilClockIsSystem(t *testing.T) {
	ctx := t.Context()
	s := memory.New(nil)
	now := time.Now()
	cases := []struct {
		name    string
		expires time.Time
		live    bool
	}{
		{"expires in an hour", now.Add(time.Hour), true},
		{"expired a minute ago", now.Add(-time.Minute), false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hash := []byte{byte(i), 1, 2, 3}
			sess := &session.Session{
				ID: tc.name, Hash: hash, UserID: "u",
				CreatedAt: now.Add(-time.Hour), LastSeenAt: now.Add(-time.Hour),
				IdleExpiresAt: tc.expires, ExpiresAt: tc.expires,
			}
			if err := s.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			_, err := s.SessionByHash(ctx, hash)
			if tc.live && err != nil {
				t.Errorf("SessionByHash: %v, want the session", err)
			}
			if !tc.live && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SessionByHash: %v, want store.ErrNotFound", err)
			}
		})
	}
}
