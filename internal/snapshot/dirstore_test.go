package snapshot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ignis-run/ignis/internal/snapshot"
)

func TestDirStore_Lifecycle(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := snapshot.NewDirStore(root)
	if err != nil {
		t.Fatal(err)
	}
	k := snapshot.KeyOf("fn", "3", "0b7c3a5e-1111-4a2b-9c3d-0123456789ab")
	if _, _, err := s.Open(ctx, k); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("Open of nothing: %v, want ErrNotFound", err)
	}
	dir, err := s.Create(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snapshot.ImageDir(dir), "checkpoint.img"), []byte("state"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, k); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("uncommitted image visible: %v", err)
	}
	if err := s.Commit(ctx, k, dir, snapshot.Meta{Driver: "gvisor", AgentProtocol: 2}); err != nil {
		t.Fatal(err)
	}
	got, m, err := s.Open(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(snapshot.ImageDir(got), "checkpoint.img")); err != nil || string(b) != "state" {
		t.Fatalf("image content %q, %v", b, err)
	}
	if m.Driver != "gvisor" || m.Key != k.String() || m.Bytes != 5 {
		t.Errorf("meta = %+v", m)
	}
	keys, err := s.List(ctx)
	if err != nil || len(keys) != 1 || keys[0] != k {
		t.Fatalf("List = %v, %v", keys, err)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, k); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("Open after Delete: %v", err)
	}

	// A directory a killed process left half made is gone at reopen.
	left, err := s.Create(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.NewDirStore(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("leftover %s survived reopening: %v", left, err)
	}
}

// TestKey_Hostile: keys become directory names, so no part may carry a
// path separator, a dot-dot or anything but its documented characters.
func TestKey_Hostile(t *testing.T) {
	s, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []snapshot.Key{
		{"../etc", "1", "abc"}, {"fn", "../1", "abc"}, {"fn", "1", "../../x"},
		{"fn", "0", "abc"}, {"fn", "$LATEST", "abc"}, {"", "1", "abc"}, {"fn/x", "1", "abc"},
		{"fn", "1", ""}, {"fn@x", "1", "abc"},
	} {
		if _, err := s.Create(context.Background(), k); err == nil {
			t.Errorf("Create(%q) accepted", k)
		}
		if err := s.Delete(context.Background(), k); err == nil {
			t.Errorf("Delete(%q) accepted", k)
		}
		if _, err := snapshot.ParseKey(k.String()); err == nil {
			t.Errorf("ParseKey(%q) accepted", k)
		}
	}
}
