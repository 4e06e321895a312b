package migrate

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/postgres"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
)

// kinds returns the migration of every kind of record, in the order of the
// Kind constants.
func kinds(src *sqlite.Export, dst Destination) []runner {
	return []runner{
		users(src, dst.Postgres),
		sessions(src, dst.Redis),
		families(src, dst.Postgres),
		signingKeys(src, dst.Postgres),
		revocations(src, dst.Redis),
		auditEvents(src, dst.Postgres),
	}
}

// found turns the result of a lookup into (record, found, error), with
// store.ErrNotFound as not found.
func found[T any](v T, err error) (T, bool, error) {
	var zero T
	if errors.Is(err, store.ErrNotFound) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, err
	}
	return v, true, nil
}

// differ finds the first field that differs.
type differ struct{ field string }

// check records name unless equal or a field already differs.
func (d *differ) check(name string, equal bool) {
	if d.field == "" && !equal {
		d.field = name
	}
}

// result returns "" when every field was equal.
func (d *differ) result() string {
	if d.field == "" {
		return ""
	}
	return d.field + " differs"
}

// sameBytes compares hashes and sealed keys without an early exit.
func sameBytes(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// sameString compares a password hash without an early exit.
func sameString(a, b string) bool { return sameBytes([]byte(a), []byte(b)) }

func users(src *sqlite.Export, pg *postgres.DB) runner {
	return &kind[*account.User]{
		kindName: KindUsers,
		total:    func(c sqlite.ExportCounts) int { return c.Users },
		each:     src.Users,
		id:       func(u *account.User) string { return u.ID },
		shard:    func(u *account.User) string { return u.ID },
		lookup: func(ctx context.Context, u *account.User) (*account.User, bool, error) {
			got, ok, err := found(pg.UserByID(ctx, u.ID))
			if ok || err != nil {
				return got, ok, err
			}
			// Another user may have the username.
			return found(pg.UserByUsername(ctx, u.Username))
		},
		write: pg.CreateUser,
		diff: func(a, b *account.User) string {
			if a.ID != b.ID {
				return "username is held by user " + b.ID
			}
			var d differ
			d.check("username", a.Username == b.Username)
			d.check("password hash", sameString(a.PasswordHash, b.PasswordHash))
			d.check("roles", slices.Equal(a.Roles, b.Roles))
			d.check("created at", a.CreatedAt.Equal(b.CreatedAt))
			d.check("updated at", a.UpdatedAt.Equal(b.UpdatedAt))
			d.check("revoked before", a.RevokedBefore.Equal(b.RevokedBefore))
			return d.result()
		},
	}
}

func sessions(src *sqlite.Export, rd *redisstore.Store) runner {
	// The users that have sessions in the source: the destination's
	// sessions are counted through their per-user indexes.
	var owners map[string]struct{}
	return &kind[*session.Session]{
		kindName: KindSessions,
		total:    func(c sqlite.ExportCounts) int { return c.Sessions },
		each: func(ctx context.Context, fn func(*session.Session) error) error {
			owners = map[string]struct{}{}
			return src.Sessions(ctx, func(s *session.Session) error {
				owners[s.UserID] = struct{}{}
				return fn(s)
			})
		},
		live: func(s *session.Session, now time.Time) bool {
			return now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt)
		},
		id:    func(s *session.Session) string { return s.ID },
		shard: func(s *session.Session) string { return s.ID },
		lookup: func(ctx context.Context, s *session.Session) (*session.Session, bool, error) {
			return found(rd.SessionByHash(ctx, s.Hash))
		},
		write: rd.CreateSession,
		diff: func(a, b *session.Session) string {
			var d differ
			d.check("id", a.ID == b.ID)
			d.check("hash", sameBytes(a.Hash, b.Hash))
			d.check("user id", a.UserID == b.UserID)
			d.check("created at", a.CreatedAt.Equal(b.CreatedAt))
			d.check("last seen at", a.LastSeenAt.Equal(b.LastSeenAt))
			d.check("idle expiry", a.IdleExpiresAt.Equal(b.IdleExpiresAt))
			d.check("expiry", a.ExpiresAt.Equal(b.ExpiresAt))
			d.check("user agent", a.UserAgent == b.UserAgent)
			d.check("ip", a.IP == b.IP)
			return d.result()
		},
		countDest: func(ctx context.Context) (int, error) {
			n := 0
			for u := range owners {
				ss, err := rd.SessionsByUser(ctx, u)
				if err != nil {
					return 0, err
				}
				n += len(ss)
			}
			return n, nil
		},
	}
}

// family is a refresh family with all its tokens.
type family struct {
	f      *refresh.Family
	tokens []*refresh.Token
}

func families(src *sqlite.Export, pg *postgres.DB) runner {
	r := pg.Refresh()
	return &kind[family]{
		kindName: KindFamilies,
		sub:      KindTokens,
		total:    func(c sqlite.ExportCounts) int { return c.RefreshFamilies },
		each: func(ctx context.Context, fn func(family) error) error {
			return src.RefreshFamilies(ctx, func(f *refresh.Family, ts []*refresh.Token) error {
				return fn(family{f, ts})
			})
		},
		id:     func(f family) string { return f.f.ID },
		shard:  func(f family) string { return f.f.ID },
		weight: func(f family) int { return len(f.tokens) },
		lookup: func(ctx context.Context, f family) (family, bool, error) {
			got, ok, err := found(r.Family(ctx, f.f.ID))
			if !ok || err != nil {
				return family{}, ok, err
			}
			ts, err := r.FamilyTokens(ctx, f.f.ID)
			if err != nil {
				return family{}, false, err
			}
			return family{got, ts}, true, nil
		},
		write: func(ctx context.Context, f family) error { return r.ImportFamily(ctx, f.f, f.tokens) },
		diff:  diffFamily,
	}
}

// diffFamily compares two families and their tokens, both in the order of
// generation then hash.
func diffFamily(a, b family) string {
	var d differ
	d.check("user id", a.f.UserID == b.f.UserID)
	d.check("created at", a.f.CreatedAt.Equal(b.f.CreatedAt))
	d.check("last used at", a.f.LastUsedAt.Equal(b.f.LastUsedAt))
	d.check("idle expiry", a.f.IdleExpiresAt.Equal(b.f.IdleExpiresAt))
	d.check("expiry", a.f.ExpiresAt.Equal(b.f.ExpiresAt))
	d.check("revoked at", a.f.RevokedAt.Equal(b.f.RevokedAt))
	d.check("delivery", a.f.Delivery == b.f.Delivery)
	d.check("user agent", a.f.UserAgent == b.f.UserAgent)
	d.check("ip", a.f.IP == b.f.IP)
	d.check("number of tokens", len(a.tokens) == len(b.tokens))
	if d.field != "" {
		return d.result()
	}
	for i, t := range a.tokens {
		u := b.tokens[i]
		p := "token " + strconv.Itoa(i+1) + " "
		d.check(p+"hash", sameBytes(t.Hash, u.Hash))
		d.check(p+"family", t.FamilyID == u.FamilyID)
		d.check(p+"generation", t.Generation == u.Generation)
		d.check(p+"parent hash", sameBytes(t.ParentHash, u.ParentHash) && (t.ParentHash == nil) == (u.ParentHash == nil))
		d.check(p+"created at", t.CreatedAt.Equal(u.CreatedAt))
		d.check(p+"idle expiry", t.IdleExpiresAt.Equal(u.IdleExpiresAt))
		d.check(p+"rotated at", t.RotatedAt.Equal(u.RotatedAt))
		d.check(p+"children", t.Children == u.Children)
	}
	return d.result()
}

func signingKeys(src *sqlite.Export, pg *postgres.DB) runner {
	var have map[string]*keys.Record // the destination's, loaded by prepare
	return &kind[*keys.Record]{
		kindName: KindKeys,
		total:    func(c sqlite.ExportCounts) int { return c.SigningKeys },
		each:     src.SigningKeys,
		id:       func(r *keys.Record) string { return r.KID },
		shard:    func(r *keys.Record) string { return r.KID },
		prepare: func(ctx context.Context) error {
			recs, err := pg.SigningKeys(ctx)
			if err != nil {
				return err
			}
			have = make(map[string]*keys.Record, len(recs))
			for _, r := range recs {
				have[r.KID] = r
			}
			return nil
		},
		lookup: func(_ context.Context, r *keys.Record) (*keys.Record, bool, error) {
			got, ok := have[r.KID]
			return got, ok, nil
		},
		write: pg.CreateSigningKey,
		diff: func(a, b *keys.Record) string {
			var d differ
			d.check("alg", a.Alg == b.Alg)
			d.check("sealed private key", sameBytes(a.Sealed, b.Sealed))
			d.check("public key", sameBytes(a.PublicKey, b.PublicKey))
			d.check("created at", a.CreatedAt.Equal(b.CreatedAt))
			d.check("signs from", a.SignsFrom.Equal(b.SignsFrom))
			d.check("retired at", a.RetiredAt.Equal(b.RetiredAt))
			d.check("remove at", a.RemoveAt.Equal(b.RemoveAt))
			d.check("removed", a.Removed == b.Removed)
			return d.result()
		},
	}
}

// entryID names a revocation entry: its kind and id.
func entryID(e revocation.Entry) string { return e.Kind.String() + ":" + e.ID }

func revocations(src *sqlite.Export, rd *redisstore.Store) runner {
	rv := rd.Revocations()
	var have map[string]revocation.Entry // the destination's, loaded by prepare
	return &kind[revocation.Entry]{
		kindName: KindRevocations,
		total:    func(c sqlite.ExportCounts) int { return c.Revocations },
		each:     src.Revocations,
		live:     func(e revocation.Entry, now time.Time) bool { return now.Before(e.Until) },
		id:       entryID,
		shard:    entryID,
		prepare: func(ctx context.Context) error {
			es, err := rv.Load(ctx)
			if err != nil {
				return err
			}
			have = make(map[string]revocation.Entry, len(es))
			for _, e := range es {
				have[entryID(e)] = e
			}
			return nil
		},
		lookup: func(_ context.Context, e revocation.Entry) (revocation.Entry, bool, error) {
			got, ok := have[entryID(e)]
			return got, ok, nil
		},
		// The store merges an entry into one with the same kind and id;
		// one is never merged here, but reported as present or a conflict.
		write: func(ctx context.Context, e revocation.Entry) error {
			if _, ok := have[entryID(e)]; ok {
				return store.ErrConflict
			}
			switch e.Kind {
			case revocation.KindToken:
				return rv.DenyToken(ctx, e.ID, e.Until)
			case revocation.KindSID:
				return rv.RevokeSID(ctx, e.ID, e.Until)
			case revocation.KindUser:
				return rv.RevokeUser(ctx, e.ID, e.Before, e.Until)
			default:
				return fmt.Errorf("revocation entry of unknown kind %d", e.Kind)
			}
		},
		diff: func(a, b revocation.Entry) string {
			var d differ
			d.check("before", a.Before.Equal(b.Before))
			d.check("until", a.Until.Equal(b.Until))
			return d.result()
		},
		countDest: func(ctx context.Context) (int, error) {
			es, err := rv.Load(ctx)
			return len(es), err
		},
	}
}

func auditEvents(src *sqlite.Export, pg *postgres.DB) runner {
	return &kind[*audit.Event]{
		kindName: KindAudit,
		total:    func(c sqlite.ExportCounts) int { return c.AuditEvents },
		each:     src.AuditEvents,
		id:       func(e *audit.Event) string { return e.ID },
		// Events of the same time go to one worker, in the source's order,
		// so that the destination's insertion order, which orders them,
		// is the source's.
		shard: func(e *audit.Event) string { return e.Time.UTC().Format(time.RFC3339Nano) },
		lookup: func(ctx context.Context, e *audit.Event) (*audit.Event, bool, error) {
			return found(pg.EventByID(ctx, e.ID))
		},
		write: pg.AppendEvent,
		diff: func(a, b *audit.Event) string {
			var d differ
			d.check("time", a.Time.Equal(b.Time))
			d.check("type", a.Type == b.Type)
			d.check("severity", a.Severity == b.Severity)
			d.check("user id", a.UserID == b.UserID)
			d.check("username", a.Username == b.Username)
			d.check("session id", a.SessionID == b.SessionID)
			d.check("actor id", a.ActorID == b.ActorID)
			d.check("ip", a.IP == b.IP)
			d.check("user agent", a.UserAgent == b.UserAgent)
			d.check("reason", a.Reason == b.Reason)
			return d.result()
		},
	}
}
