package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ignis-run/ignis/internal/codepkg/codepkgtest"
	"github.com/ignis-run/ignis/internal/errdefs"
)

// TestUnzip_HostilePackages unpacks each hostile package into the root of
// a watched directory: each must be refused, and nothing outside the root
// (beside it, above it, up to "/") may change.
func TestUnzip_HostilePackages(t *testing.T) {
	for i, tc := range codepkgtest.Hostile(t, "/unused", "unused") {
		t.Run(tc.Name, func(t *testing.T) {
			w := codepkgtest.NewWatch(t, codepkgtest.Marker())
			// Built again to aim at this test's directory and marker.
			zip := codepkgtest.Hostile(t, w.Dir, w.Marker)[i].Zip
			err := unzip(zip, w.Root)
			w.Check(t)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("unzip = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

// fakeSource serves code packages by their CodeSha256.
type fakeSource map[string][]byte

func (s fakeSource) add(zip []byte) string {
	sum := sha256.Sum256(zip)
	key := base64.StdEncoding.EncodeToString(sum[:])
	s[key] = zip
	return key
}

func (s fakeSource) OpenCode(_ context.Context, sha string) (io.ReadCloser, int64, error) {
	b, ok := s[sha]
	if !ok {
		return nil, 0, errdefs.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func TestCodeCache_Get_HostilePackages(t *testing.T) {
	w := codepkgtest.NewWatch(t, codepkgtest.Marker())
	src := fakeSource{}
	cache, err := newCodeCache(w.Root, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range codepkgtest.Hostile(t, w.Dir, w.Marker) {
		if _, err := cache.Get(t.Context(), src.add(tc.Zip)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Get = %v, want ErrInvalidArgument", tc.Name, err)
		}
	}
	w.Check(t)
	if left, _ := os.ReadDir(w.Root); len(left) != 0 {
		t.Errorf("refused packages left %d entries in the cache", len(left))
	}

	good := codepkgtest.Zip(t, codepkgtest.Entry{Name: "bootstrap", Body: "#!/bin/sh", Mode: 0o755},
		codepkgtest.Link("node_modules/.bin/x", "../x/bin/x.js"), codepkgtest.File("node_modules/x/bin/x.js", "x"))
	dir, err := cache.Get(t.Context(), src.add(good))
	if err != nil {
		t.Fatalf("Get of a good package: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "node_modules/.bin/x")); err != nil || string(b) != "x" {
		t.Errorf("reading through node_modules/.bin/x: %q, %v", b, err)
	}
	w.Check(t)
}

// fuzzMarker is the name the fuzz seeds aim their escapes at.
const fuzzMarker = "ignis-fuzz-escape"

// FuzzUnzip unpacks arbitrary bytes into the root of a watched directory
// and fails if anything outside the root changed.
func FuzzUnzip(f *testing.F) {
	f.Add(codepkgtest.Zip(f, codepkgtest.File("app.py", "def handler(e, c): return e"),
		codepkgtest.Link("lib/app.py", "../app.py")))
	for _, tc := range codepkgtest.Hostile(f, "/nonexistent-"+fuzzMarker, fuzzMarker) {
		f.Add(tc.Zip)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w := codepkgtest.NewWatch(t, fuzzMarker)
		err := unzip(b, w.Root)
		w.Check(t)
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("unzip = %v, want nil or ErrInvalidArgument", err)
		}
	})
}
