package memory

import (
	"context"
	"sort"
	"sync"

	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ audit.Store = (*Store)(nil)

// auditStore is the audit.Store part of Store. Events are kept in one slice
// ordered oldest first (by Time, then by insertion), so that Events walks it
// backwards and stops at the limit.
type auditStore struct {
	mu     sync.RWMutex
	events []audit.Event
	ids    map[string]struct{}
}

func (a *auditStore) init() {
	a.ids = make(map[string]struct{})
}

// AppendEvent stores a copy of e.
func (a *auditStore) AppendEvent(_ context.Context, e *audit.Event) error {
	c := *e
	c.Time = e.Time.UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.ids[c.ID]; ok {
		return store.ErrConflict
	}
	a.ids[c.ID] = struct{}{}
	// After every event at the same time or earlier: usually at the end.
	i := len(a.events)
	if i > 0 && c.Time.Before(a.events[i-1].Time) {
		i = sort.Search(len(a.events), func(j int) bool { return a.events[j].Time.After(c.Time) })
	}
	a.events = append(a.events, audit.Event{})
	copy(a.events[i+1:], a.events[i:])
	a.events[i] = c
	return nil
}

// Events returns copies of the events that match f, newest first; a Limit of
// zero or less means no limit.
func (a *auditStore) Events(_ context.Context, f audit.Filter) ([]*audit.Event, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []*audit.Event
	for i := len(a.events) - 1; i >= 0; i-- {
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		e := &a.events[i]
		if (f.UserID != "" && e.UserID != f.UserID) || (f.Type != "" && e.Type != f.Type) {
			continue
		}
		c := *e
		out = append(out, &c)
	}
	return out, nil
}
