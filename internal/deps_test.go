package internal_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"testing"
)

// The architecture rules these tests hold, so that each role can later run
// behind a network adapter (issue 13): the invoke path and the event queue
// do not depend on the HTTP frontend, and the composition root is wired in
// one place only. agent/deps_test.go and placement/purity_test.go hold the
// rules of those packages.

const module = "github.com/ignis-run/ignis/"

// listedPackage is the part of `go list -json` these tests read.
type listedPackage struct {
	ImportPath string
	Imports    []string // direct, without test files
	Deps       []string // transitive, without test files
}

// listModule lists every package of the module (test files are not
// counted: a test may import what the package itself must not).
func listModule(t *testing.T) map[string]listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

func TestDeps_InvokeAndAsyncDoNotImportFrontend(t *testing.T) {
	pkgs := listModule(t)
	tests := []struct {
		name, pkg, forbidden string
	}{
		{"invoke", "internal/invoke", "internal/frontend"},
		{"async", "internal/async", "internal/frontend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := pkgs[module+tt.pkg]
			if !ok {
				t.Fatalf("package %s not found by go list", tt.pkg)
			}
			if slices.Contains(p.Deps, module+tt.forbidden) {
				t.Errorf("%s imports %s (directly or through another package): it must stay usable without the HTTP frontend", tt.pkg, tt.forbidden)
			}
		})
	}
}

func TestDeps_OnlyCLIImportsServer(t *testing.T) {
	const server = module + "internal/server"
	// Test-support packages start servers for tests: they may import the
	// root (and each other) as long as only tests import them.
	testSupport := map[string]bool{
		module + "internal/server/servertest": true,
		module + "internal/testcluster":       true,
	}
	for path, p := range listModule(t) {
		if path != module+"internal/cli" && !testSupport[path] && slices.Contains(p.Imports, server) {
			t.Errorf("%s imports internal/server: only internal/cli may import the composition root", path)
		}
		if testSupport[path] {
			continue
		}
		for _, imp := range p.Imports {
			if testSupport[imp] {
				t.Errorf("%s imports the test-support package %s outside its tests", path, imp)
			}
		}
	}
}
