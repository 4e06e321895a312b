// Package jose_test checks that Gatehouse access tokens verify with a JOSE
// implementation that is neither Gatehouse's nor Go's: the npm package
// `jose`, run by Node against the server's published JWKS, for every
// signing algorithm, before and after a key rotation.
//
// It needs `node` on PATH and `npm ci` run in this directory; without them
// the test skips, except under CI=true, where it fails.
package jose_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/testbin"
)

// Bounds of every wait (testbin bounds the server's start and stop).
const (
	httpTimeout = 10 * time.Second // one HTTP request
	nodeTimeout = 30 * time.Second // one run of verify.mjs
)

const (
	adminKey = "jose-e2e-admin-key-0123456789abcdefghij" // 40 characters
	username = "jose-user"
	password = "correct horse battery staple"
)

// sigFailed is the code jose gives a token whose signature does not verify.
const sigFailed = "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

func TestJoseVerifiesAccessTokens(t *testing.T) {
	node := requireNodeJose(t)
	testbin.Build(t) // once, before the parallel subtests start servers
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			checkAlg(t, node, alg)
		})
	}
}

// checkAlg runs a server signing with alg and checks jose's verdicts on its
// tokens, before and after a key rotation, and on two tampered tokens.
func checkAlg(t *testing.T, node, alg string) {
	s := startServer(t, "--signing-alg", alg, "--admin-key", adminKey)

	var user struct {
		ID string `json:"id"`
	}
	s.call(t, http.MethodPost, "/v1/users", "application/json",
		fmt.Sprintf(`{"username":%q,"password":%q}`, username, password), "", http.StatusCreated, &user)
	if user.ID == "" {
		t.Fatal("signup answered no user id")
	}
	var disco struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	s.call(t, http.MethodGet, "/.well-known/openid-configuration", "", "", "", http.StatusOK, &disco)
	if disco.Issuer == "" || disco.JWKSURI == "" {
		t.Fatalf("discovery document lacks issuer or jwks_uri: %+v", disco)
	}
	j := job{JWKSURL: disco.JWKSURI, Issuer: disco.Issuer, Audience: disco.Issuer}

	tok1 := s.accessToken(t)
	kid1 := headerKid(t, tok1)
	j.Tokens = []string{tok1}
	got := runNode(t, node, j)
	wantVerified(t, "first token", got[0], alg, kid1, user.ID)

	var rot struct {
		Kid string `json:"kid"`
	}
	s.call(t, http.MethodPost, "/v1/admin/keys/rotate", "", "", "Bearer "+adminKey, http.StatusOK, &rot)
	if rot.Kid == "" || rot.Kid == kid1 {
		t.Fatalf("rotation answered kid %q; the old kid is %q", rot.Kid, kid1)
	}
	tok2 := s.accessToken(t)
	if kid2 := headerKid(t, tok2); kid2 != rot.Kid {
		t.Fatalf("token after rotation has kid %q, want the new key %q", kid2, rot.Kid)
	}

	j.Tokens = []string{tok1, tok2, tamperSignature(t, tok2), alterPayload(t, tok1)}
	got = runNode(t, node, j)
	wantVerified(t, "old-key token after rotation", got[0], alg, kid1, user.ID)
	wantVerified(t, "new-key token", got[1], alg, rot.Kid, user.ID)
	wantRefused(t, "token with a flipped signature character", got[2])
	wantRefused(t, "token with an altered payload", got[3])
}

// requireNodeJose returns the path of node, or ends the test when node or
// the installed jose package is missing: a skip on a developer's machine, a
// failure under CI=true, where the tools are required.
func requireNodeJose(t *testing.T) string {
	t.Helper()
	node := testbin.RequireTool(t, "node")
	if _, err := os.Stat(filepath.Join("node_modules", "jose", "package.json")); err != nil {
		testbin.Missing(t, "e2e/jose/node_modules/jose is missing; run `npm ci` in e2e/jose")
	}
	return node
}

// server is a running `gatehouse serve --dev` and a client for it.
type server struct {
	*testbin.Server
	client *http.Client
}

// startServer starts the binary in dev mode on a free loopback port with a
// fresh data directory, and returns once /readyz answers 200. The process is
// killed when the test ends.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	args := append([]string{"--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, extra...)
	s := &server{Server: testbin.Start(t, args...), client: &http.Client{Timeout: httpTimeout}}
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

// call sends one request and decodes the JSON answer into out (when not
// nil); it fails the test unless the status is want.
func (s *server) call(t *testing.T, method, path, contentType, body, authorization string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// accessToken logs the test user in with the password grant and returns
// the access token.
func (s *server) accessToken(t *testing.T) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	s.call(t, http.MethodPost, "/v1/token", "application/x-www-form-urlencoded", form.Encode(), "", http.StatusOK, &tok)
	if strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("access token is not a JWS compact JWT: %q", tok.AccessToken)
	}
	return tok.AccessToken
}

// headerKid returns the kid of a JWT's header, as Gatehouse wrote it.
func headerKid(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatalf("decode JWT header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Kid == "" {
		t.Fatalf("JWT header %s has no kid (%v)", raw, err)
	}
	return h.Kid
}

// tamperSignature flips one character in the middle of the signature
// segment: a middle character carries only signature bits, never padding.
func tamperSignature(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	sig := []byte(parts[2])
	i := len(sig) / 2
	if sig[i] == 'A' {
		sig[i] = 'B'
	} else {
		sig[i] = 'A'
	}
	parts[2] = string(sig)
	return strings.Join(parts, ".")
}

// alterPayload rewrites the token's claims with another subject and keeps
// the original header and signature.
func alterPayload(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("JWT payload %s: %v", raw, err)
	}
	claims["sub"] = "someone-else"
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("encode JWT payload: %v", err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// job is the input of verify.mjs.
type job struct {
	JWKSURL  string   `json:"jwks_url"`
	Issuer   string   `json:"issuer"`
	Audience string   `json:"audience"`
	Tokens   []string `json:"tokens"`
}

// verdict is one output line of verify.mjs.
type verdict struct {
	OK    bool   `json:"ok"`
	Alg   string `json:"alg"`
	Kid   string `json:"kid"`
	Sub   string `json:"sub"`
	Code  string `json:"code"`
	Error string `json:"error"`
}

// runNode runs verify.mjs on j and returns one verdict per token.
func runNode(t *testing.T, node string, j job) []verdict {
	t.Helper()
	in, err := json.Marshal(j)
	if err != nil {
		t.Fatalf("encode job: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "verify.mjs")
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node verify.mjs: %v; stderr:\n%s", err, stderr.String())
	}
	var out []verdict
	dec := json.NewDecoder(&stdout)
	for {
		var v verdict
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("verify.mjs output: %v", err)
		}
		out = append(out, v)
	}
	if len(out) != len(j.Tokens) {
		t.Fatalf("verify.mjs gave %d verdicts for %d tokens: %+v; stderr:\n%s", len(out), len(j.Tokens), out, stderr.String())
	}
	for i, v := range out {
		t.Logf("jose verdict %d: %+v", i, v)
	}
	return out
}

func wantVerified(t *testing.T, what string, v verdict, alg, kid, sub string) {
	t.Helper()
	if !v.OK {
		t.Fatalf("%s: jose refused it: %s: %s", what, v.Code, v.Error)
	}
	if v.Alg != alg || v.Kid != kid || v.Sub != sub {
		t.Fatalf("%s: jose verified alg=%q kid=%q sub=%q, want alg=%q kid=%q sub=%q", what, v.Alg, v.Kid, v.Sub, alg, kid, sub)
	}
}

// wantRefused fails unless jose refused the token for its signature, and
// not for an unrelated reason such as a missing key.
func wantRefused(t *testing.T, what string, v verdict) {
	t.Helper()
	if v.OK {
		t.Fatalf("%s: jose accepted it (alg=%q kid=%q sub=%q)", what, v.Alg, v.Kid, v.Sub)
	}
	if v.Code != sigFailed {
		t.Fatalf("%s: jose refused it with %s (%s), want %s", what, v.Code, v.Error, sigFailed)
	}
}
