package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-auth/gatehouse/audit"
)

var _ audit.Store = (*DB)(nil)

const (
	eventColumns = `id, time, type, severity, user_id, username, session_id, actor_id, ip, user_agent, reason`

	appendEventSQL = `INSERT INTO audit_events (` + eventColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// Newest first: by time, then by insertion (seq). A negative LIMIT is no
	// limit.
	eventsOrder = ` ORDER BY time DESC, seq DESC LIMIT ?`
)

// eventsSQL holds the query of Events for each combination of filters,
// indexed by [user set][type set], each served by an index.
var eventsSQL = [2][2]string{
	{
		`SELECT ` + eventColumns + ` FROM audit_events` + eventsOrder,
		`SELECT ` + eventColumns + ` FROM audit_events WHERE type = ?` + eventsOrder,
	},
	{
		`SELECT ` + eventColumns + ` FROM audit_events WHERE user_id = ?` + eventsOrder,
		`SELECT ` + eventColumns + ` FROM audit_events WHERE user_id = ? AND type = ?` + eventsOrder,
	},
}

// AppendEvent stores e.
func (db *DB) AppendEvent(ctx context.Context, e *audit.Event) error {
	t, err := nanos(e.Time)
	if err != nil {
		return fmt.Errorf("sqlite: append audit event: %w", err)
	}
	_, err = db.w.ExecContext(ctx, appendEventSQL, e.ID, t, e.Type, e.Severity, e.UserID, e.Username,
		e.SessionID, e.ActorID, e.IP, e.UserAgent, e.Reason)
	if err != nil {
		return insertErr("append audit event", err)
	}
	return nil
}

// Events returns the events that match f, newest first; a Limit of zero or
// less means no limit.
func (db *DB) Events(ctx context.Context, f audit.Filter) ([]*audit.Event, error) {
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
	limit := f.Limit
	if limit <= 0 {
		limit = -1
	}
	args = append(args, limit)
	rows, err := db.r.QueryContext(ctx, eventsSQL[byUser][byType], args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit events: %w", err)
	}
	defer rows.Close()
	events := []*audit.Event{}
	for rows.Next() {
		var (
			e audit.Event
			t sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &t, &e.Type, &e.Severity, &e.UserID, &e.Username,
			&e.SessionID, &e.ActorID, &e.IP, &e.UserAgent, &e.Reason); err != nil {
			return nil, fmt.Errorf("sqlite: list audit events: %w", err)
		}
		e.Time = fromNanos(t)
		events = append(events, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list audit events: %w", err)
	}
	return events, nil
}
