package account

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestPasswordPolicy(t *testing.T) {
	tests := []struct {
		name     string
		password string
		ok       bool
	}{
		{"7 ASCII", strings.Repeat("a", 7), false},
		{"8 ASCII", strings.Repeat("a", 8), true},
		{"128 ASCII", strings.Repeat("a", 128), true},
		{"129 ASCII", strings.Repeat("a", 129), false},
		{"8 two-byte code points", strings.Repeat("é", 8), true},
		{"7 four-byte code points (28 bytes)", strings.Repeat("🔑", 7), false},
		{"8 four-byte code points", strings.Repeat("🔑", 8), true},
		{"128 four-byte code points (512 bytes)", strings.Repeat("🔑", 128), true},
		{"129 two-byte code points", strings.Repeat("é", 129), false},
		{"spaces count", "a b c d ", true},
		{"no composition rules", "aaaaaaaa", true},
		{"empty", "", false},
		{"invalid UTF-8", "password\xff", false},
		{"truncated UTF-8", "password\xe2\x82", false},
		{"NUL", "pass\x00word", false},
		{"trailing NUL", "password\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPassword(tc.password)
			if tc.ok {
				if err != nil {
					t.Fatalf("checkPassword: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrPasswordPolicy) {
				t.Fatalf("checkPassword error = %v, want ErrPasswordPolicy", err)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("error %v is not a *PolicyError with a reason", err)
			}
			if tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	withDefault := func(f func(*Params)) Params {
		p := DefaultParams()
		f(&p)
		return p
	}
	tests := []struct {
		name   string
		params Params
		ok     bool
	}{
		{"default", DefaultParams(), true},
		{"OWASP m=47104 t=1", withDefault(func(p *Params) { p.Memory, p.Time = 47104, 1 }), true},
		{"OWASP m=12288 t=3", withDefault(func(p *Params) { p.Memory, p.Time = 12288, 3 }), true},
		{"OWASP m=9216 t=4", withDefault(func(p *Params) { p.Memory, p.Time = 9216, 4 }), true},
		{"OWASP m=7168 t=5", withDefault(func(p *Params) { p.Memory, p.Time = 7168, 5 }), true},
		{"stronger", withDefault(func(p *Params) { p.Memory, p.Time, p.Threads = 65536, 3, 4 }), true},
		{"largest", Params{Memory: 4 << 20, Time: 100, Threads: 16, SaltLen: 64, KeyLen: 64}, true},
		{"zero", Params{}, false},
		{"memory one below minimum", withDefault(func(p *Params) { p.Memory = 19455 }), false},
		{"one pass at 19 MiB", withDefault(func(p *Params) { p.Time = 1 }), false},
		{"one pass one below 46 MiB", withDefault(func(p *Params) { p.Memory, p.Time = 47103, 1 }), false},
		{"m=7168 t=4", withDefault(func(p *Params) { p.Memory, p.Time = 7168, 4 }), false},
		{"many passes little memory", withDefault(func(p *Params) { p.Memory, p.Time = 7167, 100 }), false},
		{"memory over 4 GiB", withDefault(func(p *Params) { p.Memory = 4<<20 + 1 }), false},
		{"time over 100", withDefault(func(p *Params) { p.Time = 101 }), false},
		{"no threads", withDefault(func(p *Params) { p.Threads = 0 }), false},
		{"17 threads", withDefault(func(p *Params) { p.Threads = 17 }), false},
		{"salt of 15 bytes", withDefault(func(p *Params) { p.SaltLen = 15 }), false},
		{"salt of 65 bytes", withDefault(func(p *Params) { p.SaltLen = 65 }), false},
		{"key of 15 bytes", withDefault(func(p *Params) { p.KeyLen = 15 }), false},
		{"key of 65 bytes", withDefault(func(p *Params) { p.KeyLen = 65 }), false},
		{"weak params spelled out", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
		{"insecure test params in a test binary", InsecureFastParamsForTests(), true},
		{"insecure test params with a bad salt", func() Params { p := InsecureFastParamsForTests(); p.SaltLen = 4; return p }(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.params.Validate()
			if tc.ok && err != nil {
				t.Errorf("Validate: %v, want nil", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("Validate accepted %+v", tc.params)
			}
		})
	}
}

// TestInsecureParamsRefusedOutsideTests builds and runs a real program that
// validates InsecureFastParamsForTests: outside a test binary it must fail.
func TestInsecureParamsRefusedOutsideTests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program; skipped with -short")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	dir := t.TempDir()
	gomod := "module probe\n\ngo 1.26\n\nrequire github.com/gatehouse-auth/gatehouse v0.0.0\n\n" +
		"replace github.com/gatehouse-auth/gatehouse => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	main := `package main

import (
	"fmt"
	"os"

	"github.com/gatehouse-auth/gatehouse/account"
)

func main() {
	if err := account.InsecureFastParamsForTests().Validate(); err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	fmt.Println("accepted")
}
`
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(main)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the probe program")
	}
	build := exec.Command(goBin, "build", "-o", "probe", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build probe program: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "probe")).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("probe program: err = %v, output:\n%s\nwant exit status 3", err, out)
	}
	if !strings.Contains(string(out), "outside a test binary") {
		t.Errorf("probe output = %q, want the refusal", out)
	}
}
