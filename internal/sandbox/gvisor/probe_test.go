package gvisor

import (
	"context"
	"log/slog"
	"os/exec"
	"testing"
	"time"
)

// newTestDriver returns a driver whose state lives in a fresh temp dir, or
// skips the test when runsc is absent.
func newTestDriver(t testing.TB) *Driver {
	t.Helper()
	if _, err := exec.LookPath("runsc"); err != nil {
		t.Skipf("runsc not installed: %v", err)
	}
	d, err := New(Config{StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func TestDriver_Probe(t *testing.T) {
	d := newTestDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := d.Probe(ctx); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	p, _ := d.Platform(ctx)
	t.Logf("probe ok on %s in %v", p, time.Since(t0))
}
