package gvisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestDriver returns a driver whose state lives in a fresh temp dir, or
// skips the test when runsc is absent.
func newTestDriver(t testing.TB) *Driver {
	t.Helper()
	return newTestDriverWith(t, Config{})
}

// testRunsc is the runsc the tests run: $IGNIS_RUNSC (make unit sets it
// to the pinned build, bin/runsc), else runsc on PATH. It skips t when
// there is none.
func testRunsc(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("IGNIS_RUNSC"); p != "" {
		return p
	}
	p, err := exec.LookPath("runsc")
	if err != nil {
		t.Skipf("runsc not installed: %v", err)
	}
	return p
}

// newTestDriverWith is newTestDriver with cfg's other fields; an empty
// cfg.Runsc is testRunsc.
func newTestDriverWith(t testing.TB, cfg Config) *Driver {
	t.Helper()
	if cfg.Runsc == "" {
		cfg.Runsc = testRunsc(t)
	}
	cfg.StateDir = t.TempDir()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// requireCheckpoint probes d and skips the test when the probe found that
// this host's runsc cannot checkpoint and restore.
func requireCheckpoint(t *testing.T, d *Driver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Probe(ctx); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if !d.Capabilities().Checkpoint {
		t.Skip("Probe found that this host's runsc cannot checkpoint and restore a sandbox (the reason is logged above): Capabilities().Checkpoint is false")
	}
}

// TestDriver_Probe probes with the real runsc and with one whose checkpoint
// command fails: Capabilities().Checkpoint must be what happens, not what
// is assumed, and the probe must leave nothing behind either way.
func TestDriver_Probe(t *testing.T) {
	tests := []struct {
		name string
		// runsc returns Config.Runsc; empty is the real one.
		runsc func(t *testing.T) string
		// want is the Checkpoint capability the probe must find.
		want func(t *testing.T, d *Driver) bool
		// reason is in the logged reason when Checkpoint is false.
		reason string
	}{{
		name:  "runsc",
		runsc: func(*testing.T) string { return "" },
		want: func(t *testing.T, d *Driver) bool {
			err := agentCheckpoints(t, d)
			t.Logf("checkpoint and restore of the agent: err=%v", err)
			return err == nil
		},
	}, {
		name:   "runsc without checkpoint",
		runsc:  checkpointlessRunsc,
		want:   func(*testing.T, *Driver) bool { return false },
		reason: "checkpointless runsc",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &records{}
			base := slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
			d := newTestDriverWith(t, Config{Runsc: tt.runsc(t), Logger: slog.New(recorder{base, rec})})
			if d.Capabilities().Checkpoint {
				t.Error("Capabilities().Checkpoint = true before Probe, want false until probed")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			t0 := time.Now()
			if err := d.Probe(ctx); err != nil {
				t.Fatalf("Probe: %v", err)
			}
			took := time.Since(t0)
			p, _ := d.Platform(ctx)
			got := d.Capabilities().Checkpoint
			t.Logf("probe ok on %s in %v: Checkpoint=%v, sandboxes %v", p, took, got, rec.sandboxIDs())
			checkNoLeftovers(t, d, rec.sandboxIDs())

			if want := tt.want(t, d); got != want {
				t.Errorf("Capabilities().Checkpoint = %v after Probe, want %v: whether checkpoint and restore work", got, want)
			}
			if !got && tt.reason != "" && !strings.Contains(rec.reason(), tt.reason) {
				t.Errorf("logged reason %q does not mention %q", rec.reason(), tt.reason)
			}
		})
	}
}

// agentCheckpoints reports whether a sandbox of the real agent, after its
// Hello, can be checkpointed and restored into one that takes Init: what
// Capabilities().Checkpoint promises the worker.
func agentCheckpoints(t *testing.T, d *Driver) error {
	t.Helper()
	b := buildBins(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	orig, err := d.Create(ctx, fnSpec(t, b, "real-"+randomHex(4)))
	if err != nil {
		t.Fatal(err)
	}
	defer destroy(t, orig)
	newConn(t, orig).hello()
	img, err := checkpoint(t, orig)
	if err != nil {
		return err
	}
	sb, err := d.Restore(ctx, fnSpec(t, b, "real-"+randomHex(4)), img)
	if err != nil {
		return err
	}
	defer destroy(t, sb)
	return newConn(t, sb).tryInitAt("127.0.0.1:9001")
}

// checkpointlessRunsc writes a runsc that is the real one for every command
// but checkpoint, which fails as on a host whose runsc cannot save.
func checkpointlessRunsc(t *testing.T) string {
	bin := testRunsc(t)
	// Global flags (--root X, --log X ...) come before the command, so
	// the command is found among all the arguments.
	script := fmt.Sprintf(`#!/bin/sh
for a in "$@"; do
	if [ "$a" = checkpoint ]; then
		echo "checkpointless runsc: checkpoint is not supported" >&2
		exit 1
	fi
done
exec '%s' "$@"
`, bin)
	p := filepath.Join(t.TempDir(), "runsc")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkNoLeftovers fails t if anything of the sandboxes ids is left: a
// process, a bundle, runsc state, a cgroup; or a probe directory in the
// driver's state dir.
func checkNoLeftovers(t *testing.T, d *Driver, ids []string) {
	t.Helper()
	if len(ids) == 0 {
		t.Fatal("no sandbox ids recorded: the leftover check would check nothing")
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, d.state) || slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(cmd, id) }) {
			t.Errorf("process left: %s: %s", filepath.Dir(p), cmd)
		}
	}
	for _, id := range ids {
		left := []string{filepath.Join(d.state, "bundles", id)}
		for _, pattern := range []string{
			filepath.Join(d.state, "runsc", id+"*"),
			"/sys/fs/cgroup" + cgroupPath(id),
			"/sys/fs/cgroup/*" + cgroupPath(id),
		} {
			m, _ := filepath.Glob(pattern)
			left = append(left, m...)
		}
		for _, p := range left {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("left behind by sandbox %s: %s", id, p)
			}
		}
	}
	if m, _ := filepath.Glob(filepath.Join(d.state, "probe-*")); len(m) > 0 {
		t.Errorf("probe directories left: %v", m)
	}
}

// records is what a recorder saw. Its methods are safe for concurrent use.
type records struct {
	mu      sync.Mutex
	ids     []string // guarded by mu
	reasons []string // guarded by mu
}

func (r *records) sandboxIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func (r *records) reason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.reasons, "; ")
}

// recorder is a slog.Handler that notes every sandbox id a driver logs
// under (each sandbox's logger is the driver's With("sandbox", id)) and
// every "reason" logged, so a test can find what a Probe made without
// knowing its random ids.
type recorder struct {
	slog.Handler
	r *records
}

func (h recorder) Handle(ctx context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			h.r.mu.Lock()
			h.r.reasons = append(h.r.reasons, a.Value.String())
			h.r.mu.Unlock()
		}
		return true
	})
	return h.Handler.Handle(ctx, rec)
}

func (h recorder) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		if a.Key == "sandbox" {
			h.r.mu.Lock()
			h.r.ids = append(h.r.ids, a.Value.String())
			h.r.mu.Unlock()
		}
	}
	return recorder{h.Handler.WithAttrs(as), h.r}
}

func (h recorder) WithGroup(name string) slog.Handler {
	return recorder{h.Handler.WithGroup(name), h.r}
}
