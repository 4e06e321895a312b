package deploy_test

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests check the packaging files, build the binary exactly as the
// Dockerfile's build stage does, and run that binary as the image's
// ENTRYPOINT and the unit's ExecStart would. No Docker engine or systemd
// is needed; systemd-analyze, where installed, checks the unit too.

// root is the repository root (the tests run in deploy/).
const root = ".."

var built struct {
	once sync.Once
	dir  string
	bin  string
	cmd  []string // the Dockerfile's build command, as run
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// gatehouse builds the binary with the Dockerfile's build command (once)
// and returns its path.
func gatehouse(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "gatehouse-deploy-test-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "gatehouse")
		built.cmd, built.err = buildCommand()
		if built.err != nil {
			return
		}
		built.err = runBuild(built.cmd, built.bin)
	})
	if built.err != nil {
		t.Fatalf("build as the Dockerfile does: %v", built.err)
	}
	return built.bin
}

// --- Dockerfile ---

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

type stage struct {
	from, name string
	ins        []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continued lines and dropping comments.
func parseDockerfile(src string) ([]stage, error) {
	var stages []stage
	var cur strings.Builder
	start := 0
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil
			}
			return fmt.Errorf("line %d: %s before FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		return nil
	}
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return stages, nil
}

func dockerfile(t *testing.T) []stage {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return stages
}

// shellWords splits a command line into words, honouring single and
// double quotes (enough for the Dockerfile's RUN and the unit's ExecStart).
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.ContainsRune("|&;<>$`\\", r):
			return nil, fmt.Errorf("shell syntax %q is not supported in %q", r, s)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// buildCommand is the build stage's "go build" command: its environment
// assignments and then go and its arguments.
func buildCommand() ([]string, error) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		return nil, err
	}
	stages, err := parseDockerfile(string(b))
	if err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, errors.New("no stage")
	}
	var found []string
	for _, in := range stages[0].ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			if found != nil {
				return nil, errors.New("more than one go build in the build stage")
			}
			if found, err = shellWords(in.args); err != nil {
				return nil, err
			}
		}
	}
	if found == nil {
		return nil, errors.New("no RUN ... go build in the build stage")
	}
	return found, nil
}

// splitEnv splits leading NAME=value words off a command.
func splitEnv(words []string) (env, cmd []string) {
	for i, w := range words {
		if !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(w) {
			return words[:i], words[i:]
		}
	}
	return words, nil
}

// runBuild runs the build command in the repository root, with its output
// (-o) sent to out.
func runBuild(words []string, out string) error {
	env, cmd := splitEnv(words)
	if len(cmd) < 2 || cmd[0] != "go" || cmd[1] != "build" {
		return fmt.Errorf("not a go build command: %q", words)
	}
	args := slices.Clone(cmd[1:])
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		return fmt.Errorf("no -o in %q", words)
	}
	args[i+1] = out
	goBin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, goBin, args...)
	c.Dir = root
	c.Env = append(os.Environ(), env...)
	if b, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%q: %v\n%s", words, err, b)
	}
	return nil
}

// imageEnv is the environment the final stage's ENV instructions set.
func imageEnv(t *testing.T, final stage) []string {
	t.Helper()
	var env []string
	for _, in := range final.ins {
		if in.cmd != "ENV" {
			continue
		}
		words, err := shellWords(in.args)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
			if !strings.Contains(w, "=") {
				t.Fatalf("line %d: ENV %s: want the NAME=value form", in.line, in.args)
			}
			env = append(env, w)
		}
	}
	return env
}

func TestDockerfileShape(t *testing.T) {
	stages := dockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stage(s): want a multi-stage build", len(stages))
	}
	buildStage, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(buildStage.from, "golang:1.26") || buildStage.name == "" {
		t.Errorf("build stage FROM %q AS %q: want golang:1.26 with a name", buildStage.from, buildStage.name)
	}
	if final.from != "gcr.io/distroless/static-debian12:nonroot" && final.from != "scratch" {
		t.Errorf("final stage FROM %q: want a static distroless (nonroot) or scratch", final.from)
	}
	last := func(cmd string) (instruction, bool) {
		for i := len(final.ins) - 1; i >= 0; i-- {
			if final.ins[i].cmd == cmd {
				return final.ins[i], true
			}
		}
		return instruction{}, false
	}

	t.Run("build command", func(t *testing.T) {
		words, err := buildCommand()
		if err != nil {
			t.Fatal(err)
		}
		env, cmd := splitEnv(words)
		if !slices.Contains(env, "CGO_ENABLED=0") {
			t.Errorf("build environment %q lacks CGO_ENABLED=0", env)
		}
		for _, flag := range []string{"-trimpath", "-buildvcs=auto"} {
			if !slices.Contains(cmd, flag) {
				t.Errorf("go build lacks %s: %q", flag, cmd)
			}
		}
		if i := slices.Index(cmd, "-ldflags"); i < 0 || i+1 >= len(cmd) || !slices.Contains(strings.Fields(cmd[i+1]), "-s") || !slices.Contains(strings.Fields(cmd[i+1]), "-w") {
			t.Errorf("go build lacks -ldflags \"-s -w\": %q", cmd)
		}
		pkg := cmd[len(cmd)-1]
		if pkg != "./cmd/gatehouse" {
			t.Errorf("package %q, want ./cmd/gatehouse", pkg)
		}
		if _, err := os.Stat(filepath.Join(root, pkg, "main.go")); err != nil {
			t.Errorf("the build's package: %v", err)
		}
		i := slices.Index(cmd, "-o")
		if i < 0 || i+1 >= len(cmd) {
			t.Fatalf("no -o in %q", cmd)
		}
		out := cmd[i+1]
		copied := false
		for _, in := range final.ins {
			if in.cmd == "COPY" && strings.Contains(in.args, "--from="+buildStage.name) && strings.Contains(in.args, out+" ") {
				copied = true
			}
		}
		if !copied {
			t.Errorf("the final stage does not COPY --from=%s %s", buildStage.name, out)
		}
	})

	t.Run("non-root user", func(t *testing.T) {
		in, ok := last("USER")
		if !ok {
			t.Fatal("the final stage sets no USER")
		}
		user, _, _ := strings.Cut(in.args, ":")
		if user == "" || user == "root" || user == "0" {
			t.Fatalf("USER %q runs as root", in.args)
		}
		if !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(user) && user != "nonroot" {
			t.Fatalf("USER %q: want a numeric uid (Kubernetes runAsNonRoot checks it) or nonroot", in.args)
		}
	})

	t.Run("entrypoint", func(t *testing.T) {
		in, ok := last("ENTRYPOINT")
		if !ok {
			t.Fatal("no ENTRYPOINT")
		}
		var argv []string
		if err := json.Unmarshal([]byte(in.args), &argv); err != nil {
			t.Fatalf("ENTRYPOINT %s: want the exec (JSON) form, so that SIGTERM reaches gatehouse: %v", in.args, err)
		}
		want := []string{"serve", "--addr", "0.0.0.0:8080", "--data-dir", "/var/lib/gatehouse"}
		if len(argv) < 1 || !slices.Equal(argv[1:], want) {
			t.Fatalf("ENTRYPOINT %q, want <binary> %q", argv, want)
		}
		// Commands run with docker exec see the image's environment, not
		// the ENTRYPOINT's flags: the data directory must be the same.
		for _, kv := range imageEnv(t, final) {
			if k, v, _ := strings.Cut(kv, "="); k == "GATEHOUSE_DATA_DIR" && v != want[4] {
				t.Errorf("ENV GATEHOUSE_DATA_DIR=%s, but the ENTRYPOINT serves %s", v, want[4])
			}
		}
		if e, ok := last("EXPOSE"); !ok || e.args != "8080" {
			t.Errorf("EXPOSE %q, want 8080", e.args)
		}
		if v, ok := last("VOLUME"); !ok || (v.args != "/var/lib/gatehouse" && v.args != `["/var/lib/gatehouse"]`) {
			t.Errorf("VOLUME %q, want /var/lib/gatehouse", v.args)
		}
	})

	t.Run("no shell and no secrets in the image", func(t *testing.T) {
		secretName := regexp.MustCompile(`(?i)(key|secret|passw|token|kek|credential)`)
		for _, st := range stages {
			for _, in := range st.ins {
				switch in.cmd {
				case "ENV", "ARG":
					name, _, _ := strings.Cut(strings.TrimSpace(in.args), "=")
					name, _, _ = strings.Cut(name, " ")
					if secretName.MatchString(name) {
						t.Errorf("line %d: %s %s: secrets are given at run time, never baked in", in.line, in.cmd, name)
					}
				case "ADD":
					t.Errorf("line %d: ADD (use COPY; nothing is fetched at build time)", in.line)
				}
				if regexp.MustCompile(`--(kek|admin-key|service-key)[= "]`).MatchString(in.args) {
					t.Errorf("line %d: %s passes a secret flag: %s", in.line, in.cmd, in.args)
				}
				if regexp.MustCompile(`[A-Za-z0-9+/]{43}=`).MatchString(in.args) {
					t.Errorf("line %d: %s holds what looks like a base64 key", in.line, in.cmd)
				}
			}
		}
		for _, in := range final.ins {
			if in.cmd == "RUN" {
				t.Errorf("line %d: RUN in the final stage (it has no shell)", in.line)
			}
			if in.cmd == "COPY" && !strings.Contains(in.args, "--from=") {
				t.Errorf("line %d: the final stage copies from the build context: %s", in.line, in.args)
			}
		}
		ignore, err := os.ReadFile("Dockerfile.dockerignore")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"**/kek", "**/*.key", "**/.env", "**/*.db", "**/gatehouse-data"} {
			if !slices.Contains(strings.Split(string(ignore), "\n"), p) {
				t.Errorf("Dockerfile.dockerignore does not exclude %s from the build context", p)
			}
		}
	})
}

// TestStaticBinary builds as the Dockerfile does and checks that the binary
// is static and stripped, and that "gatehouse version" prints the version
// the build stamped.
func TestStaticBinary(t *testing.T) {
	bin := gatehouse(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %v: the binary is dynamically linked", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
		t.Errorf("DT_NEEDED %q (%v): want none", libs, err)
	}
	if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
		t.Errorf("symbol table present (%v): -ldflags -s was not applied", err)
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		t.Error("DWARF present: -ldflags -w was not applied")
	}

	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings %v: want CGO_ENABLED=0 and -trimpath=true", settings)
	}

	// In a git checkout (and with git), the build stamps the revision and a
	// version derived from it; elsewhere the version is "(devel)".
	rev, gitErr := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if gitErr == nil {
		if settings["vcs.revision"] != strings.TrimSpace(string(rev)) {
			t.Errorf("vcs.revision %q, want HEAD %s", settings["vcs.revision"], rev)
		}
		if bi.Main.Version == "(devel)" || !strings.HasPrefix(bi.Main.Version, "v") {
			t.Errorf("module version %q: want one derived from git", bi.Main.Version)
		}
	} else if bi.Main.Version != "(devel)" {
		t.Errorf("module version %q outside git, want (devel)", bi.Main.Version)
	}

	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("gatehouse version: %v", err)
	}
	want := "gatehouse " + bi.Main.Version
	if r := settings["vcs.revision"]; len(r) >= 12 {
		want += " " + r[:12]
	}
	want += " " + bi.GoVersion + "\n"
	if string(out) != want {
		t.Fatalf("gatehouse version printed %q, want %q", out, want)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// serveFlags are the flags of "gatehouse serve", with their defaults, from
// its -help output.
func serveFlags(t *testing.T) map[string]string {
	t.Helper()
	out, _ := exec.Command(gatehouse(t), "serve", "-help").CombinedOutput()
	flags := map[string]string{}
	var name string
	for _, line := range strings.Split(string(out), "\n") {
		if m := regexp.MustCompile(`^  -([a-z0-9-]+)`).FindStringSubmatch(line); m != nil {
			name = m[1]
			flags[name] = ""
		}
		if m := regexp.MustCompile(`\(default "?([^")]*)"?\)$`).FindStringSubmatch(line); m != nil && name != "" {
			flags[name] = m[1]
		}
	}
	if len(flags) < 10 {
		t.Fatalf("serve -help listed %d flags:\n%s", len(flags), out)
	}
	return flags
}

// checkFlags fails for a word of argv that is not a flag of serve.
func checkFlags(t *testing.T, argv []string, flags map[string]string) {
	t.Helper()
	for _, w := range argv {
		if !strings.HasPrefix(w, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if _, ok := flags[name]; !ok {
			t.Errorf("%s is not a flag of gatehouse serve", w)
		}
	}
}

// server is a gatehouse process started by a test.
type server struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{} // closed when the process has exited
	err    error         // its exit error, once exited is closed
	mu     sync.Mutex
	logs   strings.Builder
}

// start runs bin with args and env (and nothing else of the test's
// environment), and waits for its "gatehouse listening" log line.
func start(t *testing.T, bin string, args, env []string) *server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			var l struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "gatehouse listening" {
				urlc <- l.URL
			}
		}
		close(urlc)
		// Wait only once the pipe has been read to its end.
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("gatehouse's log:\n%s", s.log())
		}
	})
	select {
	case u, ok := <-urlc:
		if !ok {
			t.Fatalf("gatehouse stopped before it listened:\n%s", s.log())
		}
		s.url = u
	case <-time.After(60 * time.Second):
		t.Fatalf("gatehouse did not listen within 60 s:\n%s", s.log())
	}
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

func (s *server) get(t *testing.T, path string, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// stop sends SIGTERM, as docker stop and systemctl stop do, and waits for
// a clean exit within bound.
func (s *server) stop(t *testing.T, bound time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		if s.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", s.err, s.log())
		}
	case <-time.After(bound):
		t.Fatalf("still running %v after SIGTERM", bound)
	}
	return time.Since(began)
}

func writeSecret(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	// A fixed test value: 32 bytes, base64.
	if err := os.WriteFile(path, []byte("dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestContainerEntrypoint runs the binary as the image does: the
// ENTRYPOINT's arguments, the image's ENV, the settings and the KEK given at
// run time (GATEHOUSE_ISSUER, GATEHOUSE_KEK_FILE, as in docker run -e), and the
// listen address and data directory overridden for the test (arguments
// after the ENTRYPOINT's, as docker run's command is, win).
func TestContainerEntrypoint(t *testing.T) {
	stages := dockerfile(t)
	var entry []string
	for _, in := range stages[len(stages)-1].ins {
		if in.cmd == "ENTRYPOINT" {
			if err := json.Unmarshal([]byte(in.args), &entry); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(entry) < 2 {
		t.Fatalf("ENTRYPOINT %q", entry)
	}
	checkFlags(t, entry[1:], serveFlags(t))
	dir := t.TempDir()
	kek := writeSecret(t, dir, "kek", 0o600)
	dataDir := filepath.Join(dir, "data")
	args := append(slices.Clone(entry[1:]), "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	env := append(imageEnv(t, stages[len(stages)-1]), "GATEHOUSE_ISSUER=https://auth.example.test", "GATEHOUSE_KEK_FILE="+kek)
	s := start(t, gatehouse(t), args, env)

	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := s.get(t, path, nil); status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
	}
	status, body := s.get(t, "/.well-known/openid-configuration", nil)
	if status != 200 || !strings.Contains(string(body), `"issuer":"https://auth.example.test"`) {
		t.Fatalf("discovery: %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "gatehouse.db")); err != nil {
		t.Fatalf("database in the data directory: %v", err)
	}
	took := s.stop(t, 20*time.Second)
	t.Logf("stopped %v after SIGTERM", took)
}

// --- systemd unit ---

// unit is a parsed unit file: section → key → values, in order.
type unit map[string]map[string][]string

func parseUnit(src string) (unit, error) {
	u := unit{}
	section := ""
	var cont strings.Builder
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if cont.Len() == 0 && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cont.WriteString(line)
		line = cont.String()
		cont.Reset()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: %q is not key=value in a section", i+1, raw)
		}
		u[section][strings.TrimSpace(key)] = append(u[section][strings.TrimSpace(key)], strings.TrimSpace(value))
	}
	return u, nil
}

func serviceUnit(t *testing.T) unit {
	t.Helper()
	b, err := os.ReadFile("gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if u["Service"] == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("sections %v: want Unit, Service and Install", u)
	}
	return u
}

// execStart is the unit's ExecStart, split into words.
func execStart(t *testing.T, u unit) []string {
	t.Helper()
	v := u["Service"]["ExecStart"]
	if len(v) != 1 {
		t.Fatalf("ExecStart %q: want one", v)
	}
	argv, err := shellWords(v[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) < 2 || argv[0] != "/usr/local/bin/gatehouse" || argv[1] != "serve" {
		t.Fatalf("ExecStart %q: want /usr/local/bin/gatehouse serve …", argv)
	}
	return argv
}

// flagValue is the value of --name in argv ("" when absent).
func flagValue(argv []string, name string) string {
	v := ""
	for i, w := range argv {
		switch {
		case (w == "--"+name || w == "-"+name) && i+1 < len(argv):
			v = argv[i+1]
		case strings.HasPrefix(w, "--"+name+"="):
			v = strings.TrimPrefix(w, "--"+name+"=")
		}
	}
	return v
}

func TestSystemdUnitHardening(t *testing.T) {
	svc := serviceUnit(t)["Service"]
	cases := []struct {
		key  string
		want string // one of the key's values must be this
	}{
		{"User", "gatehouse"},
		{"Group", "gatehouse"},
		{"StateDirectory", "gatehouse"},
		{"StateDirectoryMode", "0700"},
		{"EnvironmentFile", "/etc/gatehouse/env"},
		{"LoadCredential", "kek:/etc/gatehouse/kek"},
		{"LoadCredential", "admin-key:/etc/gatehouse/admin-key"},
		{"UMask", "0077"},
		{"NoNewPrivileges", "yes"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectControlGroups", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "yes"},
		{"RestrictSUIDSGID", "yes"},
		{"LockPersonality", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"SystemCallArchitectures", "native"},
		{"SystemCallFilter", "@system-service"},
		{"KillSignal", "SIGTERM"},
		{"Restart", "on-failure"},
	}
	for _, c := range cases {
		t.Run(c.key+"="+c.want, func(t *testing.T) {
			if !slices.Contains(svc[c.key], c.want) {
				t.Fatalf("%s = %q, want %q among them", c.key, svc[c.key], c.want)
			}
		})
	}
	for _, key := range []string{"DynamicUser", "PermissionsStartOnly", "AmbientCapabilities"} {
		for _, v := range svc[key] {
			if v != "" && v != "no" && v != "false" {
				t.Errorf("%s=%s", key, v)
			}
		}
	}
}

func TestSystemdUnitExecStart(t *testing.T) {
	u := serviceUnit(t)
	argv := execStart(t, u)
	flags := serveFlags(t)
	checkFlags(t, argv[2:], flags)

	for _, secret := range []string{"kek", "admin-key", "service-key"} {
		if flagValue(argv, secret) != "" {
			t.Errorf("ExecStart passes --%s on the command line (the process list shows it): use the -file flag", secret)
		}
	}
	creds := map[string]bool{}
	for _, lc := range u["Service"]["LoadCredential"] {
		name, _, _ := strings.Cut(lc, ":")
		creds[name] = true
	}
	for _, f := range []string{"kek-file", "admin-key-file"} {
		v := flagValue(argv, f)
		name, ok := strings.CutPrefix(v, "%d/")
		if !ok || !creds[name] {
			t.Errorf("--%s %q: want %%d/<a LoadCredential= name>", f, v)
		}
	}
	if v := flagValue(argv, "data-dir"); v != "%S/"+u["Service"]["StateDirectory"][0] {
		t.Errorf("--data-dir %q: want the StateDirectory, %%S/%s", v, u["Service"]["StateDirectory"][0])
	}

	// systemd must not kill the process while it drains: TimeoutStopSec
	// above the shutdown delay plus the shutdown timeout, whichever of the
	// command line, the settings file or the defaults sets them.
	env := envFile(t)
	setting := func(name string) time.Duration {
		v := flags[name]
		if v == "" {
			v = "0s" // flag's -help shows no default for a zero value
		}
		if e, ok := env["GATEHOUSE_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]; ok {
			v = e
		}
		if f := flagValue(argv, name); f != "" {
			v = f
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("--%s %q: %v", name, v, err)
		}
		return d
	}
	stop, err := time.ParseDuration(strings.TrimSuffix(u["Service"]["TimeoutStopSec"][0], "s") + "s")
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if need := setting("shutdown-delay") + setting("shutdown-timeout"); stop <= need {
		t.Errorf("TimeoutStopSec %v, not above shutdown delay + timeout %v", stop, need)
	}
}

// envFile is the settings of gatehouse.env.example (its uncommented lines).
func envFile(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("gatehouse.env.example")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "GATEHOUSE_") {
			t.Fatalf("gatehouse.env.example: %q is not GATEHOUSE_NAME=value", line)
		}
		env[k] = v
	}
	if env["GATEHOUSE_ISSUER"] == "" {
		t.Fatal("gatehouse.env.example sets no GATEHOUSE_ISSUER (required outside --dev)")
	}
	return env
}

// TestSystemdUnitRuns runs the unit's ExecStart as systemd would: %d is a
// credentials directory holding the kek and admin-key files (mode 0400,
// as systemd makes them), %S the state root, and the environment is
// gatehouse.env.example; only the listen address is overridden. Then it
// stops it with the unit's KillSignal within its TimeoutStopSec.
func TestSystemdUnitRuns(t *testing.T) {
	u := serviceUnit(t)
	argv := execStart(t, u)
	dir := t.TempDir()
	credDir, stateRoot := filepath.Join(dir, "credentials"), filepath.Join(dir, "state")
	if err := os.Mkdir(credDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stateRoot, u["Service"]["StateDirectory"][0]), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, lc := range u["Service"]["LoadCredential"] {
		name, _, _ := strings.Cut(lc, ":")
		writeSecret(t, credDir, name, 0o400)
	}
	args := make([]string, 0, len(argv))
	for _, w := range argv[1:] {
		w = strings.ReplaceAll(w, "%d", credDir)
		w = strings.ReplaceAll(w, "%S", stateRoot)
		if strings.Contains(w, "%") {
			t.Fatalf("ExecStart word %q has a specifier the test does not know", w)
		}
		args = append(args, w)
	}
	args = append(args, "--addr", "127.0.0.1:0")
	var env []string
	for k, v := range envFile(t) {
		env = append(env, k+"="+v)
	}
	s := start(t, gatehouse(t), args, env)

	if status, body := s.get(t, "/readyz", nil); status != 200 {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	// The admin key came from the credential file.
	adminKey := "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM="
	if status, body := s.get(t, "/v1/admin/audit?limit=1", map[string]string{"Authorization": "Bearer " + adminKey}); status != 200 {
		t.Fatalf("admin endpoint with the credential's key: %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, "gatehouse", "gatehouse.db")); err != nil {
		t.Fatalf("database in the state directory: %v", err)
	}
	if sig := u["Service"]["KillSignal"][0]; sig != "SIGTERM" {
		t.Fatalf("KillSignal %s", sig)
	}
	bound, err := time.ParseDuration(strings.TrimSuffix(u["Service"]["TimeoutStopSec"][0], "s") + "s")
	if err != nil {
		t.Fatal(err)
	}
	took := s.stop(t, bound)
	t.Logf("stopped %v after SIGTERM (TimeoutStopSec %v)", took, bound)
}

// TestSystemdAnalyze has systemd check the unit: "systemd-analyze verify"
// must print nothing (an unknown key or a bad value is only a warning to
// systemd), and "systemd-analyze security" must rate its exposure OK
// (2.0 or less on systemd's scale of 10). Without systemd-analyze, the test
// is skipped on a developer's machine and fails in CI.
func TestSystemdAnalyze(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is required in CI (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	src, err := os.ReadFile("gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's binary exists: point it at the build.
	path := filepath.Join(t.TempDir(), "gatehouse.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(src), "/usr/local/bin/gatehouse", gatehouse(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", path).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(tool, "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no overall exposure:\n%s", out)
	}
	var level float64
	if _, err := fmt.Sscan(string(m[1]), &level); err != nil {
		t.Fatal(err)
	}
	if level > 2.0 {
		t.Errorf("exposure %s %s, want 2.0 or less:\n%s", m[1], m[2], out)
	}
	t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
}
