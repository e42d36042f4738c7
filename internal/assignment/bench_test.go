package assignment_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ignis-run/ignis/internal/assignment"
)

// BenchmarkAcquireRelease_Warm is the warm invoke path: lease an idle
// sandbox and give it back. It must not allocate.
func BenchmarkAcquireRelease_Warm(b *testing.B) {
	e := newEnv(b, nil)
	r := req("f", 128)
	e.release(e.acquire(r), assignment.OutcomeOK)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := e.svc.Acquire(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		if l.Cold {
			b.Fatal("cold start in the warm benchmark")
		}
		if err := e.svc.Release(l, assignment.OutcomeOK); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAcquireRelease_WarmParallel runs the warm path from GOMAXPROCS
// goroutines over 64 functions (spread over the partitions).
func BenchmarkAcquireRelease_WarmParallel(b *testing.B) {
	e := newEnv(b, nil)
	reqs := make([]assignment.Request, 64)
	for i := range reqs {
		reqs[i] = req(fmt.Sprintf("fn-%d", i), 16)
		var ls []assignment.Lease
		for range 4 {
			ls = append(ls, e.acquire(reqs[i]))
		}
		for _, l := range ls {
			e.release(l, assignment.OutcomeOK)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			l, err := e.svc.Acquire(ctx, reqs[i%len(reqs)])
			if err != nil {
				b.Error(err)
				return
			}
			if err := e.svc.Release(l, assignment.OutcomeOK); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestAcquireRelease_WarmDoesNotAllocate(t *testing.T) {
	e := newEnv(t, nil)
	r := req("f", 128)
	e.release(e.acquire(r), assignment.OutcomeOK)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		l, err := e.svc.Acquire(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Release(l, assignment.OutcomeOK); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("warm Acquire+Release allocates %.1f times, want 0", allocs)
	}
}
