package placement_test

import (
	"fmt"
	"testing"

	"github.com/ignis-run/ignis/internal/placement"
)

func BenchmarkPick_100Workers(b *testing.B) {
	cfg := placement.DefaultConfig()
	ws := make([]placement.Worker, 100)
	for i := range ws {
		ws[i] = placement.Worker{
			ID: fmt.Sprintf("w%03d", i), MemoryMB: 16384, CPUMillis: 8000,
			AllocatedMB: (i * 7919) % 16000, Sandboxes: i % 13, InFlight: i % 9,
			SameFunction: i % 3, LastHeartbeat: epoch,
		}
		if i%10 == 0 {
			ws[i].State = placement.Draining
		}
	}
	req := placement.Request{MemoryMB: 512, Function: "f"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := placement.Pick(&cfg, ws, req, epoch); err != nil {
			b.Fatal(err)
		}
	}
}
