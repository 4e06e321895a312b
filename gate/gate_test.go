package gate_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/gate"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/token"
)

const (
	challengeBearer  = "Bearer"
	challengeInvalid = `Bearer error="invalid_token"`
	challengeRequest = `Bearer error="invalid_request"`
)

func bearer(raw string) [2]string     { return [2]string{"Authorization", "Bearer " + raw} }
func csrfHeader(tok string) [2]string { return [2]string{"X-CSRF-Token", tok} }
func fetchSite(v string) [2]string    { return [2]string{"Sec-Fetch-Site", v} }

// gateServer serves routes behind g on an http.ServeMux over real HTTP.
func gateServer(t testing.TB, g *gate.Gate) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/any", g.RequireAny(echo))
	mux.Handle("/session", g.RequireSession(echo))
	mux.Handle("/token", g.RequireToken(echo))
	mux.Handle("/admin", g.RequireAny(g.RequireRole("admin")(echo)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newGate(t testing.TB, cfg gate.Config) *gate.Gate {
	t.Helper()
	g, err := gate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// decision is one allow/deny case: either mode (allowed, as that user) or
// a refusal (status, class, challenge).
type decision struct {
	name      string
	rq        request
	status    int
	class     string
	challenge string
	mode      string
	userID    string
}

func runDecisions(t *testing.T, srv *httptest.Server, cases []decision) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, srv, c.rq)
			if c.mode != "" {
				if r.status != http.StatusOK {
					t.Fatalf("status %d, want 200: %s", r.status, r.raw)
				}
				if c.rq.method == http.MethodHead {
					return
				}
				if r.body["mode"] != c.mode || r.body["user_id"] != c.userID {
					t.Fatalf("principal %s, want mode %s user %s", r.raw, c.mode, c.userID)
				}
				return
			}
			checkProblem(t, r, c.status, c.class, c.challenge)
		})
	}
}

func TestDecisions(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice := d.user(t, "alice")
	bob := d.user(t, "bob")
	root := d.user(t, "root", "admin")

	as := d.login(t, alice)
	bs := d.login(t, bob)
	rs := d.login(t, root)
	ended := d.login(t, alice)
	if err := d.sessions.Delete(ctx, ended.secret); err != nil {
		t.Fatal(err)
	}

	at := d.token(t, alice.ID, "fam-alice")
	bt := d.token(t, bob.ID, "fam-bob")
	rt := d.token(t, root.ID, "fam-root")
	denied := d.token(t, alice.ID, "fam-alice")
	if err := d.revs.DenyToken(ctx, denied.claims.JTI, denied.claims.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	familyEnded := d.token(t, alice.ID, "fam-ended")
	if err := d.revs.RevokeSID(ctx, "fam-ended", d.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ghost := d.token(t, "no-such-user", "fam-ghost")
	// A token signed by a key this deployment does not trust.
	otherRing, err := keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{KEK: bytes.Repeat([]byte{8}, keys.KEKSize), Clock: d.clock})
	if err != nil {
		t.Fatal(err)
	}
	otherIssuer, err := token.NewIssuer(otherRing, token.IssuerConfig{Issuer: testIssuer, Audience: testIssuer, Clock: d.clock})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := otherIssuer.Issue(ctx, alice.ID, "fam-alice", nil, "")
	if err != nil {
		t.Fatal(err)
	}

	srv := gateServer(t, newGate(t, d.config()))
	sess := func(l login) string { return "gh_session=" + l.cookie }
	hyb := func(a access) string { return "gh_access=" + a.raw }
	unknownSecret := strings.Repeat("A", 43)

	runDecisions(t, srv, []decision{
		// Which credential.
		{name: "no credential", rq: request{path: "/any"}, status: 401, class: "unauthorized", challenge: challengeBearer},
		{name: "unrelated cookie only", rq: request{path: "/any", cookie: "theme=dark"}, status: 401, class: "unauthorized", challenge: challengeBearer},
		{name: "secure cookie name on a dev gate is not ours", rq: request{path: "/any", cookie: "__Host-gh_session=" + as.cookie}, status: 401, class: "unauthorized", challenge: challengeBearer},
		{name: "session cookie", rq: request{path: "/any", cookie: sess(as)}, mode: gate.ModeSession, userID: alice.ID},
		{name: "session cookie among others", rq: request{path: "/any", cookie: "a=1; " + sess(as) + "; b=2"}, mode: gate.ModeSession, userID: alice.ID},
		{name: "bearer token", rq: request{path: "/any", headers: [][2]string{bearer(at.raw)}}, mode: gate.ModeToken, userID: alice.ID},
		{name: "bearer scheme in lower case", rq: request{path: "/any", headers: [][2]string{{"Authorization", "bearer " + at.raw}}}, mode: gate.ModeToken, userID: alice.ID},
		{name: "hybrid access cookie", rq: request{path: "/any", cookie: hyb(at)}, mode: gate.ModeCookieToken, userID: alice.ID},
		{name: "refresh cookie does not count", rq: request{path: "/any", cookie: "gh_refresh=whatever", headers: [][2]string{bearer(at.raw)}}, mode: gate.ModeToken, userID: alice.ID},
		{name: "HEAD with session cookie", rq: request{method: "HEAD", path: "/any", cookie: sess(as)}, mode: gate.ModeSession, userID: alice.ID},

		// One credential per request.
		{name: "session cookie and bearer", rq: request{path: "/any", cookie: sess(as), headers: [][2]string{bearer(at.raw)}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "session and access cookies", rq: request{path: "/any", cookie: sess(as) + "; " + hyb(at)}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "access cookie and bearer", rq: request{path: "/any", cookie: hyb(at), headers: [][2]string{bearer(at.raw)}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "session cookie twice", rq: request{path: "/any", cookie: sess(as) + "; " + sess(bs)}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "same session cookie twice", rq: request{path: "/any", cookie: sess(as) + "; " + sess(as)}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "access cookie twice", rq: request{path: "/any", cookie: hyb(at) + "; " + hyb(bt)}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "case-variant session cookie", rq: request{path: "/any", cookie: "GH_Session=" + as.cookie}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "case-variant cookie next to the real one", rq: request{path: "/any", cookie: sess(as) + "; gh_SESSION=" + bs.cookie}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "case-variant access cookie", rq: request{path: "/any", cookie: "GH_ACCESS=" + at.raw}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "two Authorization headers", rq: request{path: "/any", headers: [][2]string{bearer(at.raw), bearer(bt.raw)}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "basic authorization", rq: request{path: "/any", headers: [][2]string{{"Authorization", "Basic YWxpY2U6cHc="}}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "bearer without token", rq: request{path: "/any", headers: [][2]string{{"Authorization", "Bearer "}}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "bearer with two spaces", rq: request{path: "/any", headers: [][2]string{{"Authorization", "Bearer  " + at.raw}}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "bearer with a forbidden character", rq: request{path: "/any", headers: [][2]string{{"Authorization", "Bearer " + at.raw + ","}}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "bearer over 8 KiB", rq: request{path: "/any", headers: [][2]string{bearer(strings.Repeat("a", 8<<10+1))}}, status: 400, class: "invalid_request", challenge: challengeRequest},

		// Bad credentials.
		{name: "malformed session cookie", rq: request{path: "/any", cookie: "gh_session=short"}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "empty session cookie", rq: request{path: "/any", cookie: "gh_session="}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "unknown session secret", rq: request{path: "/any", cookie: "gh_session=" + unknownSecret}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "logged-out session", rq: request{path: "/any", cookie: sess(ended)}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "garbage bearer", rq: request{path: "/any", headers: [][2]string{bearer("abc")}}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "denylisted token", rq: request{path: "/any", headers: [][2]string{bearer(denied.raw)}}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "token of a revoked family", rq: request{path: "/any", headers: [][2]string{bearer(familyEnded.raw)}}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "token of a revoked family in the cookie", rq: request{path: "/any", cookie: hyb(familyEnded)}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "token of an unknown user", rq: request{path: "/any", headers: [][2]string{bearer(ghost.raw)}}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "token signed by an untrusted key", rq: request{path: "/any", headers: [][2]string{bearer(foreign)}}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "garbage access cookie", rq: request{path: "/any", cookie: "gh_access=abc"}, status: 401, class: "unauthorized", challenge: challengeInvalid},

		// Kinds a route accepts: another kind is checked all the same (401
		// when bad), then refused with 403 when good.
		{name: "session route, session cookie", rq: request{path: "/session", cookie: sess(as)}, mode: gate.ModeSession, userID: alice.ID},
		{name: "session route, bearer", rq: request{path: "/session", headers: [][2]string{bearer(at.raw)}}, status: 403, class: "forbidden"},
		{name: "session route, revoked bearer", rq: request{path: "/session", headers: [][2]string{bearer(denied.raw)}}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "session route, access cookie", rq: request{path: "/session", cookie: hyb(at)}, status: 403, class: "forbidden"},
		{name: "session route, access cookie POST without CSRF token", rq: request{method: "POST", path: "/session", cookie: hyb(at)}, status: 403, class: "csrf"},
		{name: "session route, two credentials", rq: request{path: "/session", cookie: sess(as), headers: [][2]string{bearer(at.raw)}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "session route, no credential", rq: request{path: "/session"}, status: 401, class: "unauthorized", challenge: challengeBearer},
		{name: "token route, bearer", rq: request{path: "/token", headers: [][2]string{bearer(at.raw)}}, mode: gate.ModeToken, userID: alice.ID},
		{name: "token route, access cookie", rq: request{path: "/token", cookie: hyb(at)}, mode: gate.ModeCookieToken, userID: alice.ID},
		{name: "token route, session cookie", rq: request{path: "/token", cookie: sess(as)}, status: 403, class: "forbidden"},
		{name: "token route, logged-out session cookie", rq: request{path: "/token", cookie: sess(ended)}, status: 401, class: "unauthorized", challenge: challengeInvalid},
		{name: "token route, no credential", rq: request{path: "/token"}, status: 401, class: "unauthorized", challenge: challengeBearer},

		// CSRF: session cookie.
		{name: "session POST without CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as)}, status: 403, class: "csrf"},
		{name: "session PUT without CSRF token", rq: request{method: "PUT", path: "/any", cookie: sess(as)}, status: 403, class: "csrf"},
		{name: "session PATCH without CSRF token", rq: request{method: "PATCH", path: "/any", cookie: sess(as)}, status: 403, class: "csrf"},
		{name: "session DELETE without CSRF token", rq: request{method: "DELETE", path: "/any", cookie: sess(as)}, status: 403, class: "csrf"},
		{name: "session POST with its CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(as.csrf)}}, mode: gate.ModeSession, userID: alice.ID},
		{name: "session DELETE with its CSRF token", rq: request{method: "DELETE", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(as.csrf)}}, mode: gate.ModeSession, userID: alice.ID},
		{name: "session POST with another session's CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(bs.csrf)}}, status: 403, class: "csrf"},
		{name: "session POST with a hybrid CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(d.hybridCSRF(as.id))}}, status: 403, class: "csrf"},
		{name: "session POST with a truncated CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(as.csrf[:42])}}, status: 403, class: "csrf"},
		{name: "session POST cross-site with its CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(as.csrf), fetchSite("cross-site")}}, status: 403, class: "csrf"},
		{name: "session POST same-site with its CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(as.csrf), fetchSite("same-site")}}, status: 403, class: "csrf"},
		{name: "session POST same-origin with its CSRF token", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(as.csrf), fetchSite("same-origin")}}, mode: gate.ModeSession, userID: alice.ID},
		{name: "session POST from a foreign Origin", rq: request{method: "POST", path: "/any", cookie: sess(as), headers: [][2]string{csrfHeader(as.csrf), {"Origin", "https://evil.example"}}}, status: 403, class: "csrf"},
		{name: "session POST cross-site with a bad cookie", rq: request{method: "POST", path: "/any", cookie: "gh_session=" + unknownSecret, headers: [][2]string{fetchSite("cross-site")}}, status: 403, class: "csrf"},
		{name: "session GET cross-site", rq: request{path: "/any", cookie: sess(as), headers: [][2]string{fetchSite("cross-site")}}, mode: gate.ModeSession, userID: alice.ID},
		{name: "unknown session POST without CSRF token", rq: request{method: "POST", path: "/any", cookie: "gh_session=" + unknownSecret}, status: 401, class: "unauthorized", challenge: challengeInvalid},

		// CSRF: hybrid cookie.
		{name: "hybrid POST without CSRF token", rq: request{method: "POST", path: "/any", cookie: hyb(at)}, status: 403, class: "csrf"},
		{name: "hybrid POST with its family's CSRF token", rq: request{method: "POST", path: "/any", cookie: hyb(at), headers: [][2]string{csrfHeader(d.hybridCSRF("fam-alice"))}}, mode: gate.ModeCookieToken, userID: alice.ID},
		{name: "hybrid POST with another family's CSRF token", rq: request{method: "POST", path: "/any", cookie: hyb(at), headers: [][2]string{csrfHeader(d.hybridCSRF("fam-bob"))}}, status: 403, class: "csrf"},
		{name: "hybrid POST with a session's CSRF token", rq: request{method: "POST", path: "/any", cookie: hyb(at), headers: [][2]string{csrfHeader(as.csrf)}}, status: 403, class: "csrf"},
		{name: "hybrid POST cross-site with its CSRF token", rq: request{method: "POST", path: "/any", cookie: hyb(at), headers: [][2]string{csrfHeader(d.hybridCSRF("fam-alice")), fetchSite("cross-site")}}, status: 403, class: "csrf"},

		// Bearer tokens need no CSRF token and are not cross-origin checked.
		{name: "bearer POST without CSRF token", rq: request{method: "POST", path: "/any", headers: [][2]string{bearer(at.raw)}}, mode: gate.ModeToken, userID: alice.ID},
		{name: "bearer POST cross-site", rq: request{method: "POST", path: "/any", headers: [][2]string{bearer(at.raw), fetchSite("cross-site")}}, mode: gate.ModeToken, userID: alice.ID},

		// Roles.
		{name: "admin route, admin by session", rq: request{path: "/admin", cookie: sess(rs)}, mode: gate.ModeSession, userID: root.ID},
		{name: "admin route, admin by bearer", rq: request{path: "/admin", headers: [][2]string{bearer(rt.raw)}}, mode: gate.ModeToken, userID: root.ID},
		{name: "admin route, user without the role", rq: request{path: "/admin", cookie: sess(as)}, status: 403, class: "forbidden"},
		{name: "admin route, user without the role by bearer", rq: request{path: "/admin", headers: [][2]string{bearer(at.raw)}}, status: 403, class: "forbidden"},
		{name: "admin route, no credential", rq: request{path: "/admin"}, status: 401, class: "unauthorized", challenge: challengeBearer},
		{name: "admin route, admin POST without CSRF token", rq: request{method: "POST", path: "/admin", cookie: sess(rs)}, status: 403, class: "csrf"},
	})
}

// TestSecureCookieNames: outside dev mode only the __Host- names are ours.
func TestSecureCookieNames(t *testing.T) {
	d := newDomain(t)
	alice := d.user(t, "alice")
	s := d.login(t, alice)
	at := d.token(t, alice.ID, "fam-1")
	cfg := d.config()
	cfg.Dev = false
	srv := gateServer(t, newGate(t, cfg))
	runDecisions(t, srv, []decision{
		{name: "__Host- session cookie", rq: request{path: "/any", cookie: "__Host-gh_session=" + s.cookie}, mode: gate.ModeSession, userID: alice.ID},
		{name: "__Host- access cookie", rq: request{path: "/any", cookie: "__Host-gh_access=" + at.raw}, mode: gate.ModeCookieToken, userID: alice.ID},
		{name: "dev session cookie name", rq: request{path: "/any", cookie: "gh_session=" + s.cookie}, status: 401, class: "unauthorized", challenge: challengeBearer},
		{name: "dev access cookie name", rq: request{path: "/any", cookie: "gh_access=" + at.raw}, status: 401, class: "unauthorized", challenge: challengeBearer},
		{name: "case-variant __host- name", rq: request{path: "/any", cookie: "__host-gh_session=" + s.cookie}, status: 400, class: "invalid_request", challenge: challengeRequest},
		{name: "__Host- session and access cookies", rq: request{path: "/any", cookie: "__Host-gh_session=" + s.cookie + "; __Host-gh_access=" + at.raw}, status: 400, class: "invalid_request", challenge: challengeRequest},
	})
}

// TestPartialConfigs: a gate accepts only the modes it is configured for,
// and still refuses ambiguity in the others.
func TestPartialConfigs(t *testing.T) {
	d := newDomain(t)
	alice := d.user(t, "alice")
	s := d.login(t, alice)
	at := d.token(t, alice.ID, "fam-1")

	t.Run("sessions only", func(t *testing.T) {
		g := newGate(t, gate.Config{Sessions: d.sessions, Users: d.accounts, Dev: true})
		mux := http.NewServeMux()
		mux.Handle("/any", g.RequireAny(echo))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		runDecisions(t, srv, []decision{
			{name: "session cookie", rq: request{path: "/any", cookie: "gh_session=" + s.cookie}, mode: gate.ModeSession, userID: alice.ID},
			{name: "bearer", rq: request{path: "/any", headers: [][2]string{bearer(at.raw)}}, status: 401, class: "unauthorized", challenge: challengeInvalid},
			{name: "access cookie", rq: request{path: "/any", cookie: "gh_access=" + at.raw}, status: 401, class: "unauthorized", challenge: challengeInvalid},
			{name: "session cookie and bearer", rq: request{path: "/any", cookie: "gh_session=" + s.cookie, headers: [][2]string{bearer(at.raw)}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		})
	})
	t.Run("tokens without hybrid mode", func(t *testing.T) {
		g := newGate(t, gate.Config{Users: d.accounts, Tokens: d.verifier, Dev: true})
		mux := http.NewServeMux()
		mux.Handle("/any", g.RequireAny(echo))
		mux.Handle("/token", g.RequireToken(echo))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		runDecisions(t, srv, []decision{
			{name: "bearer", rq: request{path: "/token", headers: [][2]string{bearer(at.raw)}}, mode: gate.ModeToken, userID: alice.ID},
			{name: "access cookie", rq: request{path: "/token", cookie: "gh_access=" + at.raw}, status: 401, class: "unauthorized", challenge: challengeInvalid},
			{name: "access cookie on any", rq: request{path: "/any", cookie: "gh_access=" + at.raw}, status: 401, class: "unauthorized", challenge: challengeInvalid},
			{name: "session cookie", rq: request{path: "/any", cookie: "gh_session=" + s.cookie}, status: 401, class: "unauthorized", challenge: challengeInvalid},
			{name: "access cookie and bearer", rq: request{path: "/token", cookie: "gh_access=" + at.raw, headers: [][2]string{bearer(at.raw)}}, status: 400, class: "invalid_request", challenge: challengeRequest},
		})
	})
}

// TestPlainChain: the middleware needs no router.
func TestPlainChain(t *testing.T) {
	d := newDomain(t)
	root := d.user(t, "root", "admin")
	alice := d.user(t, "alice")
	g := newGate(t, d.config())
	srv := httptest.NewServer(g.RequireAny(g.RequireRole("admin")(echo)))
	defer srv.Close()
	runDecisions(t, srv, []decision{
		{name: "admin", rq: request{path: "/anything/at/all", headers: [][2]string{bearer(d.token(t, root.ID, "f1").raw)}}, mode: gate.ModeToken, userID: root.ID},
		{name: "not admin", rq: request{path: "/", headers: [][2]string{bearer(d.token(t, alice.ID, "f2").raw)}}, status: 403, class: "forbidden"},
		{name: "nobody", rq: request{path: "/"}, status: 401, class: "unauthorized", challenge: challengeBearer},
	})
}

// TestPrincipal checks every field of the principal in each mode.
func TestPrincipal(t *testing.T) {
	d := newDomain(t)
	u := d.user(t, "Carol", "admin", "ops")
	s := d.login(t, u)
	at := d.token(t, u.ID, "fam-carol")
	srv := gateServer(t, newGate(t, d.config()))
	cases := []struct {
		name      string
		rq        request
		mode, sid string
		csrf      string
		claims    bool
	}{
		{"session", request{path: "/any", cookie: "gh_session=" + s.cookie}, gate.ModeSession, s.id, s.csrf, false},
		{"bearer", request{path: "/any", headers: [][2]string{bearer(at.raw)}}, gate.ModeToken, "fam-carol", "", true},
		{"hybrid cookie", request{path: "/any", cookie: "gh_access=" + at.raw}, gate.ModeCookieToken, "fam-carol", d.hybridCSRF("fam-carol"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, srv, c.rq)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			b := r.body
			roles, _ := b["roles"].([]any)
			if b["user_id"] != u.ID || b["username"] != "carol" || len(roles) != 2 || roles[0] != "admin" || roles[1] != "ops" ||
				b["mode"] != c.mode || b["session_id"] != c.sid || b["csrf_token"] != c.csrf || b["has_claims"] != c.claims {
				t.Fatalf("principal %s", r.raw)
			}
		})
	}
	t.Run("has role", func(t *testing.T) {
		p := &gate.Principal{Roles: []string{"admin", "ops"}}
		for role, want := range map[string]bool{"admin": true, "ops": true, "Admin": false, "": false, "op": false} {
			if p.HasRole(role) != want {
				t.Errorf("HasRole(%q) = %v", role, !want)
			}
		}
	})
	t.Run("log value", func(t *testing.T) {
		var buf bytes.Buffer
		p := &gate.Principal{UserID: "u1", Username: "carol", Mode: gate.ModeSession, SessionID: "s1", CSRFToken: "csrf-secret-value"}
		slog.New(slog.NewTextHandler(&buf, nil)).Info("request", "principal", p)
		if !strings.Contains(buf.String(), "principal.user_id=u1") || strings.Contains(buf.String(), "csrf-secret-value") {
			t.Fatalf("log line %q", buf.String())
		}
	})
	t.Run("no principal outside the gate", func(t *testing.T) {
		if p, ok := gate.PrincipalFrom(context.Background()); ok || p != nil {
			t.Fatal("a principal in a bare context")
		}
	})
}

// TestLiveState: changes in the stores take effect on the next request:
// logout, forced logout, roles, expiry.
func TestLiveState(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	srv := gateServer(t, newGate(t, d.config()))
	type step struct {
		name   string
		change func(t *testing.T, u string, s login, a access)
		path   string
		status int
	}
	cases := []struct {
		name string
		// cred builds the request from the session and the token.
		cred  func(s login, a access) request
		steps []step
	}{
		{
			name: "session idle timeout",
			cred: func(s login, a access) request { return request{cookie: "gh_session=" + s.cookie} },
			steps: []step{
				{"fresh", nil, "/any", 200},
				{"idle past the timeout", func(t *testing.T, _ string, _ login, _ access) {
					d.clock.Advance(session.DefaultIdleTimeout + time.Second)
				}, "/any", 401},
			},
		},
		{
			name: "session forced logout",
			cred: func(s login, a access) request { return request{cookie: "gh_session=" + s.cookie} },
			steps: []step{
				{"before", nil, "/any", 200},
				{"all sessions revoked", func(t *testing.T, u string, _ login, _ access) {
					if _, err := d.sessions.RevokeAll(ctx, u, nil); err != nil {
						t.Fatal(err)
					}
				}, "/any", 401},
			},
		},
		{
			name: "token expiry",
			cred: func(s login, a access) request { return request{headers: [][2]string{bearer(a.raw)}} },
			steps: []step{
				{"fresh", nil, "/any", 200},
				{"past exp and the leeway", func(t *testing.T, _ string, _ login, a access) {
					d.clock.Set(a.claims.ExpiresAt.Add(token.DefaultLeeway + time.Second))
				}, "/any", 401},
			},
		},
		{
			name: "token forced logout",
			cred: func(s login, a access) request { return request{headers: [][2]string{bearer(a.raw)}} },
			steps: []step{
				{"before", nil, "/any", 200},
				{"user revoked", func(t *testing.T, u string, _ login, a access) {
					d.clock.Advance(time.Second)
					if err := d.revs.RevokeUser(ctx, u, d.clock.Now(), a.claims.ExpiresAt.Add(time.Hour)); err != nil {
						t.Fatal(err)
					}
				}, "/any", 401},
			},
		},
		{
			name: "role granted and taken",
			cred: func(s login, a access) request { return request{cookie: "gh_session=" + s.cookie} },
			steps: []step{
				{"without the role", nil, "/admin", 403},
				{"granted", func(t *testing.T, u string, _ login, _ access) {
					if err := d.accounts.SetRoles(ctx, u, []string{"admin"}); err != nil {
						t.Fatal(err)
					}
				}, "/admin", 200},
				{"taken", func(t *testing.T, u string, _ login, _ access) {
					if err := d.accounts.SetRoles(ctx, u, nil); err != nil {
						t.Fatal(err)
					}
				}, "/admin", 403},
			},
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := d.user(t, "user"+string(rune('a'+i)))
			s := d.login(t, u)
			a := d.token(t, u.ID, "fam-"+u.ID)
			for _, st := range c.steps {
				if st.change != nil {
					st.change(t, u.ID, s, a)
				}
				rq := c.cred(s, a)
				rq.path = st.path
				if r := do(t, srv, rq); r.status != st.status {
					t.Fatalf("%s: status %d, want %d: %s", st.name, r.status, st.status, r.raw)
				}
			}
		})
	}
}

// TestFailClosed: when a store or the verifier cannot answer, the request
// is refused with an opaque 500, the handler never runs, and the cause goes
// to the log only.
func TestFailClosed(t *testing.T) {
	d := newDomain(t)
	alice := d.user(t, "alice")
	downSessions, err := session.NewManager(failingSessions{d.store}, session.Config{Clock: d.clock})
	if err != nil {
		t.Fatal(err)
	}
	s := d.login(t, alice) // created through the working manager, looked up through the failing one
	downVerifier, err := token.NewVerifier(d.ring, token.VerifierConfig{Issuer: testIssuer, Audience: testIssuer, Clock: d.clock, Revocation: failingRevocation{}})
	if err != nil {
		t.Fatal(err)
	}
	at := d.token(t, alice.ID, "fam-1")
	cases := []struct {
		name string
		cfg  gate.Config
		rq   request
	}{
		{"session store down", gate.Config{Sessions: downSessions, Users: d.accounts, Dev: true}, request{cookie: "gh_session=" + s.cookie}},
		{"user store down, session", gate.Config{Sessions: d.sessions, Users: failingUsers{}, Dev: true}, request{cookie: "gh_session=" + s.cookie}},
		{"user store down, token", gate.Config{Users: failingUsers{}, Tokens: d.verifier, Dev: true}, request{headers: [][2]string{bearer(at.raw)}}},
		{"revocation store down, bearer", gate.Config{Users: d.accounts, Tokens: downVerifier, Dev: true}, request{headers: [][2]string{bearer(at.raw)}}},
		{"revocation store down, hybrid cookie", gate.Config{Users: d.accounts, Tokens: downVerifier, HybridCSRFKey: d.csrfKey, Dev: true}, request{cookie: "gh_access=" + at.raw}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			c.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			g := newGate(t, c.cfg)
			var called atomic.Bool
			srv := httptest.NewServer(g.RequireAny(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) })))
			defer srv.Close()
			c.rq.path = "/"
			r := do(t, srv, c.rq)
			checkProblem(t, r, 500, "internal", "")
			if called.Load() {
				t.Fatal("the handler ran")
			}
			if strings.Contains(string(r.raw), "connection refused") {
				t.Fatalf("the cause reached the client: %s", r.raw)
			}
			if !strings.Contains(logs.String(), "connection refused") {
				t.Fatalf("the cause is not logged: %q", logs.String())
			}
			if strings.Contains(logs.String(), s.cookie) || strings.Contains(logs.String(), at.raw) {
				t.Fatal("a credential reached the log")
			}
		})
	}
}

// TestOnError: a custom OnError gets every refusal with its sentinel, and
// the handler does not run.
func TestOnError(t *testing.T) {
	d := newDomain(t)
	alice := d.user(t, "alice")
	s := d.login(t, alice)
	var got error
	cfg := d.config()
	cfg.OnError = func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		if errors.Is(err, gate.ErrNoCredential) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		gate.WriteProblem(w, err)
	}
	g := newGate(t, cfg)
	var called bool
	h := g.RequireAny(g.RequireRole("admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })))
	cases := []struct {
		name   string
		setup  func(r *http.Request)
		want   error
		status int
	}{
		{"no credential", func(r *http.Request) {}, gate.ErrNoCredential, http.StatusSeeOther},
		{"invalid credential", func(r *http.Request) { r.Header.Set("Cookie", "gh_session=bad") }, gate.ErrInvalidCredential, 401},
		{"ambiguous credential", func(r *http.Request) {
			r.Header.Set("Cookie", "gh_session="+s.cookie)
			r.Header.Set("Authorization", "Bearer x")
		}, gate.ErrAmbiguousCredential, 400},
		{"csrf", func(r *http.Request) { r.Method = "POST"; r.Header.Set("Cookie", "gh_session="+s.cookie) }, gate.ErrCSRF, 403},
		{"forbidden", func(r *http.Request) { r.Header.Set("Cookie", "gh_session="+s.cookie) }, gate.ErrForbidden, 403},
		{"wrong kind", func(r *http.Request) {
			r.URL.Path = "/session-only"
			r.Header.Set("Authorization", "Bearer "+d.token(t, alice.ID, "fam-1").raw)
		}, gate.ErrForbidden, 403},
	}
	sessionOnly := g.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, called = nil, false
			r := httptest.NewRequest("GET", "/admin", nil)
			c.setup(r)
			w := httptest.NewRecorder()
			if r.URL.Path == "/session-only" {
				sessionOnly.ServeHTTP(w, r)
			} else {
				h.ServeHTTP(w, r)
			}
			if !errors.Is(got, c.want) || w.Code != c.status || called {
				t.Fatalf("OnError got %v, status %d, handler ran %v; want %v, %d", got, w.Code, called, c.want, c.status)
			}
		})
	}
}

// TestRequireRoleAlone: RequireRole without an authenticating middleware
// before it is a wiring mistake, answered 500, never let through.
func TestRequireRoleAlone(t *testing.T) {
	d := newDomain(t)
	var logs bytes.Buffer
	cfg := d.config()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	g := newGate(t, cfg)
	srv := httptest.NewServer(g.RequireRole("admin")(echo))
	defer srv.Close()
	checkProblem(t, do(t, srv, request{path: "/"}), 500, "internal", "")
	if !strings.Contains(logs.String(), "without an authenticating middleware") {
		t.Fatalf("log %q", logs.String())
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	d := newDomain(t)
	cases := []struct {
		name string
		cfg  gate.Config
		ok   bool
	}{
		{"everything", d.config(), true},
		{"sessions only", gate.Config{Sessions: d.sessions, Users: d.accounts}, true},
		{"tokens only", gate.Config{Users: d.accounts, Tokens: d.verifier}, true},
		{"no users", gate.Config{Sessions: d.sessions, Tokens: d.verifier}, false},
		{"no sessions and no tokens", gate.Config{Users: d.accounts}, false},
		{"hybrid key without tokens", gate.Config{Sessions: d.sessions, Users: d.accounts, HybridCSRFKey: d.csrfKey}, false},
		{"short hybrid key", gate.Config{Users: d.accounts, Tokens: d.verifier, HybridCSRFKey: make([]byte, 31)}, false},
		{"empty non-nil hybrid key", gate.Config{Users: d.accounts, Tokens: d.verifier, HybridCSRFKey: []byte{}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := gate.New(c.cfg)
			if (err == nil) != c.ok || (g != nil) != c.ok {
				t.Fatalf("New: %v, %v; want ok=%v", g, err, c.ok)
			}
		})
	}
}

func TestSetupPanics(t *testing.T) {
	d := newDomain(t)
	sessionsOnly := newGate(t, gate.Config{Sessions: d.sessions, Users: d.accounts})
	tokensOnly := newGate(t, gate.Config{Users: d.accounts, Tokens: d.verifier})
	cases := []struct {
		name string
		f    func()
	}{
		{"RequireToken without tokens", func() { sessionsOnly.RequireToken(echo) }},
		{"RequireSession without sessions", func() { tokensOnly.RequireSession(echo) }},
		{"RequireRole with an empty role", func() { tokensOnly.RequireRole("") }},
		{"RequireAny of nil", func() { tokensOnly.RequireAny(nil) }},
		{"RequireRole of nil", func() { tokensOnly.RequireRole("admin")(nil) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			c.f()
		})
	}
}

// TestHybridKeyCopied: the gate keeps its own copy of the CSRF key.
func TestHybridKeyCopied(t *testing.T) {
	d := newDomain(t)
	alice := d.user(t, "alice")
	at := d.token(t, alice.ID, "fam-1")
	cfg := d.config()
	cfg.HybridCSRFKey = bytes.Clone(d.csrfKey)
	g := newGate(t, cfg)
	clear(cfg.HybridCSRFKey)
	srv := gateServer(t, g)
	r := do(t, srv, request{method: "POST", path: "/any", cookie: "gh_access=" + at.raw, headers: [][2]string{csrfHeader(d.hybridCSRF("fam-1"))}})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
}
