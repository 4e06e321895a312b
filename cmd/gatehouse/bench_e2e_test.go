package main

// End-to-end test of `gatehouse bench`: the real binary measures a real
// server, and the table, bench.json and bench.svg must all carry the
// figures it measured.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/bench"
)

// benchRepeat is the number of revocations per path of the e2e run.
const benchRepeat = 3

// benchMS and benchRPS spell numbers as the table and the chart do.
func benchMS(v float64) string  { return strconv.FormatFloat(v, 'f', 3, 64) }
func benchRPS(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// benchRows indexes the table's lines by their first field.
func benchRows(table string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	return rows
}

// benchSVGTexts parses an SVG document, failing the test unless it is
// well-formed XML, and returns its text nodes.
func benchSVGTexts(t *testing.T, doc []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var texts []string
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("bench.svg is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if root != "svg" {
		t.Fatalf("bench.svg's root element is %q, want svg", root)
	}
	return texts
}

// benchMetric reads the server's gatehouse_verifications_total for a mode
// and outcome.
func benchMetric(t *testing.T, s *server, mode, outcome string) int64 {
	t.Helper()
	r := s.do(call{method: "GET", path: "/metrics"})
	wantStatus(t, "GET /metrics", r, http.StatusOK)
	re := regexp.MustCompile(`(?m)^gatehouse_verifications_total\{mode="` + regexp.QuoteMeta(mode) + `",outcome="` + outcome + `"\} (\d+)$`)
	m := re.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("/metrics has no gatehouse_verifications_total for mode %s, outcome %s", mode, outcome)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// TestE2EBench runs `gatehouse bench` against a running server and checks
// that the table, bench.json and bench.svg carry the same measured figures,
// and that the server saw the traffic the figures describe.
func TestE2EBench(t *testing.T) {
	start := time.Now()
	s := startServer(t, t.TempDir(), "--admin-key", e2eAdminKey)
	out := filepath.Join(t.TempDir(), "bench-out")
	res := runCLI(t, "", nil, "bench", "--url", s.url, "--admin-key", e2eAdminKey,
		"--duration", "300ms", "--concurrency", "2", "--repeat", strconv.Itoa(benchRepeat), "--out", out)
	if res.code != 0 {
		t.Fatalf("gatehouse bench exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("gatehouse bench output:\n%s", res.stdout)

	// Progress: not a terminal, so one plain line per step, ending at 100%.
	if !strings.Contains(res.stderr, "] 100% done\n") || strings.Contains(res.stderr, "\r") {
		t.Errorf("stderr should have plain progress lines ending at 100%%:\n%s", res.stderr)
	}

	r, err := bench.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != s.url || r.GoVersion == "" || r.Timestamp.Before(start.Add(-time.Second).UTC().Truncate(time.Second)) {
		t.Errorf("bench.json: target %q (want %q), go %q, timestamp %v", r.Target, s.url, r.GoVersion, r.Timestamp)
	}
	if r.Params.DurationMS != 300 || r.Params.Concurrency != 2 || r.Params.Repeat != benchRepeat ||
		!r.Params.CreatedUser || !strings.HasPrefix(r.Params.Username, "bench-") {
		t.Errorf("bench.json params = %+v", r.Params)
	}

	rows := benchRows(res.stdout)
	svgRaw, err := os.ReadFile(filepath.Join(out, bench.SVGFile))
	if err != nil {
		t.Fatal(err)
	}
	texts := benchSVGTexts(t, svgRaw)
	svgHas := func(s string) bool {
		for _, x := range texts {
			if x == s || strings.HasPrefix(x, s+" ") {
				return true
			}
		}
		return false
	}

	// Verify: the three modes, measured, the same in the three outputs,
	// and counted by the server.
	if len(r.Verify) != 3 {
		t.Fatalf("bench.json has %d verify modes, want 3: %+v", len(r.Verify), r.Verify)
	}
	for i, mode := range []string{"session", "token", "cookie-token"} {
		m := r.Verify[i]
		if m.Mode != mode {
			t.Errorf("verify[%d] is mode %q, want %q", i, m.Mode, mode)
			continue
		}
		if m.Requests <= 0 || m.RPS <= 0 || m.Errors != 0 || m.P50MS <= 0 || m.P50MS > m.P95MS || m.P95MS > m.P99MS ||
			m.CredentialBytes <= 0 || m.RequestBytes <= m.CredentialBytes || m.ResponseBytes <= 0 {
			t.Errorf("verify %s: implausible figures %+v", mode, m)
		}
		want := []string{mode, strconv.FormatInt(m.Requests, 10), strconv.FormatInt(m.Errors, 10), benchRPS(m.RPS),
			benchMS(m.P50MS), benchMS(m.P95MS), benchMS(m.P99MS), strconv.Itoa(m.CredentialBytes),
			strconv.Itoa(m.RequestBytes), strconv.Itoa(m.ResponseBytes)}
		got := rows[mode]
		if len(got) < len(want) || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("table row of %s = %q, want the figures of bench.json %q", mode, got, want)
		}
		for _, v := range []string{benchMS(m.P50MS) + " ms", benchMS(m.P99MS) + " ms", benchRPS(m.RPS) + " req/s",
			strconv.Itoa(m.CredentialBytes) + " B", strconv.Itoa(m.RequestBytes) + " B", strconv.Itoa(m.ResponseBytes) + " B"} {
			if !svgHas(v) {
				t.Errorf("bench.svg lacks %s's figure %q", mode, v)
			}
		}
		// The server counted every request the bench reports as accepted,
		// plus the bench's own checks (warm-up, before each revocation),
		// and not many more.
		ok := benchMetric(t, s, mode, "ok")
		slack := int64(2 + 3*benchRepeat + 10)
		if ok < m.Requests || ok > m.Requests+slack {
			t.Errorf("the server counted %d accepted %s verifications; the bench reports %d", ok, mode, m.Requests)
		}
	}
	// The Bearer token and the hybrid cookie carry a JWT; the session
	// cookie is a 256-bit secret.
	if r.Verify[0].CredentialBytes >= r.Verify[1].CredentialBytes {
		t.Errorf("the session cookie (%d B) should be smaller than the Bearer header (%d B)", r.Verify[0].CredentialBytes, r.Verify[1].CredentialBytes)
	}

	// Revocation: every path, measured benchRepeat times, refused at once
	// by this single server.
	paths := map[string]bench.RevocationResult{}
	for _, v := range r.Revocation {
		paths[v.Path] = v
	}
	for _, p := range []string{"session-logout", "token-revoke", "forced-logout/session", "forced-logout/token", "forced-logout/cookie-token", "jwks-only"} {
		v, ok := paths[p]
		if !ok {
			t.Errorf("bench.json has no revocation path %q: %+v", p, r.Revocation)
			continue
		}
		if v.Samples != benchRepeat || v.TimedOut != 0 || v.AcceptedAfter != 0 || v.P50MS > v.P99MS || v.P99MS > v.MaxMS {
			t.Errorf("revocation %s: %+v", p, v)
		}
		if v.Method == bench.MethodPolled && (v.P50MS <= 0 || v.P99MS > 3000) {
			t.Errorf("revocation %s: delays %v/%v ms, want above 0 and below 3 s", p, v.P50MS, v.P99MS)
		}
		want := []string{p, v.Method, strconv.Itoa(v.Samples), benchMS(v.P50MS), benchMS(v.P99MS), benchMS(v.MaxMS)}
		got := rows[p]
		if len(got) < len(want) || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("table row of %s = %q, want the figures of bench.json %q", p, got, want)
		}
		if !svgHas(benchMS(v.P50MS)+" ms") || !svgHas(benchMS(v.P99MS)+" ms") {
			t.Errorf("bench.svg lacks the figures of %s (%v, %v ms)", p, v.P50MS, v.P99MS)
		}
	}
	// A verifier that only has the JWKS accepts a revoked access token for
	// the rest of its lifetime: 10 minutes by default, minus the time since
	// its iat (a whole second).
	if j := paths["jwks-only"]; j.Method != bench.MethodComputed || j.P50MS < 595_000 || j.MaxMS > 600_000 {
		t.Errorf("jwks-only: %+v, want computed, about 600000 ms", j)
	}

	// The forced logouts happened on this server, once per sample.
	audit := s.do(adminCall(call{method: "GET", path: "/v1/admin/audit?type=user.forced_logout"}))
	wantStatus(t, "audit", audit, http.StatusOK)
	events, _ := audit.json(t)["events"].([]any)
	if len(events) != benchRepeat {
		t.Errorf("the server audited %d forced logouts, want %d", len(events), benchRepeat)
	}

	if d := time.Since(start); d > 20*time.Second {
		t.Logf("TestE2EBench took %s (goal: under 20 s)", d)
	}
}

// TestE2EBenchRefusals checks the bench's refusals: a wrong password is
// tried once and never again, a closed port fails fast, bad flags are
// usage errors.
func TestE2EBenchRefusals(t *testing.T) {
	s := startServer(t, t.TempDir(), "--admin-key", e2eAdminKey)
	s.signup("bench-known", e2ePassword)

	t.Run("named user without admin key", func(t *testing.T) {
		out := t.TempDir()
		res := runCLI(t, "", []string{"GATEHOUSE_BENCH_PASSWORD=" + e2ePassword}, "bench", "--url", s.url,
			"--username", "bench-known", "--duration", "50ms", "--concurrency", "1", "--repeat", "1", "--out", out)
		if res.code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
		}
		r, err := bench.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if r.Params.CreatedUser || r.Params.Username != "bench-known" || len(r.Verify) != 3 {
			t.Errorf("params %+v, %d verify modes", r.Params, len(r.Verify))
		}
		for _, v := range r.Revocation {
			if strings.HasPrefix(v.Path, "forced-logout/") {
				t.Errorf("forced logout measured without an admin key: %+v", v)
			}
		}
		if !strings.Contains(res.stdout, "forced logout path: skipped, no admin key") {
			t.Errorf("the table does not say the forced-logout path was skipped:\n%s", res.stdout)
		}
	})
	t.Run("wrong password is tried once", func(t *testing.T) {
		res := runCLI(t, "", []string{"GATEHOUSE_BENCH_PASSWORD=not the password"}, "bench", "--url", s.url,
			"--username", "bench-known", "--duration", "50ms", "--out", t.TempDir())
		if res.code != 1 || !strings.Contains(res.stderr, "refused the bench user's login") {
			t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
		}
		if strings.Contains(res.stderr, "not the password") {
			t.Errorf("the password appears in the output:\n%s", res.stderr)
		}
		audit := s.do(adminCall(call{method: "GET", path: "/v1/admin/audit?type=login.failure"}))
		wantStatus(t, "audit", audit, http.StatusOK)
		if n := len(audit.json(t)["events"].([]any)); n != 1 {
			t.Errorf("the server saw %d failed logins, want exactly 1", n)
		}
	})
	t.Run("sign-up disabled", func(t *testing.T) {
		closed := startServer(t, t.TempDir(), "--signup=false")
		res := runCLI(t, "", nil, "bench", "--url", closed.url, "--duration", "50ms", "--out", t.TempDir())
		if res.code != 1 || !strings.Contains(res.stderr, "sign-up is disabled") || !strings.Contains(res.stderr, "--username") {
			t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		res := runCLI(t, "", nil, "bench", "--url", "http://127.0.0.1:1", "--out", t.TempDir())
		if res.code != 1 || !strings.Contains(res.stderr, "connection refused") {
			t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
		}
	})
	for _, args := range [][]string{
		{"--url", "ftp://127.0.0.1"},
		{"--concurrency", "0", "--duration", "-1s"},
		{"--username", "someone"},
		{"--nope"},
		{"extra"},
	} {
		t.Run(fmt.Sprint("usage ", args), func(t *testing.T) {
			res := runCLI(t, "", nil, append([]string{"bench"}, args...)...)
			if res.code == 0 {
				t.Fatalf("bench %v exited 0; stderr:\n%s", args, res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("bench %v printed a table:\n%s", args, res.stdout)
			}
		})
	}
}
