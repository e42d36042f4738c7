// Package runtimes holds Ignis's language bootstraps and the rules that turn
// a function's Runtime and Handler into the runtime process the agent
// starts: its argv (Resolve) and its environment (Env).
//
// The bootstraps (Python and Node.js Runtime API clients written in each
// language's standard library) are embedded with go:embed; Install writes
// them into a host directory that drivers mount at /var/runtime. The
// bootstraps read every path from the environment (LAMBDA_TASK_ROOT,
// AWS_LAMBDA_RUNTIME_API), so the same files also run natively, outside any
// sandbox, in tests and benchmarks.
//
// provided.al2023 and provided.al2 have no bootstrap of ours: the function's
// own bootstrap runs (Resolve returns no argv and the agent searches
// /var/task/bootstrap, then /opt/bootstrap).
package runtimes

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ignis-run/ignis/internal/errdefs"
)

//go:embed bootstraps
var bootstraps embed.FS

// Paths of the bootstraps relative to the runtime directory.
const (
	PythonBootstrap = "python/bootstrap.py"
	NodeBootstrap   = "node/bootstrap.mjs"
)

// Default paths inside a sandbox.
const (
	DefaultRuntimeDir = "/var/runtime"
	DefaultTaskRoot   = "/var/task"
	DefaultBinDir     = "/usr/bin"
)

// Install writes the embedded bootstraps into dir (created if missing).
// Existing files are replaced, so Install is idempotent.
func Install(dir string) error {
	return fs.WalkDir(bootstraps, "bootstraps", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, "bootstraps"), "/")
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if d.IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("installing runtimes: %w", err)
			}
			return nil
		}
		b, err := bootstraps.ReadFile(p)
		if err != nil {
			return fmt.Errorf("installing runtimes: %w", err)
		}
		// Write to a temporary name and rename, so a sandbox starting
		// concurrently never sees a half-written bootstrap.
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, b, 0o755); err != nil {
			return fmt.Errorf("installing runtimes: %w", err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("installing runtimes: %w", err)
		}
		return nil
	})
}

var (
	pythonRuntime = regexp.MustCompile(`^python3\.[0-9]+$`)
	nodeRuntime   = regexp.MustCompile(`^nodejs([0-9]+)\.x$`)
)

// IsProvided reports whether runtime is an OS-only runtime whose bootstrap
// is the function's own.
func IsProvided(runtime string) bool {
	return runtime == "provided" || runtime == "provided.al2" || runtime == "provided.al2023"
}

// Resolve returns the argv that starts runtime inside a sandbox
// (bootstraps under /var/runtime, interpreters under /usr/bin). For
// provided runtimes it returns nil: the agent searches /var/task/bootstrap
// then /opt/bootstrap. Errors are errdefs.ErrInvalidArgument.
func Resolve(runtime, handler string) ([]string, error) {
	return ResolveAt(DefaultRuntimeDir, DefaultBinDir, runtime, handler)
}

// ResolveAt is Resolve with the runtime directory and interpreter directory
// given, for running natively on the host.
func ResolveAt(runtimeDir, binDir, runtime, handler string) ([]string, error) {
	switch {
	case IsProvided(runtime):
		return nil, nil
	case pythonRuntime.MatchString(runtime):
		if err := checkHandler(runtime, handler); err != nil {
			return nil, err
		}
		return []string{filepath.Join(binDir, runtime), filepath.Join(runtimeDir, PythonBootstrap)}, nil
	case nodeRuntime.MatchString(runtime):
		if err := checkHandler(runtime, handler); err != nil {
			return nil, err
		}
		return []string{filepath.Join(binDir, "node"), filepath.Join(runtimeDir, NodeBootstrap)}, nil
	}
	return nil, fmt.Errorf("resolving runtime %q: %w", runtime, errdefs.ErrInvalidArgument)
}

// checkHandler rejects a handler the language bootstraps cannot load.
func checkHandler(runtime, handler string) error {
	if handler == "" || strings.ContainsAny(handler, " \t\r\n") || !strings.Contains(handler, ".") {
		return fmt.Errorf("resolving runtime %s: bad handler %q: %w", runtime, handler, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Supported lists the runtimes this host can run: provided.al2023 and
// provided.al2 always, python3.X for each /usr/bin/python3.X, and nodejsNN.x
// for the major version of /usr/bin/node.
func Supported() []string { return Detect(DefaultBinDir) }

// Detect is Supported with the interpreter directory given.
func Detect(binDir string) []string {
	out := []string{"provided.al2023", "provided.al2"}
	matches, _ := filepath.Glob(filepath.Join(binDir, "python3.*"))
	var pys []string
	for _, m := range matches {
		name := filepath.Base(m)
		if !pythonRuntime.MatchString(name) {
			continue
		}
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			pys = append(pys, name)
		}
	}
	sort.Slice(pys, func(i, j int) bool { return minor(pys[i]) < minor(pys[j]) })
	out = append(out, pys...)
	if v, err := exec.Command(filepath.Join(binDir, "node"), "--version").Output(); err == nil {
		if m := regexp.MustCompile(`^v([0-9]+)\.`).FindSubmatch(v); m != nil {
			out = append(out, "nodejs"+string(m[1])+".x")
		}
	}
	return out
}

// minor returns X of python3.X.
func minor(py string) int {
	var n int
	_, _ = fmt.Sscanf(py, "python3.%d", &n)
	return n
}
