package audit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// ErrNoStore is returned by Recorder.Events when the recorder only logs.
var ErrNoStore = errors.New("audit: no store")

// Limits of Recorder.Events.
const (
	// DefaultLimit is the number of events returned when the filter sets
	// none.
	DefaultLimit = 100
	// MaxLimit is the most events returned at once.
	MaxLimit = 1000
)

// storeTimeout bounds one write to the store. The write does not follow the
// cancellation of the request that caused it: an event must not be lost
// because the client went away.
const storeTimeout = 5 * time.Second

// Recorder writes audit events to the log and to a store. It is safe for
// concurrent use.
type Recorder struct {
	logger       *slog.Logger
	store        Store
	clock        clock.Clock
	onStoreError func()
}

// NewRecorder returns a Recorder writing to logger and s, with time from c.
// A nil logger means slog.Default(); a nil s means the events are only
// logged; a nil c means the system clock.
func NewRecorder(logger *slog.Logger, s Store, c clock.Clock) *Recorder {
	if logger == nil {
		logger = slog.Default()
	}
	if c == nil {
		c = clock.System{}
	}
	return &Recorder{logger: logger, store: s, clock: c}
}

// OnStoreError sets a function called each time an event cannot be written
// to the store, typically a metric (metrics.Metrics.AuditWriteError). Set it
// before the Recorder is used.
func (r *Recorder) OnStoreError(f func()) { r.onStoreError = f }

// Record writes e to the log and to the store.
//
// It gives e a fresh random ID (any ID set by the caller is replaced), the
// current time in UTC when e.Time is zero, and the default severity of its
// type when e.Severity is not a known severity; every string field is
// sanitised (see the package doc). Record never fails the caller: when the
// store refuses the event, the event is still in the log, and the failure
// is logged at error level and reported to the OnStoreError function.
func (r *Recorder) Record(ctx context.Context, e Event) {
	e.ID = newID()
	if e.Time.IsZero() {
		e.Time = r.clock.Now()
	}
	e.Time = e.Time.UTC()
	sanitizeEvent(&e)
	if !validSeverity(e.Severity) {
		e.Severity = DefaultSeverity(e.Type)
	}
	r.log(ctx, &e)
	if r.store == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := r.store.AppendEvent(sctx, &e); err != nil {
		r.logger.LogAttrs(ctx, slog.LevelError, "audit store append failed",
			slog.String("id", e.ID), slog.String("type", e.Type), slog.Any("error", err))
		if r.onStoreError != nil {
			r.onStoreError()
		}
	}
}

// log writes e as one slog record whose time is the event's time and whose
// attributes are the event's fields, named as in its JSON form.
func (r *Recorder) log(ctx context.Context, e *Event) {
	level := slog.LevelInfo
	switch e.Severity {
	case SeverityWarning:
		level = slog.LevelWarn
	case SeverityHigh:
		level = slog.LevelError
	}
	h := r.logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(e.Time, level, "audit", 0)
	rec.AddAttrs(
		slog.String("id", e.ID),
		slog.String("type", e.Type),
		slog.String("severity", e.Severity),
	)
	for _, f := range [...]struct{ key, value string }{
		{"user_id", e.UserID},
		{"username", e.Username},
		{"session_id", e.SessionID},
		{"actor_id", e.ActorID},
		{"ip", e.IP},
		{"user_agent", e.UserAgent},
		{"reason", e.Reason},
	} {
		if f.value != "" {
			rec.AddAttrs(slog.String(f.key, f.value))
		}
	}
	// A handler that cannot write has nowhere better to report it.
	_ = h.Handle(ctx, rec)
}

// Events returns the stored events that match f, newest first. A Limit of
// zero or less means DefaultLimit; a Limit above MaxLimit means MaxLimit.
func (r *Recorder) Events(ctx context.Context, f Filter) ([]*Event, error) {
	if r.store == nil {
		return nil, ErrNoStore
	}
	switch {
	case f.Limit <= 0:
		f.Limit = DefaultLimit
	case f.Limit > MaxLimit:
		f.Limit = MaxLimit
	}
	events, err := r.store.Events(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return events, nil
}

// newID returns 16 random bytes, base64url-encoded without padding.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand.Read panics instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}
