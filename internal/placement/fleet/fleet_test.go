package fleet_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/placement"
	"github.com/ignis-run/ignis/internal/placement/fleet"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, ttl time.Duration, clk clock.Clock) *fleet.Registry {
	t.Helper()
	s := natstest.Start(t, "")
	cfg := fleet.DefaultConfig()
	cfg.TTL = ttl
	cfg.Clock = clk
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	r, err := fleet.Open(t.Context(), s.JetStream(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistry_RegisterHeartbeatList(t *testing.T) {
	ctx := t.Context()
	clk := clock.NewFake(epoch)
	r := open(t, time.Minute, clk)
	for _, id := range []string{"w2", "w1"} {
		if err := r.Register(ctx, fleet.Registration{ID: id, MemoryMB: 4096, CPUMillis: 2000}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(5 * time.Second)
	if err := r.Heartbeat(ctx, "w1", fleet.Load{AllocatedMB: 256, Sandboxes: 2, InFlight: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDraining(ctx, "w2", true); err != nil {
		t.Fatal(err)
	}
	got, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []fleet.Registration{
		{ID: "w1", MemoryMB: 4096, CPUMillis: 2000, Load: fleet.Load{AllocatedMB: 256, Sandboxes: 2, InFlight: 1}, Started: epoch, Heartbeat: epoch.Add(5 * time.Second)},
		{ID: "w2", MemoryMB: 4096, CPUMillis: 2000, Draining: true, Started: epoch, Heartbeat: epoch.Add(5 * time.Second)},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("List (-want +got):\n%s", d)
	}
	pw := got[1].Placement()
	if d := cmp.Diff(placement.Worker{ID: "w2", MemoryMB: 4096, CPUMillis: 2000, State: placement.Draining, LastHeartbeat: epoch.Add(5 * time.Second)}, pw); d != "" {
		t.Fatalf("Placement (-want +got):\n%s", d)
	}

	if err := r.Deregister(ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	if err := r.Deregister(ctx, "w2"); err != nil {
		t.Fatalf("second Deregister: %v", err)
	}
	if err := r.Heartbeat(ctx, "w2", fleet.Load{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Heartbeat after Deregister = %v, want ErrNotFound", err)
	}
	if err := r.Register(ctx, fleet.Registration{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Register without ID = %v, want ErrInvalidArgument", err)
	}
}

func next(t *testing.T, ch <-chan fleet.Event) fleet.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return fleet.Event{}
}

// TestRegistry_WatchAndExpiry uses the real clock: expiry is JetStream's.
func TestRegistry_WatchAndExpiry(t *testing.T) {
	ctx := t.Context()
	r := open(t, time.Second, clock.Real{})
	if err := r.Register(ctx, fleet.Registration{ID: "w1", MemoryMB: 1024}); err != nil {
		t.Fatal(err)
	}
	ch, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := cmpopts.IgnoreFields(fleet.Registration{}, "Started", "Heartbeat")
	if ev := next(t, ch); ev.Op != fleet.OpPut || !cmp.Equal(ev.Worker, fleet.Registration{ID: "w1", MemoryMB: 1024}, opts) {
		t.Fatalf("first event = %+v", ev)
	}
	if ev := next(t, ch); ev.Op != fleet.OpSynced {
		t.Fatalf("second event = %+v, want synced", ev)
	}
	if err := r.Register(ctx, fleet.Registration{ID: "w2", MemoryMB: 2048}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Op != fleet.OpPut || ev.ID != "w2" {
		t.Fatalf("event = %+v, want put w2", ev)
	}
	// No heartbeats: both expire and the watcher hears about it.
	gone := map[string]bool{}
	for len(gone) < 2 {
		ev := next(t, ch)
		if ev.Op == fleet.OpDelete {
			gone[ev.ID] = true
		}
	}
	if err := r.Heartbeat(ctx, "w1", fleet.Load{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Heartbeat after expiry = %v, want ErrNotFound", err)
	}
	if l, err := r.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after expiry = %v, %v; want empty", l, err)
	}
}

func TestRegistry_KeepAliveReregisters(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := open(t, time.Second, clock.Real{})
	done := make(chan error, 1)
	go func() {
		done <- r.KeepAlive(ctx, fleet.Registration{ID: "w1", MemoryMB: 512}, 200*time.Millisecond, func() fleet.Load { return fleet.Load{InFlight: 3} }, nil)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		reg, err := r.Get(ctx, "w1")
		if err == nil && reg.Load.InFlight == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat with load: %+v, %v", reg, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // beyond the TTL: heartbeats kept it alive
	if _, err := r.Get(ctx, "w1"); err != nil {
		t.Fatalf("registration lost despite heartbeats: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("KeepAlive = %v, want context.Canceled", err)
	}
}
