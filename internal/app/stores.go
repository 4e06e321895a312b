package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/postgres"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

// stores are the backends of one server, whichever the deployment: the
// SQLite file alone (one machine), or PostgreSQL and Redis (several
// instances). Everything else in the server is built on these fields and
// does not know which it got.
type stores struct {
	accounts    account.Store
	sessions    session.Store
	audit       audit.Store
	keys        keys.Store
	refresh     refresh.Store
	revocations revocation.Store

	// limiter returns the login limiter named name ("account", "ip")
	// applying p: in memory on one machine, in Redis across instances.
	limiter func(name string, p throttle.Policy) (throttle.Limiter, error)
	// ping checks every store: SQLite, or PostgreSQL and every Redis master.
	ping func(context.Context) error
	// purge deletes expired sessions and refresh families (the revocation
	// index purges its own entries).
	purge func(context.Context, *slog.Logger)
	// close closes every store.
	close func()

	// redis is the Redis store of several instances; nil on SQLite.
	redis *redisstore.Store

	// backends names the backend of each request-path store, for metrics.
	backends struct{ sessions, accounts, refresh string }
}

// openStores opens the stores cfg selects.
func openStores(ctx context.Context, cfg *config.Config, c clock.Clock) (*stores, error) {
	if cfg.Distributed() {
		return openDistributed(ctx, cfg, c)
	}
	db, err := OpenStore(ctx, cfg, c)
	if err != nil {
		return nil, err
	}
	return sqliteStores(db, c), nil
}

// sqliteStores puts every store on the SQLite database db.
func sqliteStores(db *sqlite.DB, c clock.Clock) *stores {
	st := &stores{
		accounts: db, sessions: db, audit: db, keys: db,
		refresh: db.Refresh(), revocations: db.Revocations(),
		limiter: func(_ string, p throttle.Policy) (throttle.Limiter, error) {
			return throttle.NewMemory(c, p), nil
		},
		ping: db.Ping,
		purge: func(ctx context.Context, log *slog.Logger) {
			if n, err := db.Purge(ctx); err != nil {
				log.Warn("purge expired sessions", "error", err)
			} else if n > 0 {
				log.Debug("purged expired sessions", "count", n)
			}
			if n, err := db.PurgeTokens(ctx); err != nil {
				log.Warn("purge expired refresh families and revocations", "error", err)
			} else if n > 0 {
				log.Debug("purged expired token records", "count", n)
			}
		},
		close: func() { db.Close() },
	}
	st.backends.sessions, st.backends.accounts, st.backends.refresh = "sqlite", "sqlite", "sqlite"
	return st
}

// openDistributed opens PostgreSQL (users, audit, signing keys, refresh
// families) and Redis (sessions, revocations, login limiters).
func openDistributed(ctx context.Context, cfg *config.Config, c clock.Clock) (*stores, error) {
	// Neither backend quotes its URL in an error: it may hold a password.
	pg, err := postgres.Open(ctx, cfg.Postgres, postgres.Options{Clock: c, Schema: cfg.PostgresSchema})
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL (--postgres): %w", err)
	}
	rd, err := redisstore.Open(ctx, cfg.Redis, redisstore.Options{Clock: c, Prefix: cfg.RedisPrefix})
	if err != nil {
		pg.Close()
		return nil, fmt.Errorf("open Redis (--redis): %w", err)
	}
	st := &stores{
		accounts: pg, sessions: rd, audit: pg, keys: pg,
		refresh:     pg.Refresh(),
		revocations: withoutControl{rd.Revocations()},
		limiter: func(name string, p throttle.Policy) (throttle.Limiter, error) {
			return rd.Limiter(name, p)
		},
		ping: func(ctx context.Context) error {
			return errors.Join(pg.Ping(ctx), rd.Ping(ctx))
		},
		purge: func(ctx context.Context, log *slog.Logger) {
			if n, err := rd.Purge(ctx); err != nil {
				log.Warn("purge expired sessions", "error", err)
			} else if n > 0 {
				log.Debug("purged expired sessions", "count", n)
			}
			if n, err := pg.Refresh().Purge(ctx); err != nil {
				log.Warn("purge expired refresh families", "error", err)
			} else if n > 0 {
				log.Debug("purged expired refresh families", "count", n)
			}
		},
		close: func() {
			rd.Close()
			pg.Close()
		},
		redis: rd,
	}
	st.backends.sessions, st.backends.accounts, st.backends.refresh = "redis", "postgres", "postgres"
	return st, nil
}
