package jail_test

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/sandbox/sandboxtest"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// initBinary is cmd/ignis-jail-init, built by TestMain into a directory
// of mode 0700 (which the stages' host uid cannot search: they execute it
// by descriptor).
var initBinary string

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the /proc/self/exe fallback re-executes this test binary as its setup stage
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getuid() == 0 {
		dir, err := os.MkdirTemp("", "jailtest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		initBinary = filepath.Join(dir, "ignis-jail-init")
		cmd := exec.Command("go", "build", "-o", initBinary, "github.com/ignis-run/ignis/cmd/ignis-jail-init")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building ignis-jail-init: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T, n *sandboxnet.Network) sandbox.Driver { return newDriver(t, 0, initBinary, n) })
}

// Without prestarted stages every Create prepares its stage itself, the
// path a Create also takes when the pool is empty.
func TestConformance_NoPrestart(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T, n *sandboxnet.Network) sandbox.Driver { return newDriver(t, -1, initBinary, n) })
}

// Without Config.InitBinary the driver re-executes its own binary (this
// test binary, through MaybeRunInit) as the setup stage.
func TestConformance_SelfExe(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T, n *sandboxnet.Network) sandbox.Driver { return newDriver(t, 0, "", n) })
}

func newDriver(t testing.TB, prestart int, initBinary string, n *sandboxnet.Network) sandbox.Driver {
	if os.Getuid() != 0 {
		t.Skip("the jail driver needs root")
	}
	d, err := jail.New(jail.Config{StateDir: t.TempDir(), CgroupParent: "ignis-jailtest", Prestart: prestart, InitBinary: initBinary, Network: n, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("jail.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func BenchmarkJail(b *testing.B) {
	sandboxtest.Bench(b, func(b *testing.B, n *sandboxnet.Network) sandbox.Driver { return newDriver(b, 0, initBinary, n) })
}

// BenchmarkJail_SelfExe is BenchmarkJail with the /proc/self/exe fallback,
// for comparison in one run.
func BenchmarkJail_SelfExe(b *testing.B) {
	sandboxtest.Bench(b, func(b *testing.B, n *sandboxnet.Network) sandbox.Driver { return newDriver(b, 0, "", n) })
}
