package postgres

import (
	"context"
	"fmt"

	"github.com/gatehouse-auth/gatehouse/audit"
)

var _ audit.Store = (*DB)(nil)

const (
	eventColumns = `id, time, type, severity, user_id, username, session_id, actor_id, ip, user_agent, reason`

	appendEventSQL = `INSERT INTO audit_events (` + eventColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	// Newest first: by time (the zero time, NULL, last), then by insertion
	// (seq): the indexes on (…, time NULLS FIRST, seq) read backwards.
	// LIMIT NULL is no limit.
	eventsOrder = ` ORDER BY time DESC NULLS LAST, seq DESC LIMIT `
)

// eventsSQL holds the query of Events for each combination of filters,
// indexed by [user set][type set], each served by an index. The
// arguments are the user id and the type, when set, then the limit.
var eventsSQL = [2][2]string{
	{
		`SELECT ` + eventColumns + ` FROM audit_events` + eventsOrder + `$1`,
		`SELECT ` + eventColumns + ` FROM audit_events WHERE type = $1` + eventsOrder + `$2`,
	},
	{
		`SELECT ` + eventColumns + ` FROM audit_events WHERE user_id = $1` + eventsOrder + `$2`,
		`SELECT ` + eventColumns + ` FROM audit_events WHERE user_id = $1 AND type = $2` + eventsOrder + `$3`,
	},
}

// AppendEvent stores e.
func (db *DB) AppendEvent(ctx context.Context, e *audit.Event) error {
	t, err := nanos(e.Time)
	if err != nil {
		return fmt.Errorf("postgres: append audit event: %w", err)
	}
	_, err = db.pool.Exec(ctx, appendEventSQL, e.ID, t, e.Type, e.Severity, e.UserID, e.Username,
		e.SessionID, e.ActorID, e.IP, e.UserAgent, e.Reason)
	if err != nil {
		return insertErr("append audit event", err)
	}
	return nil
}

// scanEvent reads one row of eventColumns.
func scanEvent(row scanner) (*audit.Event, error) {
	var (
		e audit.Event
		t *int64
	)
	if err := row.Scan(&e.ID, &t, &e.Type, &e.Severity, &e.UserID, &e.Username,
		&e.SessionID, &e.ActorID, &e.IP, &e.UserAgent, &e.Reason); err != nil {
		return nil, err
	}
	e.Time = fromNanos(t)
	return &e, nil
}

// Events returns the events that match f, newest first; a Limit of zero or
// less means no limit.
func (db *DB) Events(ctx context.Context, f audit.Filter) ([]*audit.Event, error) {
	if !storable(f.UserID, f.Type) {
		return []*audit.Event{}, nil
	}
	var args []any
	byUser, byType := 0, 0
	if f.UserID != "" {
		byUser = 1
		args = append(args, f.UserID)
	}
	if f.Type != "" {
		byType = 1
		args = append(args, f.Type)
	}
	var limit any // NULL: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	args = append(args, limit)
	rows, err := db.pool.Query(ctx, eventsSQL[byUser][byType], args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit events: %w", err)
	}
	events, err := collect(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit events: %w", err)
	}
	return events, nil
}
