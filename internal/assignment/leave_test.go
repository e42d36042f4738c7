package assignment_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/placement/fleet"
)

// onWorker acquires sandboxes of f until one lands on worker, releasing
// the others at the end; it returns the lease on worker.
func (e *env) onWorker(worker string) assignment.Lease {
	e.t.Helper()
	var others []assignment.Lease
	defer func() {
		for _, l := range others {
			e.release(l, assignment.OutcomeOK)
		}
	}()
	for range 8 {
		l := e.acquire(req("f", 128))
		if l.WorkerID == worker {
			return l
		}
		others = append(others, l)
	}
	e.t.Fatalf("no sandbox of f placed on %s", worker)
	return assignment.Lease{}
}

func destroyCalls(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "destroy") {
			out = append(out, c)
		}
	}
	return out
}

// TestService_WorkerGone: when a worker leaves the fleet (its heartbeat
// lapsed), its idle sandboxes leave the table and the journal at once and
// its busy ones when their invoke ends, all without a call to the worker
// (nobody answers there); placement goes elsewhere.
func TestService_WorkerGone(t *testing.T) {
	e := newEnv(t, nil)
	idle := e.onWorker("w1")
	busy := e.onWorker("w1")
	crashed := e.onWorker("w1")
	e.release(idle, assignment.OutcomeOK)
	// Its destroy fails before the worker is known gone: it waits, dead,
	// for a retry that can never succeed.
	e.workers.FailDestroy(errors.New("no responders"))
	e.release(crashed, assignment.OutcomeCrash)
	e.svc.Wait()
	e.workers.FailDestroy(nil)
	e.workers.Calls()

	e.svc.RemoveWorker("w1")
	e.svc.Wait()
	if st := e.states(); st[idle.SandboxID] != "" || st[crashed.SandboxID] != "" || st[busy.SandboxID] != "busy" {
		t.Fatalf("states after the worker left = %v: want the idle and the dead sandbox gone, the busy one still busy", st)
	}
	if _, ok := e.journaled()[idle.SandboxID]; ok {
		t.Errorf("journal still has the idle sandbox of the gone worker")
	}
	e.release(busy, assignment.OutcomeOK)
	e.svc.Wait()
	if st := e.states(); st[busy.SandboxID] != "" {
		t.Errorf("the busy sandbox of the gone worker stayed after its release: %v", st)
	}
	if _, ok := e.journaled()[busy.SandboxID]; ok {
		t.Errorf("journal still has the busy sandbox of the gone worker")
	}
	if calls := destroyCalls(e.workers.Calls()); len(calls) != 0 {
		t.Errorf("destroy calls to a gone worker: %v", calls)
	}
	for range 4 {
		if l := e.acquire(req("f", 128)); l.WorkerID != "w2" {
			t.Fatalf("a sandbox was placed on %s, which left", l.WorkerID)
		}
	}
}

// TestService_WorkerDraining: a draining worker gets no new sandbox and
// no new lease: its idle sandboxes are destroyed on it at once, its busy
// ones when released, so that its in-flight invokes finish and it empties.
func TestService_WorkerDraining(t *testing.T) {
	e := newEnv(t, nil)
	idle := e.onWorker("w1")
	busy := e.onWorker("w1")
	e.release(idle, assignment.OutcomeOK)
	e.workers.Calls()

	e.svc.SetWorker(fleet.Registration{ID: "w1", MemoryMB: 4096, CPUMillis: 2000, Heartbeat: e.clock.Now(), Draining: true})
	e.svc.Wait()
	if d := cmp.Diff(map[string]string{busy.SandboxID: "busy"}, onlyW1(e, idle, busy)); d != "" {
		t.Fatalf("w1's sandboxes after it started draining (-want +got):\n%s", d)
	}
	l := e.acquire(req("f", 128))
	if l.WorkerID == "w1" {
		t.Fatalf("leased a sandbox on the draining worker")
	}
	e.release(l, assignment.OutcomeOK)
	e.release(busy, assignment.OutcomeOK)
	e.svc.Wait()
	if got := onlyW1(e, idle, busy); len(got) != 0 {
		t.Errorf("w1's sandboxes after its last invoke ended: %v, want none", got)
	}
	calls := destroyCalls(e.workers.Calls())
	for _, sb := range []string{idle.SandboxID, busy.SandboxID} {
		if !slices.ContainsFunc(calls, func(c string) bool { return strings.Contains(c, sb) }) {
			t.Errorf("no destroy call for %s on the draining worker (calls %v)", sb, calls)
		}
	}
}

func onlyW1(e *env, ls ...assignment.Lease) map[string]string {
	st := e.states()
	out := map[string]string{}
	for _, l := range ls {
		if s, ok := st[l.SandboxID]; ok {
			out[l.SandboxID] = s
		}
	}
	return out
}
