package jail

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "agent")
	if err := os.WriteFile(agent, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	good := sandbox.Spec{ID: "fn-1", AgentBinary: agent, CodeDir: dir, MemoryMB: 128}
	tests := []struct {
		name string
		mod  func(*sandbox.Spec)
		ok   bool
	}{
		{"good", func(*sandbox.Spec) {}, true},
		{"upper_id", func(s *sandbox.Spec) { s.ID = "Fn" }, false},
		{"long_id", func(s *sandbox.Spec) { s.ID = strings.Repeat("a", 65) }, false},
		{"agent_is_dir", func(s *sandbox.Spec) { s.AgentBinary = dir }, false},
		{"code_not_clean", func(s *sandbox.Spec) { s.CodeDir = dir + "/." }, false},
		{"layer_missing", func(s *sandbox.Spec) { s.LayerDirs = []string{dir + "/nope"} }, false},
		{"extra_over_task", func(s *sandbox.Spec) { s.ExtraMounts = []string{"/var/task"} }, false},
		{"extra_under_proc", func(s *sandbox.Spec) { s.ExtraMounts = []string{"/proc/self"} }, false},
		{"extra_ok", func(s *sandbox.Spec) { s.ExtraMounts = []string{"/usr/share"} }, true},
		{"extra_under_tmp", func(s *sandbox.Spec) { s.ExtraMounts = []string{dir} }, false},
		{"negative_tmp", func(s *sandbox.Spec) { s.TmpMB = -1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mod(&s)
			err := validate(&s)
			if tc.ok && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, sandbox.ErrInvalidSpec) {
				t.Fatalf("validate = %v, want ErrInvalidSpec", err)
			}
		})
	}
}

func TestStageOwner(t *testing.T) {
	for name, want := range map[string]int{
		"stage-123-0a1b2c3d-7": 123,
		"stage-123-7":          123,
		"stage-123-0a1b2c3d":   0,
		"stage-123-0a1b2c3":    0,
		"stage-x-0a1b2c3d-7":   0,
		"stage-123-zzzzzzzz-7": 0,
		"sbt-123-0a1b2c3d-7":   0,
	} {
		got, ok := stageOwner(name)
		if got != want || ok != (want != 0) {
			t.Errorf("stageOwner(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
}

func TestOpenInitBinary(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"others_exec", 0o755, true},
		{"owner_only", 0o700, false},
		{"not_exec", 0o644, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte("#!/bin/true\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			f, err := openInitBinary(p, 100000, 100000)
			if tc.ok != (err == nil) {
				t.Fatalf("openInitBinary(mode %04o) = %v, want ok %v", tc.mode, err, tc.ok)
			}
			if f != nil {
				f.Close()
			}
		})
	}
	if _, err := openInitBinary(dir, 100000, 100000); err == nil {
		t.Error("openInitBinary(dir) succeeded, want an error")
	}
}
