package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/httpapi"
)

// labClient drives the lab's JSON API as lab.js does, and keeps every
// answer for the masking check.
type labClient struct {
	t       *testing.T
	b       *browser
	answers []string
}

func (e *env) labClient() *labClient {
	b := e.browser()
	b.headers["Sec-Fetch-Site"] = "same-origin"
	return &labClient{t: e.t, b: b}
}

// labRecord is the part of a record the tests read.
type labRecord struct {
	ID        int    `json:"id"`
	Summary   string `json:"summary"`
	OK        bool   `json:"ok"`
	Exchanges []struct {
		Purpose  string `json:"purpose"`
		Response struct {
			Status  int `json:"status"`
			Headers []struct {
				Name, Value string
			} `json:"headers"`
		} `json:"response"`
		Bytes wireSize `json:"bytes"`
	} `json:"exchanges"`
	Tokens []struct {
		Pane             string   `json:"pane"`
		Gatehouse        *verdict `json:"gatehouse"`
		JWKSOnly         verdict  `json:"jwks_only"`
		RemainingSeconds float64  `json:"remaining_seconds"`
		Header           map[string]any
		Claims           map[string]any
	} `json:"tokens"`
	Store *struct {
		Added   []diffItem   `json:"added"`
		Removed []diffItem   `json:"removed"`
		Changed []diffChange `json:"changed"`
	} `json:"store"`
	Notes []string `json:"notes"`
}

type labAction struct {
	Record labRecord `json:"record"`
	State  struct {
		User *userState `json:"user"`
		// Panes, Observation and Measurement are read as raw JSON.
		Panes       []paneState     `json:"panes"`
		Observation *observation    `json:"observation"`
		Measurement json.RawMessage `json:"measurement"`
	} `json:"state"`
	Error string `json:"error"`
}

func (c *labClient) post(path string, body string) (int, labAction) {
	c.t.Helper()
	p := c.b.raw(http.MethodPost, path, "application/json", body, nil)
	c.answers = append(c.answers, p.body)
	var out labAction
	if err := json.Unmarshal([]byte(p.body), &out); err != nil {
		c.t.Fatalf("%s: %d, not JSON: %v\n%s", path, p.status, err, p.body)
	}
	return p.status, out
}

// action posts and requires a record.
func (c *labClient) action(path string, body string) labRecord {
	c.t.Helper()
	st, out := c.post(path, body)
	if st != http.StatusOK {
		c.t.Fatalf("%s: %d %s", path, st, out.Error)
	}
	return out.Record
}

func (c *labClient) get(path string) string {
	c.t.Helper()
	p := c.b.get(path)
	c.answers = append(c.answers, p.body)
	if p.status != http.StatusOK {
		c.t.Fatalf("%s: %d %s", path, p.status, p.body)
	}
	return p.body
}

func tokenOf(t *testing.T, rec labRecord, pane string) (g *verdict, j verdict, remaining float64) {
	t.Helper()
	for _, tv := range rec.Tokens {
		if tv.Pane == pane {
			return tv.Gatehouse, tv.JWKSOnly, tv.RemainingSeconds
		}
	}
	t.Fatalf("record has no token of the %s pane: %+v", pane, rec)
	return nil, verdict{}, 0
}

func lastStatus(t *testing.T, rec labRecord) int {
	t.Helper()
	if len(rec.Exchanges) == 0 {
		t.Fatalf("record without exchanges: %+v", rec)
	}
	return rec.Exchanges[len(rec.Exchanges)-1].Response.Status
}

// checkMasked fails when any lab answer holds a secret whole: anything the
// API handed out, the demo password, the admin key.
func checkMasked(t *testing.T, e *env, answers []string) {
	t.Helper()
	secrets := append(e.secrets.all(), testAdminKey)
	e.web.lab.mu.Lock()
	for _, v := range e.web.lab.visitors {
		if v.user != nil {
			secrets = append(secrets, v.user.Password)
		}
	}
	e.web.lab.mu.Unlock()
	if len(secrets) < 8 {
		t.Fatalf("only %d secrets collected: the check would prove nothing", len(secrets))
	}
	for _, a := range answers {
		for _, s := range secrets {
			if strings.Contains(a, s) {
				t.Fatalf("a lab answer holds the secret %s whole", mask(s))
			}
		}
	}
	if n := e.web.lab.caught.Load(); n != 0 {
		t.Fatalf("the last-resort filter had to mask %d secrets: the records leak", n)
	}
}

func TestLabForcedLogout(t *testing.T) {
	e := newEnv(t)
	c := e.labClient()
	c.get("/lab")
	setup := c.action("/lab/api/setup", "{}")
	if !setup.OK || !strings.Contains(setup.Summary, "demo user") {
		t.Fatalf("setup: %+v", setup)
	}
	for _, m := range paneModes {
		rec := c.action("/lab/api/panes/"+m+"/login", "{}")
		if !rec.OK {
			t.Fatalf("%s login: %+v", m, rec)
		}
		if rec.Store == nil || len(rec.Store.Added) == 0 {
			t.Fatalf("%s login stored nothing: %+v", m, rec.Store)
		}
		if rec := c.action("/lab/api/panes/"+m+"/me", "{}"); !rec.OK || lastStatus(t, rec) != http.StatusOK {
			t.Fatalf("%s /v1/me: %+v", m, rec)
		}
	}

	st, out := c.post("/lab/api/force-logout", "{}")
	if st != http.StatusOK || !out.Record.OK {
		t.Fatalf("forced logout: %d %+v", st, out)
	}
	if out.Record.Exchanges[0].Response.Status != http.StatusNoContent {
		t.Fatalf("admin exchange: %+v", out.Record.Exchanges[0])
	}
	o := out.State.Observation
	if o == nil || len(o.Panes) != 3 {
		t.Fatalf("observation: %+v", o)
	}
	for _, p := range o.Panes {
		if p.GatehouseAccepted {
			t.Fatalf("%s pane still accepted by Gatehouse after the forced logout", p.Mode)
		}
		if p.Mode != modeSession && (!p.JWKSOnlyAccepted || p.RemainingSeconds <= 0) {
			t.Fatalf("%s pane: the JWKS-only verifier should still accept its token: %+v", p.Mode, p)
		}
	}
	removed := map[string]int{}
	for _, it := range out.Record.Store.Removed {
		removed[it.Table]++
	}
	if removed["sessions"] != 1 {
		t.Fatalf("forced logout should delete the session: %+v", out.Record.Store)
	}
	var revokedFamilies, revocations int
	for _, ch := range out.Record.Store.Changed {
		for _, f := range ch.Fields {
			if ch.Table == "refresh_families" && f.Field == "revoked_at" {
				revokedFamilies++
			}
		}
	}
	for _, it := range out.Record.Store.Added {
		if it.Table == "revocations" {
			revocations++
		}
	}
	if revokedFamilies != 2 || revocations < 3 {
		t.Fatalf("forced logout: %d families revoked, %d revocation entries added: %+v", revokedFamilies, revocations, out.Record.Store)
	}

	// At once: the session pane is refused.
	rec := c.action("/lab/api/panes/session/me", "{}")
	if rec.OK || lastStatus(t, rec) != http.StatusUnauthorized {
		t.Fatalf("session pane after forced logout: %+v", rec)
	}
	// The token pane: refused by Gatehouse, accepted by a JWKS-only
	// verifier, which has time left.
	for _, m := range []string{modeToken, modeHybrid} {
		rec = c.action("/lab/api/panes/"+m+"/me", "{}")
		if lastStatus(t, rec) != http.StatusUnauthorized {
			t.Fatalf("%s pane after forced logout: %+v", m, rec)
		}
		g, j, left := tokenOf(t, rec, m)
		if g == nil || g.Accepted || !j.Accepted || left <= 0 || left > 600 {
			t.Fatalf("%s pane verdicts: gatehouse %+v, JWKS-only %+v, %v s left", m, g, j, left)
		}
	}

	// Past exp, the JWKS-only verifier refuses too.
	if st, out := c.post("/lab/api/advance", `{"seconds":42}`); st != http.StatusBadRequest {
		t.Fatalf("advance by an amount not offered: %d %+v", st, out)
	}
	before := e.clock.Now()
	rec = c.action("/lab/api/advance", `{"seconds":3600}`)
	if d := e.clock.Now().Sub(before); d < time.Hour {
		t.Fatalf("the lab clock moved %v", d)
	}
	if _, j, left := tokenOf(t, rec, modeToken); j.Accepted || left >= 0 {
		t.Fatalf("token pane after exp: JWKS-only %+v, %v s left", j, left)
	}
	rec = c.action("/lab/api/panes/token/me", "{}")
	if g, j, _ := tokenOf(t, rec, modeToken); g.Accepted || j.Accepted || !strings.Contains(j.Detail, "expired") {
		t.Fatalf("token pane after exp: %+v %+v", g, j)
	}

	body := c.get("/lab/api/state")
	if !strings.Contains(body, `"timeline"`) {
		t.Fatalf("state: %s", body)
	}
	c.get("/lab/api/records/1")
	checkMasked(t, e, c.answers)
}

func TestLabTokenLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.labClient()
	c.action("/lab/api/setup", "{}")

	// Token pane: rotation, and the logout's two revocations.
	first := c.action("/lab/api/panes/token/login", "{}")
	oldKid := first.Tokens[0].Header["kid"]
	rec := c.action("/lab/api/panes/token/refresh", "{}")
	if !rec.OK || lastStatus(t, rec) != http.StatusOK {
		t.Fatalf("refresh: %+v", rec)
	}
	rec = c.action("/lab/api/panes/token/logout", "{}")
	if !rec.OK || len(rec.Exchanges) != 3 {
		t.Fatalf("token logout: %+v", rec)
	}
	g, j, _ := tokenOf(t, rec, modeToken)
	if g.Accepted || !j.Accepted {
		t.Fatalf("a copy of the logged-out token: gatehouse %+v, JWKS-only %+v", g, j)
	}
	kinds := map[string]bool{}
	for _, it := range rec.Store.Added {
		if it.Table == "revocations" {
			kinds[strings.SplitN(it.Key, ":", 2)[0]] = true
		}
	}
	if !kinds["token"] || !kinds["sid"] {
		t.Fatalf("token logout should add a jti and a sid revocation: %+v", rec.Store)
	}
	if st, out := c.post("/lab/api/panes/token/refresh", "{}"); st != http.StatusConflict || out.Error == "" {
		t.Fatalf("refresh with no token: %d %+v", st, out)
	}

	// Hybrid pane: cookies, CSRF-protected refresh and logout.
	c.action("/lab/api/panes/hybrid/login", "{}")
	rec = c.action("/lab/api/panes/hybrid/refresh", "{}")
	if !rec.OK {
		t.Fatalf("hybrid refresh: %+v", rec)
	}
	if rec.Exchanges[0].Bytes.CredentialHeader != "Cookie" {
		t.Fatalf("hybrid refresh sent no cookie: %+v", rec.Exchanges[0].Bytes)
	}
	rec = c.action("/lab/api/panes/hybrid/logout", "{}")
	if !rec.OK || lastStatus(t, rec) != http.StatusUnauthorized {
		t.Fatalf("hybrid logout: %+v", rec)
	}

	// Session pane: no refresh; logout deletes the session.
	c.action("/lab/api/panes/session/login", "{}")
	if st, _ := c.post("/lab/api/panes/session/refresh", "{}"); st != http.StatusConflict {
		t.Fatalf("session refresh: %d", st)
	}
	rec = c.action("/lab/api/panes/session/logout", "{}")
	if !rec.OK || len(rec.Store.Removed) != 1 || rec.Store.Removed[0].Table != "sessions" {
		t.Fatalf("session logout: %+v", rec)
	}

	// Key rotation: a second key in the JWKS, and new tokens carry it.
	rec = c.action("/lab/api/rotate-keys", "{}")
	if !rec.OK || !strings.Contains(rec.Summary, "the JWKS lists 2 keys") {
		t.Fatalf("rotate: %+v", rec)
	}
	rec = c.action("/lab/api/panes/token/login", "{}")
	if kid := rec.Tokens[0].Header["kid"]; kid == nil || kid == oldKid {
		t.Fatalf("after the rotation, the token's kid is %v (before: %v)", kid, oldKid)
	}

	for _, bad := range []string{"/lab/api/panes/nope/login", "/lab/api/panes/token/nope"} {
		if st, _ := c.post(bad, "{}"); st != http.StatusNotFound {
			t.Fatalf("%s: %d", bad, st)
		}
	}
	checkMasked(t, e, c.answers)
}

func TestLabMeasureAndCompare(t *testing.T) {
	bench := map[string]any{"runs": []any{map[string]any{"mode": "session", "p99_ms": 1.5}}, "host": "test"}
	e := newEnv(t, func(_ *httpapi.Config, w *Config) { w.Lab.LatestBench = func() any { return bench } })
	c := e.labClient()

	page := c.get("/lab/compare")
	if !strings.Contains(page, "No measurement yet") || !strings.Contains(page, "runs[0].p99_ms") {
		t.Fatalf("compare page before measuring:\n%s", page)
	}
	rec := c.action("/lab/api/measure", "{}")
	if !rec.OK {
		t.Fatalf("measure: %+v", rec)
	}
	_, out := c.post("/lab/api/probe", "{}")
	var m measurement
	if err := json.Unmarshal(out.State.Measurement, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Rows) != 3 || m.Calls != measureCalls {
		t.Fatalf("measurement: %+v", m)
	}
	byMode := map[string]measureRow{}
	for _, r := range m.Rows {
		byMode[r.Mode] = r
		if r.Accepted != measureCalls || r.GatehouseMicros <= 0 || r.Status != http.StatusOK {
			t.Fatalf("%s: %+v", r.Mode, r)
		}
	}
	s, tk, hy := byMode[modeSession], byMode[modeToken], byMode[modeHybrid]
	if s.CredentialHeader != "Cookie" || tk.CredentialHeader != "Authorization" || hy.CredentialHeader != "Cookie" {
		t.Fatalf("credential headers: %+v", m.Rows)
	}
	if s.HasJWKSOnly || !tk.HasJWKSOnly || !hy.HasJWKSOnly || tk.JWKSOnlyMicros <= 0 {
		t.Fatalf("JWKS-only figures: %+v", m.Rows)
	}
	// A JWT is several times the size of a session secret.
	if tk.CredentialBytes < 3*s.CredentialBytes || hy.CredentialBytes < 3*s.CredentialBytes {
		t.Fatalf("credential bytes: session %d, token %d, hybrid %d", s.CredentialBytes, tk.CredentialBytes, hy.CredentialBytes)
	}

	page = c.get("/lab/compare")
	for _, want := range []string{"Live measurements", "Authorization", "200/200", "not observed yet"} {
		if !strings.Contains(page, want) {
			t.Fatalf("compare page lacks %q:\n%s", want, page)
		}
	}
	c.action("/lab/api/force-logout", "{}")
	page = c.get("/lab/compare?decide=1&domains=no&services=no&instant=yes&browser=yes")
	if !strings.Contains(page, "Session mode: a session cookie") || !strings.Contains(page, "refused right after the forced logout") {
		t.Fatalf("decision:\n%s", page)
	}
	if !strings.Contains(page, "JWKS-only: accepted for") {
		t.Fatalf("the table does not show the observed forced logout:\n%s", page)
	}
	if page := c.get("/lab/compare?decide=1&domains=yes"); !strings.Contains(page, "Answer the four questions") {
		t.Fatal("a partial answer gave a recommendation")
	}

	// The no-JavaScript measurement: a form post, then the table.
	p := c.b.post("/lab/compare")
	if p.status != http.StatusOK || p.url != "/lab/compare" || !strings.Contains(p.body, "Measure again") {
		t.Fatalf("measure form: %d %s", p.status, p.url)
	}
	c.answers = append(c.answers, p.body)
	checkMasked(t, e, c.answers)
}

func TestDecide(t *testing.T) {
	m := &measurement{Calls: 200, Rows: []measureRow{
		{Mode: modeSession, CredentialBytes: 63, GatehouseMicros: 12},
		{Mode: modeToken, CredentialBytes: 420, GatehouseMicros: 9, HasJWKSOnly: true, JWKSOnlyMicros: 1.5},
		{Mode: modeHybrid, CredentialBytes: 410, GatehouseMicros: 9, HasJWKSOnly: true, JWKSOnlyMicros: 1.5},
	}}
	o := &observation{Panes: []observedPane{{Mode: modeSession}, {Mode: modeToken, HasToken: true, JWKSOnlyAccepted: true, RemainingSeconds: 580}}}
	cases := []struct {
		name                               string
		domains, services, instant, browse bool
		want                               string
		mention                            string
	}{
		{"one site, one server", false, false, false, true, modeSession, "63 bytes"},
		{"one site, instant logout, several services", false, true, true, true, modeSession, "share the session store"},
		{"one site, several services, logout may wait", false, true, false, true, modeHybrid, "9m40s"},
		{"mobile apps", false, false, false, false, modeToken, "1.5 µs"},
		{"several domains, instant logout", true, true, true, true, modeToken, "verify through Gatehouse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(map[string]bool{"domains": tc.domains, "services": tc.services, "instant": tc.instant, "browser": tc.browse}, m, o)
			if d.Mode != tc.want {
				t.Fatalf("mode %s, want %s", d.Mode, tc.want)
			}
			if !strings.Contains(strings.Join(d.Reasons, " "), tc.mention) {
				t.Fatalf("reasons do not mention %q: %v", tc.mention, d.Reasons)
			}
		})
	}
	if d := decide(map[string]bool{"browser": true}, nil, nil); d.Mode != modeSession || len(d.Reasons) == 0 {
		t.Fatalf("without measurements: %+v", d)
	}
}

func TestLabRefusesCrossOriginAndOtherBodies(t *testing.T) {
	e := newEnv(t)
	c := e.labClient()
	cases := []struct {
		name    string
		ct      string
		headers map[string]string
		status  int
	}{
		{"cross-site fetch", "application/json", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"old browser, other origin", "application/json", map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"a form post", "application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		{"text/plain (a simple request)", "text/plain", nil, http.StatusUnsupportedMediaType},
		{"same-origin JSON", "application/json", nil, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.clock.Now()
			p := c.b.raw(http.MethodPost, "/lab/api/advance", tc.ct, `{"seconds":60}`, tc.headers)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d: %s", p.status, tc.status, p.body)
			}
			moved := e.clock.Now().Sub(before) >= time.Minute
			if moved != (tc.status == http.StatusOK) {
				t.Fatalf("clock moved: %v", moved)
			}
		})
	}
	if p := c.b.raw(http.MethodPost, "/lab/compare", "application/x-www-form-urlencoded", "", map[string]string{"Sec-Fetch-Site": "cross-site"}); p.status != http.StatusForbidden {
		t.Fatalf("cross-site measure form: %d", p.status)
	}
	if p := c.b.raw(http.MethodPost, "/lab/api/setup", "application/json", `{"username":"x"}`, nil); p.status != http.StatusBadRequest {
		t.Fatalf("setup with a username alone: %d", p.status)
	}
	if p := c.b.raw(http.MethodPost, "/lab/api/setup", "application/json", `{"user":"x"}`, nil); p.status != http.StatusBadRequest {
		t.Fatalf("setup with an unknown field: %d", p.status)
	}
	if p := c.b.raw(http.MethodPost, "/lab/api/force-logout", "application/json", `{}`, nil); p.status != http.StatusConflict {
		t.Fatalf("forced logout before any login: %d", p.status)
	}
}

func TestLabVisitorsAreBoundedAndSeparate(t *testing.T) {
	e := newEnv(t)
	a, b := e.labClient(), e.labClient()
	a.action("/lab/api/setup", "{}")
	a.action("/lab/api/panes/session/login", "{}")
	var st labAction
	_ = json.Unmarshal([]byte(b.get("/lab/api/state")), &st.State)
	if st.State.User != nil {
		t.Fatal("a second visitor sees the first one's user")
	}
	for range maxVisitors + 5 {
		e.labClient().get("/lab/api/state")
	}
	e.web.lab.mu.Lock()
	n := len(e.web.lab.visitors)
	e.web.lab.mu.Unlock()
	if n > maxVisitors {
		t.Fatalf("%d visitors kept, bound %d", n, maxVisitors)
	}
	// The oldest visitor was forgotten: its cookie now starts afresh.
	_ = json.Unmarshal([]byte(a.get("/lab/api/state")), &st.State)
	if st.State.User != nil {
		t.Fatal("the evicted visitor kept its state")
	}
}
