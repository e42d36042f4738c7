package server

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/sandbox/gvisor"
)

// TestCompute_NewDriver_GVisorIsProbed: asked for by name, the gvisor
// driver is probed as under auto, so that start-up fails where gVisor does
// not work and its Capabilities are this host's.
func TestCompute_NewDriver_GVisorIsProbed(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	if _, err := exec.LookPath("runsc"); err != nil {
		t.Skipf("runsc not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	cfg := Config{Compute: DefaultComputeConfig()}
	cfg.Compute.Sandbox = SandboxGVisor

	t.Run("runsc", func(t *testing.T) {
		d, err := newDriver(ctx, cfg, t.TempDir(), nil, log)
		if err != nil {
			t.Fatal(err)
		}
		// What a driver probed by hand finds here.
		ref, err := gvisor.New(gvisor.Config{StateDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if err := ref.Probe(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := d.Capabilities().Checkpoint, ref.Capabilities().Checkpoint; got != want {
			t.Errorf("Capabilities().Checkpoint = %v, want %v as probed", got, want)
		}
	})
	t.Run("broken runsc", func(t *testing.T) {
		bin := t.TempDir()
		if err := os.WriteFile(filepath.Join(bin, "runsc"), []byte("#!/bin/sh\necho broken runsc >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		d, err := newDriver(ctx, cfg, t.TempDir(), nil, log)
		if err == nil || !strings.Contains(err.Error(), "gvisor does not work on this host") {
			t.Fatalf("newDriver = %v, %v; want the error that gvisor does not work", d, err)
		}
		t.Log(err)
	})
}

func TestComputeConfig_Validate_CgroupParent(t *testing.T) {
	for _, tc := range []struct {
		name, parent string
		ok           bool
	}{
		{"default", "", true},
		{"nested", "ignis-tc-1-ab/h1/sandboxes", true},
		{"absolute", "/ignis-tc-1-ab/h1", true},
		{"climbs out", "ignis/../../etc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultComputeConfig()
			c.CgroupParent = tc.parent
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate(%q) = %v, want ok %v", tc.parent, err, tc.ok)
			}
		})
	}
}
