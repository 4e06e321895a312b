package gate_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/csrf"
	"github.com/gatehouse-auth/gatehouse/gate"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/token"
)

const (
	testIssuer = "https://auth.example.test"
	testPW     = "correct horse battery"
)

// domain is what a Gatehouse deployment holds, on the memory backend with a
// fake clock: accounts, sessions, a key ring, an issuer, a revocation index
// and a verifier.
type domain struct {
	clock    *clock.Fake
	store    *memory.Store
	accounts *account.Service
	sessions *session.Manager
	ring     *keys.Ring
	issuer   *token.Issuer
	verifier *token.Verifier
	revs     *revocation.Index
	csrfKey  []byte
}

func newDomain(t testing.TB) *domain {
	t.Helper()
	ctx := context.Background()
	fc := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	st := memory.New(fc)
	accounts, err := account.New(st, account.Config{Clock: fc, Params: account.InsecureFastParamsForTests()})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(st, session.Config{Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{KEK: bytes.Repeat([]byte{7}, keys.KEKSize), Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	revs, err := revocation.New(ctx, memory.NewRevocations(fc), fc)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(ring, token.IssuerConfig{Issuer: testIssuer, Audience: testIssuer, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := token.NewVerifier(ring, token.VerifierConfig{Issuer: testIssuer, Audience: testIssuer, Clock: fc, Revocation: revs})
	if err != nil {
		t.Fatal(err)
	}
	return &domain{clock: fc, store: st, accounts: accounts, sessions: sessions, ring: ring,
		issuer: iss, verifier: ver, revs: revs, csrfKey: bytes.Repeat([]byte{9}, 32)}
}

// config is a Gate configuration with every mode on, in dev mode.
func (d *domain) config() gate.Config {
	return gate.Config{Sessions: d.sessions, Users: d.accounts, Tokens: d.verifier, HybridCSRFKey: d.csrfKey, Dev: true}
}

func (d *domain) user(t testing.TB, name string, roles ...string) *account.User {
	t.Helper()
	u, err := d.accounts.Register(context.Background(), name, testPW)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) > 0 {
		if err := d.accounts.SetRoles(context.Background(), u.ID, roles); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// login is a session of u: the cookie value and its CSRF token.
type login struct {
	cookie, csrf, id string
	secret           session.Secret
}

func (d *domain) login(t testing.TB, u *account.User) login {
	t.Helper()
	secret, s, err := d.sessions.Create(context.Background(), u.ID, session.Meta{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return login{cookie: secret.Encode(), csrf: secret.CSRFToken(), id: s.ID, secret: secret}
}

// access is an access token of u in the refresh family sid.
type access struct {
	raw, sid string
	claims   token.Claims
}

func (d *domain) token(t testing.TB, userID, sid string) access {
	t.Helper()
	raw, c, err := d.issuer.Issue(context.Background(), userID, sid, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return access{raw: raw, sid: sid, claims: c}
}

// hybridCSRF is the server's hybrid CSRF token for a family, computed
// independently of the gate: csrf.Token(HMAC-SHA256(key, "hybrid-csrf-key\x00"+sid)).
func (d *domain) hybridCSRF(sid string) string {
	mac := hmac.New(sha256.New, d.csrfKey)
	mac.Write([]byte("hybrid-csrf-key\x00" + sid))
	return csrf.Token(mac.Sum(nil))
}

// echo answers 200 with the principal the gate stored, or 299 when there
// is none (which no test expects).
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := gate.PrincipalFrom(r.Context())
	if !ok {
		w.WriteHeader(299)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"user_id": p.UserID, "username": p.Username, "roles": p.Roles, "mode": p.Mode,
		"session_id": p.SessionID, "csrf_token": p.CSRFToken, "has_claims": p.Claims != nil,
	})
})

// request describes one request to the test server.
type request struct {
	method, path string
	headers      [][2]string // added in order, so a header may repeat
	cookie       string      // a literal Cookie header
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func do(t testing.TB, srv *httptest.Server, rq request) response {
	t.Helper()
	method := rq.method
	if method == "" {
		method = http.MethodGet
	}
	r, err := http.NewRequestWithContext(context.Background(), method, srv.URL+rq.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range rq.headers {
		r.Header.Add(h[0], h[1])
	}
	if rq.cookie != "" {
		r.Header.Set("Cookie", rq.cookie)
	}
	res, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && method != http.MethodHead {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, raw)
		}
	}
	return out
}

// checkProblem checks a problem+json refusal of the gate.
func checkProblem(t testing.TB, r response, status int, class, challenge string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	if got := r.header.Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
	}
	if r.body["type"] != "https://gatehouse.dev/problems/"+class || r.body["status"] != float64(status) || r.body["title"] == "" {
		t.Fatalf("problem body %s, want class %s", r.raw, class)
	}
}

// failingSessions is the memory session store with a lookup that fails, as
// an unreachable database would.
type failingSessions struct{ *memory.Store }

func (failingSessions) SessionByHash(context.Context, []byte) (*session.Session, error) {
	return nil, errors.New("connection refused")
}

// failingUsers is a user source whose database does not answer.
type failingUsers struct{}

func (failingUsers) User(context.Context, string) (*account.User, error) {
	return nil, errors.New("connection refused")
}

// failingRevocation is a revocation checker whose store does not answer.
type failingRevocation struct{}

func (failingRevocation) Revoked(context.Context, string, string, string, time.Time) (bool, error) {
	return false, errors.New("connection refused")
}
