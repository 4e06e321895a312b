package testbin

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestListeningURL(t *testing.T) {
	cases := []struct {
		name, line, want string
	}{
		{
			name: "text log (--dev)",
			line: `time=2026-01-02T03:04:05.000Z level=INFO msg="gatehouse listening" url=http://127.0.0.1:41234 dev=true data_dir=/tmp/x`,
			want: "http://127.0.0.1:41234",
		},
		{
			name: "JSON log",
			line: `{"time":"2026-01-02T03:04:05Z","level":"INFO","msg":"gatehouse listening","url":"http://127.0.0.1:41234","dev":false}`,
			want: "http://127.0.0.1:41234",
		},
		{name: "no url", line: `level=INFO msg="gatehouse listening" dev=true`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			if m := listeningURL.FindStringSubmatch(tc.line); m != nil {
				got = m[1] + m[2]
			}
			if got != tc.want {
				t.Fatalf("URL of %q = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

func TestToolDecision(t *testing.T) {
	found := func(string) (string, bool) { return "/usr/sbin/nginx", true }
	missing := func(string) (string, bool) { return "", false }
	cases := []struct {
		name               string
		find               func(string) (string, bool)
		ci                 string
		path               string
		wantFail, wantSkip bool
	}{
		{name: "installed", find: found, path: "/usr/sbin/nginx"},
		{name: "installed in CI", find: found, ci: "true", path: "/usr/sbin/nginx"},
		{name: "missing: skipped", find: missing, wantSkip: true},
		{name: "missing in CI: fails", find: missing, ci: "true", wantFail: true},
		{name: "missing, CI=1: fails", find: missing, ci: "1", wantFail: true},
		{name: "missing, CI=false: skipped", find: missing, ci: "false", wantSkip: true},
		{name: "missing, CI not a boolean: skipped", find: missing, ci: "maybe", wantSkip: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "CI" {
					return tc.ci
				}
				return ""
			}
			path, fail, skip := toolDecision(tc.find, getenv, "nginx")
			if path != tc.path || (fail != "") != tc.wantFail || (skip != "") != tc.wantSkip {
				t.Fatalf("toolDecision = %q, fail %q, skip %q; want %q, fail %v, skip %v", path, fail, skip, tc.path, tc.wantFail, tc.wantSkip)
			}
			for _, msg := range []string{fail, skip} {
				if msg != "" && !strings.HasPrefix(msg, "nginx is not installed: ") {
					t.Errorf("message %q does not name the program", msg)
				}
			}
		})
	}
}

// TestStart runs the real server with text logs (--dev) and JSON logs, and
// checks that Start found a URL that answers, that Stop reports a clean
// exit on SIGTERM, and that the stderr was collected.
func TestStart(t *testing.T) {
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		json bool // the log lines are JSON objects
	}{
		{name: "dev, text logs", args: []string{"--dev"}},
		{name: "production, JSON logs", json: true, args: []string{"--issuer", "https://gatehouse.test", "--kek", base64.StdEncoding.EncodeToString(kek)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t, append(tc.args, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())...)
			if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
				t.Fatalf("URL %q, want http://127.0.0.1:<port>", s.URL)
			}
			resp, err := http.Get(s.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz: %s", resp.Status)
			}
			if code := s.Stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, s.Stderr())
			}
			var line string
			for l := range strings.Lines(s.Stderr()) {
				if strings.Contains(l, "gatehouse listening") {
					line = l
				}
			}
			if line == "" || strings.HasPrefix(line, "{") != tc.json {
				t.Fatalf("listening line %q, want JSON %v; stderr:\n%s", line, tc.json, s.Stderr())
			}
		})
	}
}

// TestMissingSkips checks that Missing skips, without failing, outside CI.
func TestMissingSkips(t *testing.T) {
	t.Setenv("CI", "false")
	var sub *testing.T
	t.Run("missing", func(t *testing.T) {
		sub = t
		Missing(t, "a thing")
		t.Error("Missing returned")
	})
	if !sub.Skipped() || sub.Failed() {
		t.Errorf("skipped %v, failed %v; want skipped only", sub.Skipped(), sub.Failed())
	}
}
