package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// feedAnswer is a decoded answer of GET /v1/revocations.
type feedAnswer struct {
	status  int
	header  http.Header
	raw     []byte
	Cursor  string `json:"cursor"`
	Reset   bool   `json:"reset"`
	Entries []struct {
		Kind   string `json:"kind"`
		ID     string `json:"id"`
		Before string `json:"before"`
		Until  string `json:"until"`
	} `json:"entries"`
}

// pollFeed asks the feed, with the service key, without failing the test:
// it may run on another goroutine.
func (h *harness) pollFeed(query string) (*feedAnswer, error) {
	rq, err := http.NewRequestWithContext(context.Background(), "GET", h.srv.URL+"/v1/revocations?"+query, nil)
	if err != nil {
		return nil, err
	}
	rq.Header.Set("Authorization", "Bearer "+serviceKey)
	res, err := h.srv.Client().Do(rq)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	a := &feedAnswer{status: res.StatusCode, header: res.Header, raw: b}
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, a); err != nil {
			return nil, fmt.Errorf("feed answer %s: %w", b, err)
		}
	}
	return a, nil
}

func (h *harness) feed(query string) *feedAnswer {
	h.t.Helper()
	a, err := h.pollFeed(query)
	if err != nil {
		h.t.Fatal(err)
	}
	if a.status != http.StatusOK {
		h.t.Fatalf("feed?%s: %d %s", query, a.status, a.raw)
	}
	if a.header.Get("Cache-Control") != "no-store" || a.header.Get("Content-Type") != "application/json" {
		h.t.Fatalf("feed headers %v", a.header)
	}
	if a.Entries == nil || a.Cursor == "" {
		h.t.Fatalf("feed answer without entries or cursor: %s", a.raw)
	}
	return a
}

func feedQuery(cursor, wait string) string {
	return url.Values{"cursor": {cursor}, "wait": {wait}}.Encode()
}

// jwtClaim reads a string claim of a token the server issued.
func jwtClaim(t *testing.T, raw, name string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c[name].(string)
}

func (h *harness) revoke(tok string) {
	h.t.Helper()
	if r := h.do(req{method: "POST", path: "/v1/token/revoke", body: form("token", tok), contentType: "application/x-www-form-urlencoded"}); r.StatusCode != 200 {
		h.t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
	}
}

func TestFeedAuthentication(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("fred", pw)
	p := h.passwordGrant("fred", pw)
	noKey := newTokenHarness(t, func(c *Config) { c.Tokens.ServiceKey = "" })
	cases := []struct {
		name    string
		h       *harness
		headers map[string]string
	}{
		{"no credential", h, nil},
		{"admin key", h, map[string]string{"Authorization": "Bearer " + adminKey}},
		{"a user's access token", h, map[string]string{"Authorization": "Bearer " + p.access}},
		{"wrong key", h, map[string]string{"Authorization": "Bearer " + strings.Repeat("k", len(serviceKey))}},
		{"service key as Basic", h, map[string]string{"Authorization": "Basic " + serviceKey}},
		{"service key on a server without one", noKey, map[string]string{"Authorization": "Bearer " + serviceKey}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.h.do(req{method: "GET", path: "/v1/revocations?wait=0", headers: tc.headers})
			wantProblem(t, r, http.StatusUnauthorized, classUnauthorized)
			if got := r.Header.Get("WWW-Authenticate"); got != challengeBearer {
				t.Fatalf("WWW-Authenticate %q", got)
			}
		})
	}
	t.Run("service key", func(t *testing.T) { h.feed("wait=0") })
}

func TestFeedBadRequests(t *testing.T) {
	h := newTokenHarness(t)
	cur := h.feed("wait=0").Cursor
	epoch, _, _ := strings.Cut(cur, ".")
	for _, tc := range []struct{ name, query string }{
		{"garbage cursor", "cursor=nope&wait=0"},
		{"cursor with a leading zero", "cursor=" + epoch + ".00&wait=0"},
		{"two cursors", "cursor=" + cur + "&cursor=" + cur + "&wait=0"},
		{"wait above 60", "wait=61"},
		{"wait of 60 and a bit", "wait=60.001"},
		{"negative wait", "wait=-1"},
		{"wait with an exponent", "wait=1e1"},
		{"wait with four decimals", "wait=1.2345"},
		{"wait with a bare dot", "wait=1."},
		{"empty wait", "wait="},
		{"wait in words", "wait=soon"},
		{"unknown parameter", "wait=0&since=0"},
		{"malformed query", "wait=0&%zz"},
		{"token in the query", "wait=0&access_token=" + serviceKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(req{method: "GET", path: "/v1/revocations?" + tc.query, headers: map[string]string{"Authorization": "Bearer " + serviceKey}})
			wantProblem(t, r, http.StatusBadRequest, classInvalidRequest)
		})
	}
	for _, wait := range []string{"0", "0.2", "0.25", "0.125", "00", "00.1"} {
		t.Run("wait="+wait, func(t *testing.T) { h.feed(feedQuery(cur, wait)) })
	}
}

func TestFeedCarriesRevocations(t *testing.T) {
	h := newTokenHarness(t)
	uid := h.signup("gina", pw)
	p := h.passwordGrant("gina", pw)
	start := h.feed("wait=0")
	if !start.Reset || len(start.Entries) != 0 {
		t.Fatalf("first answer: %s", start.raw)
	}

	h.revoke(p.access)
	a := h.feed(feedQuery(start.Cursor, "0"))
	if a.Reset || len(a.Entries) != 1 || a.Cursor == start.Cursor {
		t.Fatalf("after revoking the access token: %s", a.raw)
	}
	e := a.Entries[0]
	exp := h.clock.Now().Add(10 * time.Minute)
	until, err := time.Parse(time.RFC3339, e.Until)
	if e.Kind != "jti" || e.ID != jwtClaim(t, p.access, "jti") || e.Before != "" || err != nil || until.Before(exp) {
		t.Fatalf("entry %+v (until %v, %v)", e, until, err)
	}
	if !strings.HasSuffix(e.Until, "Z") {
		t.Fatalf("until %q is not UTC", e.Until)
	}

	h.revoke(p.refresh)
	b := h.feed(feedQuery(a.Cursor, "0"))
	if len(b.Entries) != 1 || b.Entries[0].Kind != "sid" || b.Entries[0].ID != jwtClaim(t, p.access, "sid") {
		t.Fatalf("after revoking the refresh token: %s", b.raw)
	}

	// A forced logout at a fraction of a second: before keeps it.
	h.clock.Advance(700 * time.Millisecond)
	if r := h.do(req{method: "POST", path: "/v1/admin/users/" + uid + "/logout", headers: map[string]string{"Authorization": "Bearer " + adminKey}}); r.StatusCode != 204 {
		t.Fatalf("forced logout: %d", r.StatusCode)
	}
	c := h.feed(feedQuery(b.Cursor, "0"))
	var user bool
	for _, e := range c.Entries {
		if e.Kind == "user" {
			user = true
			if e.ID != uid || e.Before != "2026-11-22T10:00:00.7Z" {
				t.Fatalf("user entry %+v", e)
			}
		}
	}
	if !user {
		t.Fatalf("no user entry after a forced logout: %s", c.raw)
	}

	// Nothing new: the same cursor back, no entries.
	if d := h.feed(feedQuery(c.Cursor, "0")); d.Reset || len(d.Entries) != 0 || d.Cursor != c.Cursor {
		t.Fatalf("nothing new: %s", d.raw)
	}
	// A snapshot holds each live entry once.
	if s := h.feed("wait=0"); !s.Reset || len(s.Entries) != 3 || s.Cursor != c.Cursor {
		t.Fatalf("snapshot: %s", s.raw)
	}
}

func TestFeedResetOnForeignCursor(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("hank", pw)
	p := h.passwordGrant("hank", pw)
	h.revoke(p.access)
	// A cursor of another server (or of this one before a restart).
	other := newTokenHarness(t)
	foreign := other.feed("wait=0").Cursor
	a := h.feed(feedQuery(foreign, "0"))
	if !a.Reset || len(a.Entries) != 1 || a.Entries[0].ID != jwtClaim(t, p.access, "jti") {
		t.Fatalf("foreign cursor: %s", a.raw)
	}
	if b := h.feed(feedQuery(a.Cursor, "0")); b.Reset || len(b.Entries) != 0 {
		t.Fatalf("after the reset: %s", b.raw)
	}
}

func TestFeedLongPoll(t *testing.T) {
	h := newTokenHarness(t)
	h.signup("ivy", pw)
	p := h.passwordGrant("ivy", pw)
	cur := h.feed("wait=0").Cursor

	t.Run("answers at the end of wait without news", func(t *testing.T) {
		start := time.Now()
		a := h.feed(feedQuery(cur, "0.2"))
		if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
			t.Fatalf("a poll of 0.2 s answered after %v", d)
		}
		if a.Reset || len(a.Entries) != 0 || a.Cursor != cur {
			t.Fatalf("empty poll: %s", a.raw)
		}
	})

	t.Run("answers as soon as a revocation happens", func(t *testing.T) {
		type result struct {
			a   *feedAnswer
			err error
			at  time.Time
		}
		got := make(chan result, 1)
		start := time.Now()
		go func() {
			a, err := h.pollFeed(feedQuery(cur, "30"))
			got <- result{a, err, time.Now()}
		}()
		// Revoke a while after the poll began, so that it is waiting.
		later := time.NewTimer(200 * time.Millisecond)
		<-later.C
		h.revoke(p.access)
		revokedAt := time.Now()
		bound := time.NewTimer(5 * time.Second)
		defer bound.Stop()
		select {
		case r := <-got:
			if r.err != nil || r.a.status != 200 {
				t.Fatalf("long poll: %v %+v", r.err, r.a)
			}
			if len(r.a.Entries) != 1 || r.a.Entries[0].ID != jwtClaim(t, p.access, "jti") {
				t.Fatalf("long poll answer %s", r.a.raw)
			}
			if r.at.Sub(start) < 200*time.Millisecond {
				t.Fatalf("the poll answered after %v, before the revocation", r.at.Sub(start))
			}
			t.Logf("long poll answered %v from the revocation's response (negative: before it)", r.at.Sub(revokedAt))
		case <-bound.C:
			t.Fatal("the long poll did not answer within 5 s of a revocation")
		}
	})

	t.Run("answers when the server shuts down", func(t *testing.T) {
		cur := h.feed("wait=0").Cursor
		got := make(chan *feedAnswer, 1)
		go func() {
			a, err := h.pollFeed(feedQuery(cur, "60"))
			if err != nil {
				a = &feedAnswer{raw: []byte(err.Error())}
			}
			got <- a
		}()
		h.api.SetShuttingDown()
		bound := time.NewTimer(5 * time.Second)
		defer bound.Stop()
		select {
		case a := <-got:
			if a.status != 200 || len(a.Entries) != 0 || a.Cursor != cur {
				t.Fatalf("poll during shutdown: %d %s", a.status, a.raw)
			}
		case <-bound.C:
			t.Fatal("a waiting poll did not answer within 5 s of shutdown")
		}
	})
}
