package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestFreshness drives the heartbeat bookkeeping with a fake clock: each
// step sends a heartbeat, lets time pass, or receives one back, and the
// case says whether the instance is in step at the end.
func TestFreshness(t *testing.T) {
	const stale = time.Second
	type step struct {
		send    bool          // send a heartbeat (numbered from 0)
		advance time.Duration // then let this much time pass
		receive int           // then receive heartbeat n-1 back (0: none)
		foreign bool          // receive an until that was never sent
	}
	cases := []struct {
		name    string
		steps   []step
		inStep  bool
		wantAge time.Duration // when in step: how old the proof is
	}{
		{"nothing sent", nil, false, 0},
		{"sent, never back", []step{{send: true, advance: 10 * time.Millisecond}}, false, 0},
		{"back at once", []step{{send: true, advance: 2 * time.Millisecond, receive: 1}}, true, 2 * time.Millisecond},
		{"back, then exactly the bound", []step{{send: true, receive: 1}, {advance: stale}}, true, stale},
		{"back, then past the bound", []step{{send: true, receive: 1}, {advance: stale + time.Nanosecond}}, false, 0},
		{"beats keep it in step", []step{
			{send: true, advance: 400 * time.Millisecond, receive: 1},
			{send: true, advance: 400 * time.Millisecond, receive: 2},
			{send: true, advance: 400 * time.Millisecond, receive: 3},
		}, true, 400 * time.Millisecond},
		{"lost beats, a later one back", []step{
			{send: true, advance: 400 * time.Millisecond},
			{send: true, advance: 400 * time.Millisecond},
			{send: true, advance: 400 * time.Millisecond, receive: 3},
		}, true, 400 * time.Millisecond},
		{"only an old beat back: its own send time counts", []step{
			{send: true, advance: 900 * time.Millisecond},
			{send: true, advance: 200 * time.Millisecond, receive: 1},
		}, false, 0},
		{"an older beat after a newer one changes nothing", []step{
			{send: true, advance: 100 * time.Millisecond},
			{send: true, advance: 100 * time.Millisecond, receive: 2},
			{receive: 1},
		}, true, 100 * time.Millisecond},
		{"another instance's heartbeat proves nothing", []step{{send: true, advance: 10 * time.Millisecond, foreign: true}}, false, 0},
		{"a beat received twice", []step{
			{send: true, receive: 1},
			{advance: 1500 * time.Millisecond, receive: 1},
		}, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := clock.NewFake(t0)
			f := newFreshness(fc, stale)
			var sent []time.Time
			for _, s := range tc.steps {
				if s.send {
					sent = append(sent, f.next())
				}
				fc.Advance(s.advance)
				if s.receive > 0 {
					f.received(sent[s.receive-1])
				}
				if s.foreign {
					f.received(fc.Now().Add(controlLife))
				}
			}
			err := f.check()
			if (err == nil) != tc.inStep {
				t.Fatalf("check() = %v, want in step = %v", err, tc.inStep)
			}
			if err != nil && !errors.Is(err, errStale) {
				t.Fatalf("check() = %v, not errStale", err)
			}
			if err == nil {
				if age := f.since() - time.Duration(f.fresh.Load()); age != tc.wantAge {
					t.Fatalf("proof is %v old, want %v", age, tc.wantAge)
				}
			}
		})
	}
}

func TestFreshnessUntilsIncrease(t *testing.T) {
	fc := clock.NewFake(t0)
	f := newFreshness(fc, time.Second)
	prev := f.next()
	for range 2 * maxPending {
		u := f.next() // the clock does not move: each is still later
		if !u.After(prev) {
			t.Fatalf("until %v is not after %v", u, prev)
		}
		prev = u
	}
	if len(f.pending) > maxPending {
		t.Fatalf("%d heartbeats pending, more than %d", len(f.pending), maxPending)
	}
	f.received(prev)
	if err := f.check(); err != nil {
		t.Fatal(err)
	}
	if len(f.pending) != 0 {
		t.Fatalf("%d heartbeats still pending after the newest came back", len(f.pending))
	}
}

// TestGuardedIndex checks the token verifier's revocation checker with
// several instances: the index's answer while in step, an error (never
// "not revoked") while stale.
func TestGuardedIndex(t *testing.T) {
	ctx := context.Background()
	fc := clock.NewFake(t0)
	idx, err := revocation.New(ctx, memory.NewRevocations(fc), fc)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.DenyToken(ctx, "denied-jti", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		inStep      bool
		jti         string
		wantRevoked bool
		wantErr     bool
	}{
		{"in step, revoked", true, "denied-jti", true, false},
		{"in step, not revoked", true, "other-jti", false, false},
		{"stale, revoked", false, "denied-jti", false, true},
		{"stale, not revoked", false, "other-jti", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFreshness(fc, time.Second)
			if tc.inStep {
				f.received(f.next())
			}
			revoked, err := guardedIndex{idx: idx, fresh: f}.Revoked(ctx, tc.jti, "sid", "user", t0)
			if revoked != tc.wantRevoked || (err != nil) != tc.wantErr {
				t.Fatalf("Revoked = %v, %v; want %v, error %v", revoked, err, tc.wantRevoked, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errStale) {
				t.Fatalf("error %v is not errStale", err)
			}
		})
	}
}

func TestIsControl(t *testing.T) {
	cases := []struct {
		id   string
		want bool
	}{
		{controlPrefix + "heartbeat/abc", true},
		{controlPrefix + "keys/abc", true},
		{"gatehouse.ctl", false},
		{"Eg4gSSGh18ulqWlpj0SQQQ", false},
		{"", false},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			if got := isControl(revocation.Entry{Kind: revocation.KindSID, ID: tc.id}); got != tc.want {
				t.Fatalf("isControl(%q) = %v", tc.id, got)
			}
		})
	}
}

// TestGuardFeed checks that the revocation feed is answered only while the
// instance is in step, at the start and at the end of a (long) poll.
func TestGuardFeed(t *testing.T) {
	cases := []struct {
		name       string
		path       string
		inStep     bool
		goesStale  bool // the clock passes the bound while the handler runs
		wantStatus int
	}{
		{"feed, in step", feedPath, true, false, http.StatusTeapot},
		{"feed, stale", feedPath, false, false, http.StatusServiceUnavailable},
		{"feed, stale by the end of the poll", feedPath, true, true, http.StatusServiceUnavailable},
		{"another path, stale", "/v1/verify", false, false, http.StatusTeapot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := clock.NewFake(t0)
			cl := &cluster{fresh: newFreshness(fc, time.Second)}
			if tc.inStep {
				cl.fresh.received(cl.fresh.next())
			}
			h := cl.guardFeed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.goesStale {
					fc.Advance(2 * time.Second)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTeapot)
				w.Write([]byte(`{"cursor":"c","reset":false,"entries":[]}`))
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus == http.StatusServiceUnavailable {
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("Content-Type %q", ct)
				}
				if strings.Contains(rec.Body.String(), "cursor") {
					t.Fatalf("the stale answer leaks the feed's body: %s", rec.Body)
				}
			} else if !strings.Contains(rec.Body.String(), "cursor") {
				t.Fatalf("body %s, want the handler's", rec.Body)
			}
		})
	}
}
