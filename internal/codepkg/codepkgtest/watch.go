package codepkgtest

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Watch is a temp directory holding an empty unpack root, Root, and decoys
// beside it. Check fails the test if anything outside Root changed, or if
// a name holding Marker appeared in an ancestor of the directory, up to
// "/".
type Watch struct {
	// Dir is the watched directory (absolute); Root is Dir/root.
	Dir, Root string
	Marker    string
	before    map[string]string
}

// NewWatch makes the directory in t.TempDir() and snapshots it.
func NewWatch(t testing.TB, marker string) *Watch {
	t.Helper()
	dir := t.TempDir()
	w := &Watch{Dir: dir, Root: filepath.Join(dir, "root"), Marker: marker}
	for _, d := range []string{w.Root, filepath.Join(dir, "sibling")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(dir, "decoy"), filepath.Join(dir, "sibling", "decoy")} {
		if err := os.WriteFile(f, []byte("untouched"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.before = w.snapshot(t)
	return w
}

// Check reports every change outside Root since NewWatch, and every name
// holding Marker in Dir's ancestors, which it then removes: a failing test
// must not leave the host littered.
func (w *Watch) Check(t testing.TB) {
	t.Helper()
	after := w.snapshot(t)
	for p, was := range w.before {
		if now, ok := after[p]; !ok {
			t.Errorf("outside the root, %s was removed", p)
		} else if now != was {
			t.Errorf("outside the root, %s changed: %s, was %s", p, now, was)
		}
	}
	for p, now := range after {
		if _, ok := w.before[p]; !ok {
			t.Errorf("outside the root, %s appeared: %s", p, now)
		}
	}
	for d := filepath.Dir(w.Dir); ; d = filepath.Dir(d) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.Contains(e.Name(), w.Marker) {
				p := filepath.Join(d, e.Name())
				t.Errorf("outside the root, %s appeared on the host (removed)", p)
				os.RemoveAll(p) // a link is removed, not followed
			}
		}
		if d == filepath.Dir(d) {
			break
		}
	}
}

// snapshot describes everything under Dir but Root, without following
// links.
func (w *Watch) snapshot(t testing.TB) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := filepath.WalkDir(w.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == w.Root {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " → " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %d bytes sha256 %x", len(b), sha256.Sum256(b))
		}
		m[p] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshotting %s: %v", w.Dir, err)
	}
	return m
}
