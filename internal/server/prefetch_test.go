package server

import (
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/placement"
	"github.com/ignis-run/ignis/internal/placement/fleet"
)

// A deploy is prefetched by the workers placement would pick first for a
// new function, not by every worker.
func TestPlacedHere(t *testing.T) {
	now := time.Now()
	cfg := placement.DefaultConfig()
	reg := func(id string, allocMB int, draining bool) fleet.Registration {
		return fleet.Registration{ID: id, MemoryMB: 4096, CPUMillis: 2000, Heartbeat: now, Draining: draining,
			Load: fleet.Load{AllocatedMB: allocMB, Sandboxes: allocMB / 128}}
	}
	fleetOf := []fleet.Registration{reg("a", 0, false), reg("b", 2048, false), reg("c", 1024, false), reg("d", 3072, true)}
	got := map[string]bool{}
	for _, r := range fleetOf {
		got[r.ID] = placedHere(&cfg, r.ID, fleetOf, 2, now)
	}
	// Best fit packs the busiest worker that has room first: b, then c;
	// the draining d is never chosen, the empty a is kept free.
	want := map[string]bool{"a": false, "b": true, "c": true, "d": false}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("placedHere(%s) = %v, want %v (all: %v)", id, got[id], w, got)
		}
	}
	if !placedHere(&cfg, "solo", []fleet.Registration{reg("solo", 0, false)}, 2, now) {
		t.Error("a worker alone does not prefetch")
	}
	if placedHere(&cfg, "gone", fleetOf, 2, now) {
		t.Error("a worker not in the fleet prefetches")
	}
}
