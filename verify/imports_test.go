package verify_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// libraries are the packages a service imports to trust a Gatehouse server
// without embedding it. None of them may depend on a database driver or on
// server code: add a package here when it joins them.
var libraries = []string{
	"github.com/gatehouse-auth/gatehouse/verify",
	"github.com/gatehouse-auth/gatehouse/gate",
}

// forbiddenDeps are import paths (and everything under them) that no
// library may depend on, directly or not.
var forbiddenDeps = []string{
	"modernc.org/sqlite",
	"database/sql",
	"github.com/jackc",
	"github.com/redis",
	"github.com/gatehouse-auth/gatehouse/httpapi",
	"github.com/gatehouse-auth/gatehouse/internal/app",
	"github.com/gatehouse-auth/gatehouse/store/sqlite",
	"github.com/gatehouse-auth/gatehouse/store/postgres",
	"github.com/gatehouse-auth/gatehouse/store/redis",
	"github.com/gatehouse-auth/gatehouse/web",
}

// forbidden returns the entry of forbiddenDeps that dep falls under, or "".
func forbidden(dep string) string {
	for _, f := range forbiddenDeps {
		if dep == f || strings.HasPrefix(dep, f+"/") {
			return f
		}
	}
	return ""
}

func TestForbiddenMatches(t *testing.T) {
	for _, tc := range []struct {
		dep  string
		want string
	}{
		{"database/sql", "database/sql"},
		{"database/sql/driver", "database/sql"},
		{"github.com/jackc/pgx/v5", "github.com/jackc"},
		{"github.com/redis/go-redis/v9", "github.com/redis"},
		{"modernc.org/sqlite/lib", "modernc.org/sqlite"},
		{"github.com/gatehouse-auth/gatehouse/httpapi", "github.com/gatehouse-auth/gatehouse/httpapi"},
		{"github.com/gatehouse-auth/gatehouse/store/sqlite", "github.com/gatehouse-auth/gatehouse/store/sqlite"},
		{"github.com/gatehouse-auth/gatehouse/httpapiclient", ""},
		{"github.com/gatehouse-auth/gatehouse/store/memory", ""},
		{"github.com/gatehouse-auth/gatehouse/token", ""},
		{"database/sqlx", ""},
		{"net/http", ""},
	} {
		if got := forbidden(tc.dep); got != tc.want {
			t.Errorf("forbidden(%q) = %q, want %q", tc.dep, got, tc.want)
		}
	}
}

// TestLibrariesImportNoServer lists each library's dependencies with
// `go list -deps -test=false` (tests may import the server; the library
// may not).
func TestLibrariesImportNoServer(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	for _, pkg := range libraries {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command(goTool, "list", "-deps", "-test=false", pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", pkg, err)
			}
			deps := strings.Fields(string(out))
			self := false
			for _, dep := range deps {
				self = self || dep == pkg
				if f := forbidden(dep); f != "" {
					t.Errorf("%s depends on %s (forbidden: %s)", pkg, dep, f)
				}
			}
			if !self || len(deps) < 10 {
				t.Fatalf("go list answered %d packages without %s itself: %q", len(deps), pkg, out)
			}
		})
	}
}
