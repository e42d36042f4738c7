package assignment_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/journal"
)

// fnIn returns a function name that hashes to partition p of n.
func fnIn(t *testing.T, p, n int) string {
	for _, c := range "abcdefghijklmnopqrstuvwxyz" {
		if assignment.PartitionOf(string(c), n) == p {
			return string(c)
		}
	}
	t.Fatalf("no one-letter function in partition %d", p)
	return ""
}

// TestService_Recover_Reconciles sets up every row of Recover's table with
// journal entries and worker state, then recovers.
func TestService_Recover_Reconciles(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	fn := fnIn(t, 1, e.cfg.Partitions)
	other := fnIn(t, 2, e.cfg.Partitions)
	ready := func(id, w string) *journal.SandboxReady {
		return &journal.SandboxReady{SandboxID: id, Function: fn, Key: fn + ":1", WorkerID: w, MemoryMB: 128, Handle: json.RawMessage(`{"id":"` + id + `"}`)}
	}
	creating := func(id, w string) *journal.SandboxCreating {
		return &journal.SandboxCreating{SandboxID: id, Function: fn, Key: fn + ":1", WorkerID: w, MemoryMB: 128}
	}
	ws := func(id string) assignment.WorkerSandbox {
		return assignment.WorkerSandbox{ID: id, Function: fn, Key: fn + ":1"}
	}
	e.workers = newWorkers("w1", "w2", "w3")
	for _, en := range []journal.Entry{
		ready("keep", "w1"),                   // worker has it → idle
		ready("lost", "w1"),                   // worker lost it → dropped
		creating("half", "w1"),                // creating, worker has it → destroyed
		creating("never", "w1"),               // creating, worker lacks it → dropped
		ready("gone", "w9"),                   // worker left the fleet → dropped
		ready("later", "w3"),                  // worker unreachable → dead, retried
		creating("c", "w1"), ready("c", "w1"), // a completed creation
		ready("dead", "w1"), &journal.SandboxDestroyed{SandboxID: "dead"},
	} {
		if _, err := e.journal.Append(ctx, 1, en); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"keep", "half", "orphan", "c"} {
		e.workers.Put("w1", ws(id))
	}
	e.workers.Put("w2", assignment.WorkerSandbox{ID: "not-mine", Function: other, Key: other + ":1"}) // partition 2: orphan too
	e.workers.Put("w3", ws("later"))
	e.workers.SetDown("w3", true)

	e.svc = e.newService()
	if err := e.svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"keep": "idle", "c": "idle", "later": "dead"}, e.states()); d != "" {
		t.Fatalf("states (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"w1/c", "w1/keep", "w3/later"}, e.workers.Sandboxes()); d != "" {
		t.Fatalf("worker sandboxes (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"keep": "ready", "c": "ready", "later": "ready"}, e.journaled()); d != "" {
		t.Fatalf("journal (-want +got):\n%s", d)
	}
	// The checkpoint compacted partition 1 to one entry.
	n := 0
	if err := e.journal.Replay(ctx, 1, func(uint64, journal.Entry) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("partition 1 has %d entries after recovery (%v), want 1 checkpoint", n, err)
	}
	// The recovered sandbox serves warm invokes.
	l := e.acquire(assignment.Request{Function: fn, Key: fn + ":1", MemoryMB: 128})
	if l.Cold || (l.SandboxID != "keep" && l.SandboxID != "c") {
		t.Fatalf("lease after recovery = %+v, want a warm recovered sandbox", l)
	}
	// The unreachable worker comes back: Reap finishes the job.
	e.workers.SetDown("w3", false)
	e.svc.Reap(ctx)
	if d := cmp.Diff([]string{"w1/c", "w1/keep"}, e.workers.Sandboxes()); d != "" {
		t.Fatalf("worker sandboxes after reap (-want +got):\n%s", d)
	}
	if err := e.svc.Recover(ctx); err == nil {
		t.Fatal("second Recover on a live table succeeded")
	}
}

// TestService_Recover_AfterServerCrash runs invokes, drops the service and
// the JetStream server without any shutdown (as kill -9 would), restarts
// both on the same store and checks that the sandboxes are back and that
// none is orphaned.
func TestService_Recover_AfterServerCrash(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, nil)
	e.srv.Close() // replace the default server with one on dir
	e.srv = natstest.Start(t, dir)
	e.openJournal()
	e.svc = e.newService()
	ctx := context.Background()

	idle := e.acquire(req("f", 128))
	busy := e.acquire(req("f", 128))
	gone := e.acquire(req("g", 256))
	e.release(idle, assignment.OutcomeOK)
	e.release(gone, assignment.OutcomeOK)
	// Creation interrupted: the worker made it but Ready never got written.
	e.workers.Put("w1", assignment.WorkerSandbox{ID: "interrupted", Function: "h", Key: "h:1"})
	if _, err := e.journal.Append(ctx, assignment.PartitionOf("h", e.cfg.Partitions), &journal.SandboxCreating{SandboxID: "interrupted", Function: "h", Key: "h:1", WorkerID: "w1", MemoryMB: 128}); err != nil {
		t.Fatal(err)
	}
	e.workers.Remove(gone.WorkerID, gone.SandboxID) // died while we were down

	e.srv.Close()
	e.srv = natstest.Start(t, dir)
	e.openJournal()
	e.svc = e.newService()
	if err := e.svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{idle.SandboxID: "idle", busy.SandboxID: "idle"}
	if d := cmp.Diff(want, e.states()); d != "" {
		t.Fatalf("states (-want +got):\n%s", d)
	}
	wantOnWorkers := []string{busy.WorkerID + "/" + busy.SandboxID, idle.WorkerID + "/" + idle.SandboxID}
	if wantOnWorkers[0] > wantOnWorkers[1] {
		wantOnWorkers[0], wantOnWorkers[1] = wantOnWorkers[1], wantOnWorkers[0]
	}
	if d := cmp.Diff(wantOnWorkers, e.workers.Sandboxes()); d != "" {
		t.Fatalf("worker sandboxes (-want +got):\n%s", d)
	}
	// The old lease is void: releasing it fails, the sandbox is idle.
	if err := e.svc.Release(busy, assignment.OutcomeOK); !errors.Is(err, assignment.ErrInvalidLease) && !errors.Is(err, assignment.ErrLeaseReleased) {
		t.Fatalf("Release of a pre-crash lease = %v", err)
	}
	// Reaping after the keep-alive leaves nothing anywhere.
	e.clock.Advance(e.cfg.KeepAlive)
	e.svc.Reap(ctx)
	if got := e.workers.Sandboxes(); len(got) != 0 {
		t.Fatalf("sandboxes left: %v", got)
	}
	if got := e.journaled(); len(got) != 0 {
		t.Fatalf("journal left: %v", got)
	}
}
