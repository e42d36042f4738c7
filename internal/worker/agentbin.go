package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// agentModule is the module whose cmd/ignis-agent we build from source.
const agentModule = "github.com/ignis-run/ignis"

// LocateAgent finds the ignis-agent binary: beside the running executable
// (make build, releases), then on PATH, then — when the working directory is
// inside an Ignis source checkout (go run ./cmd/ignis, go test, the
// acceptance scripts) — built from source into dir with CGO_ENABLED=0.
func LocateAgent(ctx context.Context, dir string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "ignis-agent")
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("ignis-agent"); err == nil {
		return filepath.Abs(p)
	}
	root, err := sourceRoot(ctx)
	if err != nil {
		return "", fmt.Errorf("ignis-agent not found beside the ignis binary or on PATH, and no source checkout to build it from: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "ignis-agent")
	tmp := out + fmt.Sprintf(".%d.tmp", os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/ignis-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ignis-agent in %s: %v: %s", root, err, bytes.TrimSpace(b))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

func sourceRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	mod, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(mod, []byte("module "+agentModule+"\n")) {
		return "", fmt.Errorf("%s is not the Ignis module", gomod)
	}
	return filepath.Dir(gomod), nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
