package jail

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

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

// TestSeccompProgram_WellFormed checks what the kernel would only report
// at sandbox start: jumps stay inside the program, it ends in a return and
// fits the kernel's limit.
func TestSeccompProgram_WellFormed(t *testing.T) {
	p := seccompProgram()
	if len(p) > 4096 {
		t.Fatalf("%d instructions, above BPF_MAXINSNS", len(p))
	}
	for i, ins := range p {
		if ins.Code&0x07 == unix.BPF_JMP && i+1+int(max(ins.Jt, ins.Jf)) >= len(p) {
			t.Errorf("instruction %d jumps past the end", i)
		}
	}
	if last := p[len(p)-1]; last.Code != unix.BPF_RET|unix.BPF_K || last.K != retAllow {
		t.Errorf("last instruction %+v, want ret ALLOW", last)
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
