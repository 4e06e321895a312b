package web

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
)

// SnapshotQuery says whose state a Snapshot shows: a user, and the session
// ids, refresh family ids (sid claims) and token ids (jti claims) the lab
// has seen for that user, so that records which no longer list under the
// user (a revoked family, a denylisted token) are shown too.
type SnapshotQuery struct {
	UserID string
	IDs    []string
	JTIs   []string
}

// Snapshot is what the server stores about one user, as the lab shows it:
// never a secret, only ids, times and the first characters of a hash.
type Snapshot struct {
	User        *SnapshotUser        `json:"user"`
	Sessions    []SnapshotSession    `json:"sessions"`
	Families    []SnapshotFamily     `json:"refresh_families"`
	Revocations []SnapshotRevocation `json:"revocations"`
}

// SnapshotUser is the user record, without its password hash.
type SnapshotUser struct {
	ID            string     `json:"id"`
	Username      string     `json:"username"`
	Roles         []string   `json:"roles"`
	RevokedBefore *time.Time `json:"revoked_before,omitempty"`
}

// SnapshotSession is a stored session. SecretHash is the start of the
// SHA-256 of the cookie's secret: the store never holds the secret itself.
type SnapshotSession struct {
	ID            string    `json:"id"`
	SecretHash    string    `json:"secret_hash"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	UserAgent     string    `json:"user_agent"`
	IP            string    `json:"ip"`
}

// SnapshotFamily is a stored refresh-token family (one token-mode or
// hybrid-mode login).
type SnapshotFamily struct {
	ID            string     `json:"id"`
	Delivery      string     `json:"delivery"`
	CreatedAt     time.Time  `json:"created_at"`
	LastUsedAt    time.Time  `json:"last_used_at"`
	IdleExpiresAt time.Time  `json:"idle_expires_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	UserAgent     string     `json:"user_agent"`
	IP            string     `json:"ip"`
}

// SnapshotRevocation is a stored revocation entry: a denylisted jti
// ("token"), an ended session or family ("sid"), or the user's
// revoked-before time ("user").
type SnapshotRevocation struct {
	Kind   string     `json:"kind"`
	ID     string     `json:"id"`
	Before *time.Time `json:"before,omitempty"`
	Until  time.Time  `json:"until"`
}

// StoreSnapshot returns a LabConfig.Snapshot that reads the stores the
// server writes: the user, the user's live sessions, the user's live
// refresh families and those among q.IDs (revoked ones included), and the
// revocation entries of the user, of those ids and of q.JTIs. It reads the
// stores directly, not through a cache, so that it shows what is stored.
func StoreSnapshot(accounts account.Store, sessions session.Store, families refresh.Store, revocations revocation.Store) func(context.Context, SnapshotQuery) (*Snapshot, error) {
	return func(ctx context.Context, q SnapshotQuery) (*Snapshot, error) {
		snap := &Snapshot{Sessions: []SnapshotSession{}, Families: []SnapshotFamily{}, Revocations: []SnapshotRevocation{}}
		u, err := accounts.UserByID(ctx, q.UserID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("snapshot: load user: %w", err)
		default:
			snap.User = &SnapshotUser{ID: u.ID, Username: u.Username, Roles: u.Roles, RevokedBefore: optTime(u.RevokedBefore)}
			if snap.User.Roles == nil {
				snap.User.Roles = []string{}
			}
		}
		ss, err := sessions.SessionsByUser(ctx, q.UserID)
		if err != nil {
			return nil, fmt.Errorf("snapshot: list sessions: %w", err)
		}
		ids := map[string]bool{}
		for _, id := range q.IDs {
			ids[id] = true
		}
		for _, s := range ss {
			ids[s.ID] = true
			snap.Sessions = append(snap.Sessions, SnapshotSession{
				ID: s.ID, SecretHash: hex.EncodeToString(s.Hash[:min(6, len(s.Hash))]) + "…",
				CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(), IdleExpiresAt: s.IdleExpiresAt.UTC(),
				ExpiresAt: s.ExpiresAt.UTC(), UserAgent: s.UserAgent, IP: s.IP,
			})
		}
		fs, err := families.FamiliesByUser(ctx, q.UserID)
		if err != nil {
			return nil, fmt.Errorf("snapshot: list refresh families: %w", err)
		}
		seen := map[string]bool{}
		addFamily := func(f *refresh.Family) {
			seen[f.ID] = true
			ids[f.ID] = true
			snap.Families = append(snap.Families, SnapshotFamily{
				ID: f.ID, Delivery: f.Delivery, CreatedAt: f.CreatedAt.UTC(), LastUsedAt: f.LastUsedAt.UTC(),
				IdleExpiresAt: f.IdleExpiresAt.UTC(), ExpiresAt: f.ExpiresAt.UTC(), RevokedAt: optTime(f.RevokedAt),
				UserAgent: f.UserAgent, IP: f.IP,
			})
		}
		for _, f := range fs {
			addFamily(f)
		}
		for _, id := range q.IDs {
			if seen[id] {
				continue
			}
			f, err := families.Family(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue // a session id, or a purged family
			}
			if err != nil {
				return nil, fmt.Errorf("snapshot: load refresh family: %w", err)
			}
			if f.UserID == q.UserID {
				addFamily(f)
			}
		}
		entries, err := revocations.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("snapshot: load revocations: %w", err)
		}
		jtis := map[string]bool{}
		for _, j := range q.JTIs {
			jtis[j] = true
		}
		for _, e := range entries {
			var mine bool
			switch e.Kind {
			case revocation.KindUser:
				mine = e.ID == q.UserID
			case revocation.KindSID:
				mine = ids[e.ID]
			case revocation.KindToken:
				mine = jtis[e.ID]
			}
			if mine {
				snap.Revocations = append(snap.Revocations, SnapshotRevocation{Kind: e.Kind.String(), ID: e.ID, Before: optTime(e.Before), Until: e.Until.UTC()})
			}
		}
		slices.SortFunc(snap.Revocations, func(a, b SnapshotRevocation) int {
			return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.ID, b.ID))
		})
		return snap, nil
	}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// storeDiff is what an action changed in the store.
type storeDiff struct {
	Added   []diffItem   `json:"added"`
	Removed []diffItem   `json:"removed"`
	Changed []diffChange `json:"changed"`
}

type diffItem struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	Item  any    `json:"item"`
}

type diffChange struct {
	Table  string        `json:"table"`
	Key    string        `json:"key"`
	Fields []fieldChange `json:"fields"`
}

type fieldChange struct {
	Field  string `json:"field"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

// diffSnapshots compares two snapshots table by table, records by key (the
// kind and id, or the id).
func diffSnapshots(before, after *Snapshot) (*storeDiff, error) {
	b, err := tables(before)
	if err != nil {
		return nil, err
	}
	a, err := tables(after)
	if err != nil {
		return nil, err
	}
	d := &storeDiff{Added: []diffItem{}, Removed: []diffItem{}, Changed: []diffChange{}}
	for _, t := range []string{"user", "sessions", "refresh_families", "revocations"} {
		bt, at := b[t], a[t]
		for _, k := range sortedMapKeys(bt) {
			av, ok := at[k]
			if !ok {
				d.Removed = append(d.Removed, diffItem{t, k, bt[k]})
				continue
			}
			if fc := changedFields(bt[k], av); len(fc) > 0 {
				d.Changed = append(d.Changed, diffChange{t, k, fc})
			}
		}
		for _, k := range sortedMapKeys(at) {
			if _, ok := bt[k]; !ok {
				d.Added = append(d.Added, diffItem{t, k, at[k]})
			}
		}
	}
	return d, nil
}

func (d *storeDiff) empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// tables turns a snapshot into table → key → record (as JSON values).
func tables(s *Snapshot) (map[string]map[string]map[string]any, error) {
	out := map[string]map[string]map[string]any{}
	if s == nil {
		return out, nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("snapshot diff: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("snapshot diff: %w", err)
	}
	for t, v := range m {
		rows := map[string]map[string]any{}
		var list []any
		switch x := v.(type) {
		case []any:
			list = x
		case map[string]any:
			list = []any{x}
		}
		for _, e := range list {
			row, ok := e.(map[string]any)
			if !ok {
				continue
			}
			key, _ := row["id"].(string)
			if kind, ok := row["kind"].(string); ok {
				key = kind + ":" + key
			}
			rows[key] = row
		}
		out[t] = rows
	}
	return out, nil
}

func changedFields(before, after map[string]any) []fieldChange {
	var out []fieldChange
	keys := sortedMapKeys(before)
	for _, k := range sortedMapKeys(after) {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if !reflect.DeepEqual(before[k], after[k]) {
			out = append(out, fieldChange{Field: k, Before: before[k], After: after[k]})
		}
	}
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
