package app

import (
	"context"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/session"
)

// The stores on the request path are wrapped so that every call's latency
// reaches gatehouse_store_operation_duration_seconds{backend,op}. (The
// session and user caches sit above them: a cache hit observes nothing.)

type timedSessions struct {
	session.Store
	backend string
	m       *metrics.Metrics
}

func (t timedSessions) since(op string, start time.Time) {
	t.m.ObserveStore(t.backend, op, time.Since(start))
}

func (t timedSessions) CreateSession(ctx context.Context, s *session.Session) error {
	defer t.since("session.create", time.Now())
	return t.Store.CreateSession(ctx, s)
}

func (t timedSessions) SessionByHash(ctx context.Context, hash []byte) (*session.Session, error) {
	defer t.since("session.get", time.Now())
	return t.Store.SessionByHash(ctx, hash)
}

func (t timedSessions) TouchSession(ctx context.Context, hash []byte, lastSeen, idle time.Time) error {
	defer t.since("session.touch", time.Now())
	return t.Store.TouchSession(ctx, hash, lastSeen, idle)
}

func (t timedSessions) DeleteSession(ctx context.Context, hash []byte) error {
	defer t.since("session.delete", time.Now())
	return t.Store.DeleteSession(ctx, hash)
}

func (t timedSessions) SessionsByUser(ctx context.Context, userID string) ([]*session.Session, error) {
	defer t.since("session.list", time.Now())
	return t.Store.SessionsByUser(ctx, userID)
}

func (t timedSessions) DeleteUserSession(ctx context.Context, userID, id string) (*session.Session, error) {
	defer t.since("session.delete_one", time.Now())
	return t.Store.DeleteUserSession(ctx, userID, id)
}

func (t timedSessions) DeleteUserSessions(ctx context.Context, userID string, keep []byte) ([]*session.Session, error) {
	defer t.since("session.delete_user", time.Now())
	return t.Store.DeleteUserSessions(ctx, userID, keep)
}

type timedAccounts struct {
	account.Store
	backend string
	m       *metrics.Metrics
}

func (t timedAccounts) since(op string, start time.Time) {
	t.m.ObserveStore(t.backend, op, time.Since(start))
}

func (t timedAccounts) UserByID(ctx context.Context, id string) (*account.User, error) {
	defer t.since("user.get", time.Now())
	return t.Store.UserByID(ctx, id)
}

func (t timedAccounts) UserByUsername(ctx context.Context, username string) (*account.User, error) {
	defer t.since("user.get_by_name", time.Now())
	return t.Store.UserByUsername(ctx, username)
}

func (t timedAccounts) CreateUser(ctx context.Context, u *account.User) error {
	defer t.since("user.create", time.Now())
	return t.Store.CreateUser(ctx, u)
}

type timedRefresh struct {
	refresh.Store
	backend string
	m       *metrics.Metrics
}

func (t timedRefresh) Rotate(ctx context.Context, r refresh.RotateRequest) (refresh.RotateResult, error) {
	defer func(start time.Time) { t.m.ObserveStore(t.backend, "refresh.rotate", time.Since(start)) }(time.Now())
	return t.Store.Rotate(ctx, r)
}

func (t timedRefresh) CreateFamily(ctx context.Context, f *refresh.Family, first *refresh.Token) error {
	defer func(start time.Time) { t.m.ObserveStore(t.backend, "refresh.create", time.Since(start)) }(time.Now())
	return t.Store.CreateFamily(ctx, f, first)
}

// instrument wraps st's request-path stores with latency metrics.
func instrument(st *stores, m *metrics.Metrics) {
	st.sessions = timedSessions{Store: st.sessions, backend: st.backends.sessions, m: m}
	st.accounts = timedAccounts{Store: st.accounts, backend: st.backends.accounts, m: m}
	st.refresh = timedRefresh{Store: st.refresh, backend: st.backends.refresh, m: m}
}
