package audit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// setup returns a recorder logging JSON to the returned buffer and storing
// in a memory store.
func setup(t *testing.T) (*audit.Recorder, *bytes.Buffer, *memory.Store, *clock.Fake) {
	t.Helper()
	var buf bytes.Buffer
	c := clock.NewFake(now)
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := memory.New(c)
	return audit.NewRecorder(logger, st, c), &buf, st, c
}

// lines decodes buf as JSON lines.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not one JSON object: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// stored returns every stored event, newest first.
func stored(t *testing.T, st audit.Store) []*audit.Event {
	t.Helper()
	events, err := st.Events(context.Background(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func fullEvent() audit.Event {
	return audit.Event{
		Type:      audit.TypeLoginSuccess,
		UserID:    "u_123",
		Username:  "alice",
		SessionID: "s_456",
		ActorID:   "system",
		IP:        "192.0.2.1",
		UserAgent: "Mozilla/5.0",
		Reason:    "ok",
	}
}

func TestRecordLogsAndStoresOneSchema(t *testing.T) {
	rec, buf, st, _ := setup(t)
	rec.Record(context.Background(), fullEvent())

	logged := lines(t, buf)
	if len(logged) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(logged), buf)
	}
	events := stored(t, st)
	if len(events) != 1 {
		t.Fatalf("%d stored events, want 1", len(events))
	}
	e := events[0]
	want := fullEvent()
	want.ID, want.Time, want.Severity = e.ID, now, audit.SeverityInfo
	if *e != want {
		t.Fatalf("stored %+v\nwant   %+v", *e, want)
	}
	raw, err := base64.RawURLEncoding.DecodeString(e.ID)
	if err != nil || len(raw) != 16 {
		t.Fatalf("ID %q is not 16 base64url bytes (%v)", e.ID, err)
	}

	line := logged[0]
	wantLine := map[string]any{
		"time":       now.Format(time.RFC3339Nano),
		"level":      "INFO",
		"msg":        "audit",
		"id":         e.ID,
		"type":       e.Type,
		"severity":   e.Severity,
		"user_id":    e.UserID,
		"username":   e.Username,
		"session_id": e.SessionID,
		"actor_id":   e.ActorID,
		"ip":         e.IP,
		"user_agent": e.UserAgent,
		"reason":     e.Reason,
	}
	if len(line) != len(wantLine) {
		t.Errorf("log line has %d keys, want %d: %v", len(line), len(wantLine), line)
	}
	for k, v := range wantLine {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
}

func TestRecordOmitsEmptyFields(t *testing.T) {
	rec, buf, _, _ := setup(t)
	rec.Record(context.Background(), audit.Event{Type: audit.TypeSessionExpired, SessionID: "s_1"})
	line := lines(t, buf)[0]
	for _, k := range []string{"user_id", "username", "actor_id", "ip", "user_agent", "reason"} {
		if _, ok := line[k]; ok {
			t.Errorf("empty field %s logged", k)
		}
	}
	if line["session_id"] != "s_1" {
		t.Errorf("session_id = %v", line["session_id"])
	}
}

func TestRecordSeverity(t *testing.T) {
	tests := []struct {
		name      string
		typ       string
		severity  string
		want      string
		wantLevel string
	}{
		{"login success", audit.TypeLoginSuccess, "", audit.SeverityInfo, "INFO"},
		{"login failure", audit.TypeLoginFailure, "", audit.SeverityWarning, "WARN"},
		{"login throttled", audit.TypeLoginThrottled, "", audit.SeverityWarning, "WARN"},
		{"logout", audit.TypeLogout, "", audit.SeverityInfo, "INFO"},
		{"session created", audit.TypeSessionCreated, "", audit.SeverityInfo, "INFO"},
		{"session expired", audit.TypeSessionExpired, "", audit.SeverityInfo, "INFO"},
		{"session revoked", audit.TypeSessionRevoked, "", audit.SeverityInfo, "INFO"},
		{"forced logout", audit.TypeUserForcedLogout, "", audit.SeverityHigh, "ERROR"},
		{"password changed", audit.TypePasswordChanged, "", audit.SeverityWarning, "WARN"},
		{"password change failed", audit.TypePasswordChangeFailed, "", audit.SeverityWarning, "WARN"},
		{"csrf refused", audit.TypeCSRFRefused, "", audit.SeverityWarning, "WARN"},
		{"user created", audit.TypeUserCreated, "", audit.SeverityInfo, "INFO"},
		{"roles changed", audit.TypeRolesChanged, "", audit.SeverityHigh, "ERROR"},
		{"unknown type", "token.something_new", "", audit.SeverityInfo, "INFO"},
		{"explicit severity kept", audit.TypeLoginSuccess, audit.SeverityHigh, audit.SeverityHigh, "ERROR"},
		{"unknown severity replaced", audit.TypeCSRFRefused, "critical", audit.SeverityWarning, "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, buf, st, _ := setup(t)
			rec.Record(context.Background(), audit.Event{Type: tt.typ, Severity: tt.severity})
			if got := stored(t, st)[0].Severity; got != tt.want {
				t.Errorf("stored severity %q, want %q", got, tt.want)
			}
			line := lines(t, buf)[0]
			if line["severity"] != tt.want || line["level"] != tt.wantLevel {
				t.Errorf("logged severity %v level %v, want %s %s", line["severity"], line["level"], tt.want, tt.wantLevel)
			}
		})
	}
}

// unsafe reports whether s holds a character that could forge or hide a
// line for a reader.
func unsafe(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)
	})
}

func TestRecordCannotForgeALine(t *testing.T) {
	forged := `{"time":"2026-03-01T12:00:00Z","level":"INFO","msg":"audit","type":"login.success","username":"admin"}`
	tests := []struct {
		name  string
		value string
	}{
		{"LF", "x\n" + forged},
		{"CRLF", "x\r\n" + forged},
		{"CR", "x\r" + forged},
		{"NUL", "x\x00y"},
		{"ESC sequence", "\x1b[2K\x1b[1Ax"},
		{"DEL and C1", "x\x7f\u0085\u009by"},
		{"line separator", "x\u2028" + forged},
		{"paragraph separator", "x\u2029y"},
		{"bidi override", "x\u202egnp.exe"},
		{"bidi isolate", "x\u2066y\u2069"},
		{"invalid UTF-8", "x\xff\xfe\xc0y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, handler := range []string{"json", "text"} {
				var buf bytes.Buffer
				var h slog.Handler = slog.NewJSONHandler(&buf, nil)
				if handler == "text" {
					h = slog.NewTextHandler(&buf, nil)
				}
				st := memory.New(clock.NewFake(now))
				rec := audit.NewRecorder(slog.New(h), st, clock.NewFake(now))
				rec.Record(context.Background(), audit.Event{
					Type: tt.value, Severity: tt.value, UserID: tt.value, Username: tt.value,
					SessionID: tt.value, ActorID: tt.value, IP: tt.value, UserAgent: tt.value, Reason: tt.value,
				})
				if n := strings.Count(buf.String(), "\n"); n != 1 {
					t.Fatalf("%s: %d lines:\n%s", handler, n, buf.String())
				}
				e := stored(t, st)[0]
				for name, v := range map[string]string{
					"type": e.Type, "severity": e.Severity, "user_id": e.UserID, "username": e.Username,
					"session_id": e.SessionID, "actor_id": e.ActorID, "ip": e.IP, "user_agent": e.UserAgent, "reason": e.Reason,
				} {
					if unsafe(v) {
						t.Errorf("%s: stored %s = %q", handler, name, v)
					}
				}
				if handler == "json" {
					for k, v := range lines(t, &buf)[0] {
						if s, ok := v.(string); ok && unsafe(s) {
							t.Errorf("logged %s = %q", k, s)
						}
					}
				}
			}
		})
	}
}

func TestRecordBoundsLengths(t *testing.T) {
	tests := []struct {
		name  string
		event audit.Event
		get   func(*audit.Event) string
		max   int
	}{
		{"user agent", audit.Event{UserAgent: strings.Repeat("A", 10_000)}, func(e *audit.Event) string { return e.UserAgent }, 256},
		{"multibyte user agent", audit.Event{UserAgent: strings.Repeat("é", 10_000)}, func(e *audit.Event) string { return e.UserAgent }, 256},
		{"username", audit.Event{Username: strings.Repeat("u", 10_000)}, func(e *audit.Event) string { return e.Username }, 128},
		{"reason", audit.Event{Reason: strings.Repeat("r\n", 10_000)}, func(e *audit.Event) string { return e.Reason }, 128},
		{"ip", audit.Event{IP: strings.Repeat("1", 1000)}, func(e *audit.Event) string { return e.IP }, 64},
		{"type", audit.Event{Type: strings.Repeat("t", 1000)}, func(e *audit.Event) string { return e.Type }, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, _, st, _ := setup(t)
			rec.Record(context.Background(), tt.event)
			got := tt.get(stored(t, st)[0])
			if len(got) > tt.max || len(got) < tt.max-3 || !utf8.ValidString(got) {
				t.Fatalf("field is %d bytes (valid UTF-8: %v), want at most %d", len(got), utf8.ValidString(got), tt.max)
			}
		})
	}
}

func TestRecordTime(t *testing.T) {
	rec, _, st, c := setup(t)
	c.Advance(time.Minute)
	rec.Record(context.Background(), audit.Event{Type: audit.TypeLogout})
	earlier := time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	rec.Record(context.Background(), audit.Event{Type: audit.TypeSessionExpired, Time: earlier})
	events := stored(t, st)
	if got := events[0].Time; !got.Equal(now.Add(time.Minute)) || got.Location() != time.UTC {
		t.Errorf("clock time %v, want %v in UTC", got, now.Add(time.Minute))
	}
	if got := events[1].Time; !got.Equal(earlier) || got.Location() != time.UTC {
		t.Errorf("caller time %v, want %v in UTC", got, earlier.UTC())
	}
}

func TestRecordIDsAreFreshAndUnique(t *testing.T) {
	rec, _, st, _ := setup(t)
	for range 500 {
		rec.Record(context.Background(), audit.Event{Type: audit.TypeLogout, ID: "chosen-by-caller"})
	}
	seen := map[string]bool{}
	for _, e := range stored(t, st) {
		if seen[e.ID] || e.ID == "chosen-by-caller" {
			t.Fatalf("ID %q repeated or taken from the caller", e.ID)
		}
		seen[e.ID] = true
	}
	if len(seen) != 500 {
		t.Fatalf("%d events stored, want 500", len(seen))
	}
}

// failingStore is a store whose writes all fail, as a database that is down.
type failingStore struct{}

func (failingStore) AppendEvent(context.Context, *audit.Event) error {
	return errors.New("database is down")
}

func (failingStore) Events(context.Context, audit.Filter) ([]*audit.Event, error) {
	return nil, errors.New("database is down")
}

func TestRecordStoreFailure(t *testing.T) {
	var buf bytes.Buffer
	rec := audit.NewRecorder(slog.New(slog.NewJSONHandler(&buf, nil)), failingStore{}, clock.NewFake(now))
	failures := 0
	rec.OnStoreError(func() { failures++ })
	rec.Record(context.Background(), fullEvent())

	if failures != 1 {
		t.Errorf("store error hook called %d times, want 1", failures)
	}
	logged := lines(t, &buf)
	if len(logged) != 2 {
		t.Fatalf("%d log lines, want the event and the failure:\n%s", len(logged), buf.String())
	}
	if logged[0]["msg"] != "audit" || logged[0]["username"] != "alice" {
		t.Errorf("event not logged: %v", logged[0])
	}
	if logged[1]["level"] != "ERROR" || logged[1]["id"] != logged[0]["id"] || !strings.Contains(fmt.Sprint(logged[1]["error"]), "database is down") {
		t.Errorf("failure not logged with the event id and error: %v", logged[1])
	}
	if _, err := rec.Events(context.Background(), audit.Filter{}); err == nil || !strings.Contains(err.Error(), "audit events") {
		t.Errorf("Events error = %v, want it wrapped", err)
	}
}

// cancelAwareStore refuses writes under a cancelled context, as a database
// driver does.
type cancelAwareStore struct{ audit.Store }

func (s cancelAwareStore) AppendEvent(ctx context.Context, e *audit.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Store.AppendEvent(ctx, e)
}

func TestRecordSurvivesCancelledRequest(t *testing.T) {
	st := memory.New(clock.NewFake(now))
	rec := audit.NewRecorder(slog.New(slog.DiscardHandler), cancelAwareStore{st}, clock.NewFake(now))
	failures := 0
	rec.OnStoreError(func() { failures++ })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec.Record(ctx, audit.Event{Type: audit.TypeLoginSuccess, UserID: "u_1"})
	if failures != 0 || len(stored(t, st)) != 1 {
		t.Fatalf("event lost when the request was cancelled (%d failures)", failures)
	}
}

func TestRecordWithoutStore(t *testing.T) {
	var buf bytes.Buffer
	rec := audit.NewRecorder(slog.New(slog.NewJSONHandler(&buf, nil)), nil, nil)
	rec.Record(context.Background(), audit.Event{Type: audit.TypeLogout, UserID: "u_1"})
	if got := lines(t, &buf); len(got) != 1 || got[0]["user_id"] != "u_1" {
		t.Fatalf("logged %v", got)
	}
	if _, err := rec.Events(context.Background(), audit.Filter{}); !errors.Is(err, audit.ErrNoStore) {
		t.Fatalf("Events without a store: %v, want ErrNoStore", err)
	}
}

func TestEvents(t *testing.T) {
	rec, _, _, c := setup(t)
	ctx := context.Background()
	for i := range 1200 {
		typ := audit.TypeLoginSuccess
		if i%2 == 1 {
			typ = audit.TypeLoginFailure
		}
		rec.Record(ctx, audit.Event{Type: typ, UserID: fmt.Sprintf("u_%d", i%3)})
		c.Advance(time.Second)
	}
	tests := []struct {
		name   string
		filter audit.Filter
		want   int
	}{
		{"no limit means default", audit.Filter{}, audit.DefaultLimit},
		{"negative limit means default", audit.Filter{Limit: -1}, audit.DefaultLimit},
		{"small limit", audit.Filter{Limit: 7}, 7},
		{"limit above max is clamped", audit.Filter{Limit: 5000}, audit.MaxLimit},
		{"by type", audit.Filter{Type: audit.TypeLoginFailure, Limit: 1000}, 600},
		{"by user", audit.Filter{UserID: "u_1", Limit: 1000}, 400},
		{"by user and type", audit.Filter{UserID: "u_0", Type: audit.TypeLoginFailure, Limit: 1000}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := rec.Events(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != tt.want {
				t.Fatalf("%d events, want %d", len(events), tt.want)
			}
			for i, e := range events {
				if (tt.filter.Type != "" && e.Type != tt.filter.Type) || (tt.filter.UserID != "" && e.UserID != tt.filter.UserID) {
					t.Fatalf("event %d does not match: %+v", i, e)
				}
				if i > 0 && e.Time.After(events[i-1].Time) {
					t.Fatalf("event %d is newer than the one before", i)
				}
			}
		})
	}
}

func TestRecordBelowLogLevelStillStores(t *testing.T) {
	var buf bytes.Buffer
	st := memory.New(clock.NewFake(now))
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rec := audit.NewRecorder(logger, st, clock.NewFake(now))
	rec.Record(context.Background(), audit.Event{Type: audit.TypeLogout})
	rec.Record(context.Background(), audit.Event{Type: audit.TypeLoginFailure})
	if got := lines(t, &buf); len(got) != 1 || got[0]["type"] != audit.TypeLoginFailure {
		t.Fatalf("logged %v, want only the warning", got)
	}
	if n := len(stored(t, st)); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
}

func ExampleRecorder() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		// Drop the id, random, so that the output is stable.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == "id" {
				return slog.Attr{}
			}
			return a
		},
	}))
	c := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rec := audit.NewRecorder(logger, memory.New(c), c)
	rec.Record(context.Background(), audit.Event{
		Type:      audit.TypeLoginFailure,
		Username:  "alice\n{\"forged\":true}",
		IP:        "192.0.2.1",
		UserAgent: "curl/8.5.0",
		Reason:    "bad_credentials",
	})
	// Output:
	// {"time":"2026-03-01T12:00:00Z","level":"WARN","msg":"audit","type":"login.failure","severity":"warning","username":"alice�{\"forged\":true}","ip":"192.0.2.1","user_agent":"curl/8.5.0","reason":"bad_credentials"}
}
