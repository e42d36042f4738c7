package assignment_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/placement"
)

func TestService_Acquire_WarmReuse(t *testing.T) {
	e := newEnv(t, nil)
	l1 := e.acquire(req("f", 128))
	if !l1.Cold || l1.SandboxID != "sb-1" || l1.WorkerID == "" || len(l1.Handle) == 0 {
		t.Fatalf("first lease = %+v, want a cold sb-1 with a handle", l1)
	}
	e.release(l1, assignment.OutcomeOK)
	l2 := e.acquire(req("f", 128))
	if l2.Cold || l2.SandboxID != l1.SandboxID || l2.WorkerID != l1.WorkerID {
		t.Fatalf("second lease = %+v, want warm reuse of %s", l2, l1.SandboxID)
	}
	e.release(l2, assignment.OutcomeOK)
	if d := cmp.Diff([]string{"create " + l1.WorkerID + " sb-1"}, e.workers.Calls()); d != "" {
		t.Fatalf("worker calls (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"sb-1": "ready"}, e.journaled()); d != "" {
		t.Fatalf("journal (-want +got):\n%s", d)
	}
	// A different key never shares the sandbox.
	l3 := e.acquire(assignment.Request{Function: "f", Key: "f:2", MemoryMB: 128})
	if !l3.Cold || l3.SandboxID == l1.SandboxID {
		t.Fatalf("other key lease = %+v, want a new sandbox", l3)
	}
}

func TestService_OneInvokePerSandbox(t *testing.T) {
	e := newEnv(t, nil)
	const n = 8
	leases := make([]assignment.Lease, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { leases[i] = e.acquire(req("f", 128)) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, l := range leases {
		if seen[l.SandboxID] {
			t.Fatalf("sandbox %s leased twice", l.SandboxID)
		}
		seen[l.SandboxID] = true
	}
	if got := e.svc.InFlight("f"); got != n {
		t.Fatalf("InFlight = %d, want %d", got, n)
	}
	// Spread: both workers got some.
	per := map[string]int{}
	for _, l := range leases {
		per[l.WorkerID]++
	}
	if len(per) != 2 {
		t.Errorf("sandboxes per worker = %v, want spread over both", per)
	}
	for _, l := range leases {
		e.release(l, assignment.OutcomeOK)
	}
	if err := e.svc.Release(leases[0], assignment.OutcomeOK); !errors.Is(err, assignment.ErrLeaseReleased) {
		t.Fatalf("double Release = %v, want ErrLeaseReleased", err)
	}
	if err := e.svc.Release(assignment.Lease{}, assignment.OutcomeOK); !errors.Is(err, assignment.ErrInvalidLease) {
		t.Fatalf("zero Release = %v, want ErrInvalidLease", err)
	}
	if got := e.svc.InFlight("f"); got != 0 {
		t.Fatalf("InFlight after release = %d, want 0", got)
	}
	// A stale lease cannot release the sandbox's next lease.
	l := e.acquire(req("f", 128))
	stale := leases[0]
	stale.SandboxID = l.SandboxID
	if err := e.svc.Release(stale, assignment.OutcomeCrash); l.SandboxID == leases[0].SandboxID && !errors.Is(err, assignment.ErrLeaseReleased) {
		t.Fatalf("stale Release = %v", err)
	}
	e.release(l, assignment.OutcomeOK)
}

func TestService_Throttling(t *testing.T) {
	tests := []struct {
		name     string
		account  int
		reserved map[string]int
		hold     map[string]int // in-flight invokes before the probe
		probe    string
		want     assignment.ThrottleReason // "" = admitted
	}{
		{name: "reserved zero always throttles", reserved: map[string]int{"f": 0}, probe: "f", want: assignment.ReasonReservedFunctionConcurrentInvocationLimitExceeded},
		{name: "reserved limit reached", reserved: map[string]int{"f": 2}, hold: map[string]int{"f": 2}, probe: "f", want: assignment.ReasonReservedFunctionConcurrentInvocationLimitExceeded},
		{name: "reserved below limit", reserved: map[string]int{"f": 2}, hold: map[string]int{"f": 1}, probe: "f"},
		{name: "reserved function may use all it reserved though pool is full", account: 3, reserved: map[string]int{"f": 2}, hold: map[string]int{"g": 1, "f": 1}, probe: "f"},
		{name: "account limit", account: 3, hold: map[string]int{"g": 2, "h": 1}, probe: "f", want: assignment.ReasonConcurrentInvocationLimitExceeded},
		{name: "reservations shrink the unreserved pool", account: 3, reserved: map[string]int{"r": 2}, hold: map[string]int{"g": 1}, probe: "f", want: assignment.ReasonConcurrentInvocationLimitExceeded},
		{name: "over-reserved account leaves no pool", account: 2, reserved: map[string]int{"r": 5}, probe: "f", want: assignment.ReasonConcurrentInvocationLimitExceeded},
		{name: "under the account limit", account: 3, hold: map[string]int{"g": 2}, probe: "f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *assignment.Config) {
				if tt.account > 0 {
					c.AccountConcurrency = tt.account
				}
			})
			for fn, n := range tt.reserved {
				if err := e.svc.SetReservedConcurrency(fn, n); err != nil {
					t.Fatal(err)
				}
			}
			for fn, n := range tt.hold {
				for range n {
					e.acquire(req(fn, 128))
				}
			}
			_, err := e.svc.Acquire(context.Background(), req(tt.probe, 128))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Acquire = %v, want admitted", err)
				}
				return
			}
			var te *assignment.ThrottleError
			if !errors.As(err, &te) || te.Reason != tt.want || !errors.Is(err, errdefs.ErrThrottled) {
				t.Fatalf("Acquire = %v, want throttle %s", err, tt.want)
			}
			if got, want := e.svc.InFlight(tt.probe), tt.hold[tt.probe]; got != want {
				t.Fatalf("InFlight after throttle = %d, want %d", got, want)
			}
		})
	}
}

func TestService_ReservationChangesKeepCounts(t *testing.T) {
	e := newEnv(t, func(c *assignment.Config) { c.AccountConcurrency = 2 })
	l := e.acquire(req("f", 128))
	if err := e.svc.SetReservedConcurrency("f", 1); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.UnreservedConcurrency(); got != 1 {
		t.Fatalf("unreserved = %d, want 1", got)
	}
	if _, err := e.svc.Acquire(context.Background(), req("f", 128)); !errdefs.IsThrottled(err) {
		t.Fatalf("second f = %v, want throttled (reserved 1, 1 in flight)", err)
	}
	e.acquire(req("g", 128)) // the unreserved pool (1) is free
	e.svc.DeleteReservedConcurrency("f")
	if _, err := e.svc.Acquire(context.Background(), req("h", 128)); !errdefs.IsThrottled(err) {
		t.Fatalf("h = %v, want throttled (account 2 full)", err)
	}
	e.release(l, assignment.OutcomeOK)
	e.acquire(req("h", 128))
}

func TestService_KeepAlive(t *testing.T) {
	e := newEnv(t, nil)
	l := e.acquire(req("f", 256))
	e.release(l, assignment.OutcomeOK)
	e.clock.Advance(10*time.Minute - time.Second)
	if n := e.svc.Reap(context.Background()); n != 0 {
		t.Fatalf("reaped %d before keep-alive expired", n)
	}
	// Using it restarts the window.
	l = e.acquire(req("f", 256))
	e.clock.Advance(time.Hour) // busy sandboxes are never reaped
	if n := e.svc.Reap(context.Background()); n != 0 {
		t.Fatalf("reaped %d busy sandboxes", n)
	}
	e.release(l, assignment.OutcomeOK)
	e.clock.Advance(10 * time.Minute)
	if n := e.svc.Reap(context.Background()); n != 1 {
		t.Fatalf("reaped %d, want 1", n)
	}
	if got := e.workers.Sandboxes(); len(got) != 0 {
		t.Fatalf("worker sandboxes after reap = %v", got)
	}
	if got := e.journaled(); len(got) != 0 {
		t.Fatalf("journal after reap = %v", got)
	}
	for _, u := range e.svc.Workers() {
		if u.AllocatedMB != 0 || u.Sandboxes != 0 || u.InFlight != 0 {
			t.Fatalf("capacity not freed: %+v", u)
		}
	}
}

func TestService_IdleCap(t *testing.T) {
	e := newEnv(t, func(c *assignment.Config) { c.MaxIdlePerKey = 1 })
	a := e.acquire(req("f", 128))
	b := e.acquire(req("f", 128))
	e.release(a, assignment.OutcomeOK)
	e.release(b, assignment.OutcomeOK) // a is the oldest idle: evicted
	e.svc.Wait()
	if d := cmp.Diff(map[string]string{b.SandboxID: "idle"}, e.states()); d != "" {
		t.Fatalf("states (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{b.SandboxID: "ready"}, e.journaled()); d != "" {
		t.Fatalf("journal (-want +got):\n%s", d)
	}
}

func TestService_ReleaseBadOutcomes(t *testing.T) {
	for _, out := range []assignment.Outcome{assignment.OutcomeTimeout, assignment.OutcomeCrash, assignment.OutcomeOutOfMemory, assignment.OutcomeDiscard} {
		e := newEnv(t, nil)
		l := e.acquire(req("f", 128))
		e.release(l, out)
		e.svc.Wait()
		if got := e.states(); len(got) != 0 {
			t.Fatalf("outcome %d: states = %v, want none", out, got)
		}
		if got := e.workers.Sandboxes(); len(got) != 0 {
			t.Fatalf("outcome %d: worker still has %v", out, got)
		}
		if got := e.journaled(); len(got) != 0 {
			t.Fatalf("outcome %d: journal still has %v", out, got)
		}
		// The next invoke gets a fresh sandbox.
		if l2 := e.acquire(req("f", 128)); !l2.Cold || l2.SandboxID == l.SandboxID {
			t.Fatalf("outcome %d: next lease %+v reuses a dead sandbox", out, l2)
		}
	}
}

func TestService_DestroyRetriedByReap(t *testing.T) {
	e := newEnv(t, nil)
	l := e.acquire(req("f", 128))
	e.workers.FailDestroy(errors.New("boom"))
	e.release(l, assignment.OutcomeCrash)
	e.svc.Wait()
	if d := cmp.Diff(map[string]string{l.SandboxID: "dead"}, e.states()); d != "" {
		t.Fatalf("states (-want +got):\n%s", d)
	}
	e.workers.FailDestroy(nil)
	if n := e.svc.Reap(context.Background()); n != 1 {
		t.Fatalf("Reap retried %d, want 1", n)
	}
	if got := e.states(); len(got) != 0 {
		t.Fatalf("states after retry = %v", got)
	}
}

func TestService_ColdStartFailures(t *testing.T) {
	t.Run("unavailable worker fails over", func(t *testing.T) {
		e := newEnv(t, nil)
		e.acquire(req("f", 2048)) // w1 (ID order on a tie) now fuller: best fit
		e.workers.SetDown("w1", true)
		l := e.acquire(req("f", 128))
		if l.WorkerID != "w2" {
			t.Fatalf("lease on %s, want w2", l.WorkerID)
		}
	})
	t.Run("final error leaves nothing", func(t *testing.T) {
		e := newEnv(t, nil)
		e.workers.FailCreate(errors.New("bad spec"), true)
		_, err := e.svc.Acquire(context.Background(), req("f", 128))
		if err == nil {
			t.Fatal("Acquire succeeded")
		}
		if got := e.workers.Sandboxes(); len(got) != 0 {
			t.Fatalf("leaked sandboxes %v", got)
		}
		if got, j := e.states(), e.journaled(); len(got) != 0 || len(j) != 0 {
			t.Fatalf("table %v journal %v, want empty", got, j)
		}
		if got := e.svc.InFlight("f"); got != 0 {
			t.Fatalf("InFlight = %d after failed cold start", got)
		}
	})
	t.Run("no worker fits", func(t *testing.T) {
		e := newEnv(t, nil)
		_, err := e.svc.Acquire(context.Background(), req("f", 8192))
		if !errors.Is(err, placement.ErrNoWorker) || !errors.Is(err, errdefs.ErrUnavailable) {
			t.Fatalf("Acquire = %v, want ErrNoWorker", err)
		}
		if got := e.svc.InFlight("f"); got != 0 {
			t.Fatalf("InFlight = %d", got)
		}
	})
	t.Run("stale workers are not used", func(t *testing.T) {
		e := newEnv(t, nil)
		e.clock.Advance(time.Minute)
		if _, err := e.svc.Acquire(context.Background(), req("f", 128)); !errors.Is(err, placement.ErrNoWorker) {
			t.Fatalf("Acquire = %v, want ErrNoWorker", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		e := newEnv(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.svc.Acquire(ctx, req("f", 128)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Acquire = %v, want Canceled", err)
		}
	})
}

func TestService_CapacityAccounting(t *testing.T) {
	e := newEnv(t, nil)
	var ls []assignment.Lease
	for range 4 {
		ls = append(ls, e.acquire(req("f", 1024)))
	}
	total := 0
	for _, u := range e.svc.Workers() {
		total += u.AllocatedMB
	}
	if total != 4096 {
		t.Fatalf("allocated %d MB, want 4096", total)
	}
	for _, l := range ls {
		e.release(l, assignment.OutcomeOK)
	}
}

func TestPartitionOf_Stable(t *testing.T) {
	// Changing the hash re-homes every function: pin it.
	got := []int{assignment.PartitionOf("a", 16), assignment.PartitionOf("my-function", 16), assignment.PartitionOf("", 16)}
	if d := cmp.Diff([]int{12, 14, 5}, got); d != "" {
		t.Fatalf("PartitionOf (-want +got):\n%s", d)
	}
}
