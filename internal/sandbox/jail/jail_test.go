package jail_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the driver re-executes this test binary as its setup stage
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Driver { return newDriver(t, 0) })
}

// Without prestarted stages every Create prepares its stage itself, the
// path a Create also takes when the pool is empty.
func TestConformance_NoPrestart(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Driver { return newDriver(t, -1) })
}

func newDriver(t testing.TB, prestart int) sandbox.Driver {
	if os.Getuid() != 0 {
		t.Skip("the jail driver needs root")
	}
	d, err := jail.New(jail.Config{StateDir: t.TempDir(), CgroupParent: "ignis-jailtest", Prestart: prestart, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("jail.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func BenchmarkJail(b *testing.B) {
	sandboxtest.Bench(b, func(b *testing.B) sandbox.Driver { return newDriver(b, 0) })
}
