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
	if p, ok := findInstalled("ignis-agent"); ok {
		return p, nil
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

// LocateJailInit finds the ignis-jail-init binary, the jail driver's setup
// stage (jail.Config.InitBinary): beside the running executable, then on
// PATH. It does not build it from source: without it the driver falls back
// to re-executing the running binary, slower per sandbox but equivalent, so
// go run and test binaries need not wait for a build.
func LocateJailInit() (string, error) {
	if p, ok := findInstalled("ignis-jail-init"); ok {
		return p, nil
	}
	return "", fmt.Errorf("ignis-jail-init not found beside the ignis binary or on PATH")
}

// LocateRunsc finds gVisor's runsc: the build `make runsc` pins and puts
// beside the ignis binary (bin/runsc), then any on PATH (Debian's package, a
// fallback: its 2022 build lacks the systrap platform and sandbox
// networking on recent kernels).
func LocateRunsc() (string, error) {
	if p, ok := findInstalled("runsc"); ok {
		return p, nil
	}
	return "", fmt.Errorf("runsc not found beside the ignis binary or on PATH")
}

// findInstalled finds the executable name beside the running executable,
// then on PATH.
func findInstalled(name string) (string, bool) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if isExecutable(p) {
			return p, true
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		if p, err := filepath.Abs(p); err == nil {
			return p, true
		}
	}
	return "", false
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
