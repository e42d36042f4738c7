package agent_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDeps keeps ignis-agent small and free of the control plane: it
// runs inside every sandbox and must not link NATS or any host-side role.
func TestAgentDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ignis-run/ignis/cmd/ignis-agent").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/nats-io/",
		"github.com/ignis-run/ignis/internal/server",
		"github.com/ignis-run/ignis/internal/frontend",
		"github.com/ignis-run/ignis/internal/registry",
		"github.com/ignis-run/ignis/internal/worker",
		"github.com/ignis-run/ignis/internal/assignment",
		"github.com/ignis-run/ignis/internal/embednats",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("ignis-agent depends on %s", dep)
			}
		}
	}
}
