package codepkg_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/codepkg"
	"github.com/ignis-run/ignis/internal/codepkg/codepkgtest"
	"github.com/ignis-run/ignis/internal/errdefs"
)

type (
	entry = codepkgtest.Entry
)

var (
	file = codepkgtest.File
	link = codepkgtest.Link
)

func dir(name string) entry { return entry{Name: name, Mode: fs.ModeDir | 0o755} }

// chain returns links l0 → l1 → … → l(n-1) → target.
func chain(n int, target string) []entry {
	var es []entry
	for i := range n - 1 {
		es = append(es, link(name(i), name(i+1)))
	}
	return append(es, link(name(n-1), target))
}

func name(i int) string { return "l" + strings.Repeat("i", i) }

func TestOpen_Links(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		wantMsg string // "" when the package is accepted
	}{
		{name: "link to a sibling file", entries: []entry{file("app.py", "x"), link("main.py", "app.py")}},
		{name: "link up to the root from a subdirectory", entries: []entry{link("a/b/root", "../..")}},
		{name: "node_modules bin link", entries: []entry{file("node_modules/x/bin/x.js", "x"), link("node_modules/.bin/x", "../x/bin/x.js")}},
		{name: "dangling link inside", entries: []entry{link("cfg", "conf/missing.json")}},
		{name: "link through a link, inside", entries: []entry{link("a/up", ".."), link("a/x", "up/a/up/a")}},
		{name: "link through a dangling component, back inside", entries: []entry{link("x", "missing/../app.py")}},
		{name: "forty links in a chain", entries: chain(40, "end")},
		{name: "dot components", entries: []entry{link("a/x", "./.././/a")}},

		{name: "escape through another link", entries: []entry{link("a/up", ".."), link("a/x", "up/..")}, wantMsg: "outside"},
		{name: "escape at the end of a chain", entries: append(chain(5, ".."), file("x", "y")), wantMsg: "outside"},
		{name: "escape at the end of a chain, from below", entries: []entry{link("a/b/l", "../m"), link("a/m", "../../n"), link("n", "x")}, wantMsg: "outside"},
		{name: "escape through a dangling component", entries: []entry{link("x", "missing/../..")}, wantMsg: "outside"},
		{name: "escape through a file", entries: []entry{file("f", "x"), link("x", "f/../..")}, wantMsg: "outside"},
		{name: "escape for a moment", entries: []entry{link("a/x", "../../a/b")}, wantMsg: "outside"},
		{name: "absolute target", entries: []entry{link("x", "/etc/passwd")}, wantMsg: "outside"},
		{name: "empty target", entries: []entry{link("x", "")}, wantMsg: "invalid target"},
		{name: "forty-one links in a chain", entries: chain(41, "end"), wantMsg: "more than 40 links"},
		{name: "loop", entries: []entry{link("a", "b"), link("b", "a")}, wantMsg: "more than 40 links"},
		{name: "self loop", entries: []entry{link("a", "a/x")}, wantMsg: "more than 40 links"},
		{name: "entry beneath a link", entries: []entry{dir("d/"), link("s", "d"), file("s/x", "y")}, wantMsg: "beneath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := codepkg.Open(codepkgtest.Zip(t, tt.entries...))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Open error = %v, want ErrInvalidArgument mentioning %q", err, tt.wantMsg)
			}
		})
	}
}

func TestOpen_Names(t *testing.T) {
	p, err := codepkg.Open(codepkgtest.Zip(t,
		dir("./"), file("./a//b.py", "x"), dir("a/"), entry{Name: "run.sh", Body: "#!/bin/sh", Mode: fs.ModeSetuid | 0o755},
	))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var got []string
	for _, e := range p.Entries() {
		got = append(got, e.Name+" "+e.Kind.String()+" "+e.Perm.String())
	}
	want := []string{"a/b.py file -rw-r--r--", "a directory -rwxr-xr-x", "run.sh file -rwxr-xr-x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if p.Len() != 4 {
		t.Errorf("Len = %d, want 4 (the zip's entries)", p.Len())
	}
}

func TestUnpack_KeepsInPackageLinks(t *testing.T) {
	w := codepkgtest.NewWatch(t, codepkgtest.Marker())
	p, err := codepkg.Open(codepkgtest.Zip(t,
		link("node_modules/.bin/x", "../x/bin/x.js"),
		entry{Name: "node_modules/x/bin/x.js", Body: "#!/usr/bin/env node", Mode: 0o755},
		link("current", "releases/v1"),
		file("releases/v1/app.py", "v1"),
		link("cfg", "conf/missing.json"),
		entry{Name: "suid", Body: "x", Mode: fs.ModeSetuid | fs.ModeSticky | 0o4777},
	))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := p.Unpack(w.Root); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	w.Check(t)
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(w.Root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("node_modules/.bin/x"); got != "#!/usr/bin/env node" {
		t.Errorf("through node_modules/.bin/x: %q", got)
	}
	if got := read("current/app.py"); got != "v1" {
		t.Errorf("through current: %q", got)
	}
	if target, err := os.Readlink(filepath.Join(w.Root, "cfg")); err != nil || target != "conf/missing.json" {
		t.Errorf("dangling link cfg → %q, %v", target, err)
	}
	for name, want := range map[string]fs.FileMode{
		"node_modules/x/bin/x.js": 0o755, "releases/v1/app.py": 0o644, "suid": 0o755, "node_modules/.bin": fs.ModeDir | 0o755,
	} {
		info, err := os.Lstat(filepath.Join(w.Root, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s has mode %v, want %v", name, info.Mode(), want)
		}
	}
}

func TestUnpack_RefusesANonEmptyRoot(t *testing.T) {
	w := codepkgtest.NewWatch(t, codepkgtest.Marker())
	// A link planted beforehand is not written through: the file is
	// created, never opened.
	if err := os.Symlink(filepath.Join(w.Dir, "decoy"), filepath.Join(w.Root, "app.py")); err != nil {
		t.Fatal(err)
	}
	p, err := codepkg.Open(codepkgtest.Zip(t, file("app.py", "overwritten")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Unpack(w.Root); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Unpack over an existing link: %v, want ErrExist", err)
	}
	w.Check(t)
}
