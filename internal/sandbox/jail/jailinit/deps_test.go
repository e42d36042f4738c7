package jailinit_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the setup stage lean: every sandbox start runs
// ignis-jail-init, and every package it links adds to its start (package
// initialisation) and to the memory the kernel tears down when it execs the
// agent. Outside the standard library it may use golang.org/x/sys/unix
// alone, and of the standard library not what brings goroutines, network
// or logging machinery.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", "github.com/ignis-run/ignis/cmd/ignis-jail-init").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"golang.org/x/sys/unix": true,
		"github.com/ignis-run/ignis/internal/sandbox/jail/jailinit": true,
		"github.com/ignis-run/ignis/cmd/ignis-jail-init":            true,
	}
	forbiddenStd := []string{"net", "log", "log/slog", "crypto", "regexp", "os/exec", "context"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, std, _ := strings.Cut(line, " ")
		if std != "true" {
			if !allowed[pkg] {
				t.Errorf("ignis-jail-init depends on %s", pkg)
			}
			continue
		}
		for _, f := range forbiddenStd {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("ignis-jail-init depends on %s", pkg)
			}
		}
	}
}
