package placement_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/ignis-run/ignis/"

// TestPlacement_IsPure fails if the placement core (this directory, not its
// subpackages, and every Ignis package it imports) imports IO packages or
// reads the wall clock. Standard-library packages such as fmt are allowed
// even though they link os: what matters is what our code calls.
func TestPlacement_IsPure(t *testing.T) {
	forbiddenPkgs := []string{"net", "os", "io/fs", "syscall", "os/exec", "log", "log/slog", "unsafe", "github.com/nats-io/"}
	forbiddenTime := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true}
	seen := map[string]bool{}
	var check func(dir, pkg string)
	check = func(dir, pkg string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range file.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbiddenPkgs {
					if path == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(path, bad)) || strings.HasPrefix(path, bad+"/") {
						t.Errorf("%s (%s) imports %s: the placement core must stay pure", f, pkg, path)
					}
				}
				if rest, ok := strings.CutPrefix(path, module); ok {
					check(filepath.Join(repoRoot(t), rest), path)
				}
			}
			full, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(full, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && forbiddenTime[sel.Sel.Name] {
					t.Errorf("%s: calls time.%s: pass the time in instead", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
	}
	check(".", "placement")
	if len(seen) < 2 {
		t.Fatalf("checked only %d packages; the walk is broken", len(seen))
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}
