package gate_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLightImports: the packages that services import to check credentials
// must stay light: no database driver, no database/sql, and none of the
// server's own packages.
func TestLightImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH:", err)
	}
	const module = "github.com/gatehouse-auth/gatehouse/"
	forbidden := []string{
		"modernc.org/sqlite",
		"database/sql",
		"github.com/jackc/",
		"github.com/redis/",
		module + "httpapi",
		module + "internal/app",
		module + "store/sqlite",
		module + "store/postgres",
		module + "store/redis",
	}
	for _, pkg := range []string{
		module + "gate",
	} {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", pkg, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 || deps[len(deps)-1] != pkg {
				t.Fatalf("go list -deps %s answered %q", pkg, out)
			}
			for _, dep := range deps {
				for _, f := range forbidden {
					if dep == f || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
						t.Errorf("%s imports %s", pkg, dep)
					}
				}
			}
		})
	}
}
