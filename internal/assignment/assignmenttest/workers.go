// Package assignmenttest provides a test double of assignment.Workers with
// fault injection, for unit tests of assignment and its callers. It keeps
// sandboxes in memory; it is never used in a release build. Integration
// tests use the real worker.
package assignmenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/errdefs"
)

// Workers is an in-memory fleet of workers. Safe for concurrent use.
type Workers struct {
	mu sync.Mutex
	// workers maps worker ID → sandbox ID → sandbox. Guarded by mu.
	workers map[string]map[string]assignment.WorkerSandbox
	// down holds workers that answer ErrUnavailable. Guarded by mu.
	down map[string]bool
	// createErr, if set, is returned by CreateSandbox (after leaving a
	// sandbox behind when leak is true). Guarded by mu.
	createErr error
	leak      bool
	// destroyErr, if set, is returned by DestroySandbox. Guarded by mu.
	destroyErr error
	// calls records every call as "create w1 sb-1" etc. Guarded by mu.
	calls []string
}

var _ assignment.Workers = (*Workers)(nil)

// New returns a fleet with the given (empty) workers.
func New(ids ...string) *Workers {
	w := &Workers{workers: map[string]map[string]assignment.WorkerSandbox{}, down: map[string]bool{}}
	for _, id := range ids {
		w.workers[id] = map[string]assignment.WorkerSandbox{}
	}
	return w
}

// SetDown makes a worker answer ErrUnavailable (true) or work again.
func (w *Workers) SetDown(id string, down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down[id] = down
}

// FailCreate makes every CreateSandbox fail with err (nil: succeed again).
// With leak, the failing worker keeps the sandbox anyway (an ambiguous
// failure).
func (w *Workers) FailCreate(err error, leak bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.createErr, w.leak = err, leak
}

// FailDestroy makes every DestroySandbox fail with err (nil: succeed again).
func (w *Workers) FailDestroy(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.destroyErr = err
}

// Put places a sandbox on a worker directly (e.g. an orphan).
func (w *Workers) Put(workerID string, sb assignment.WorkerSandbox) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.workers[workerID][sb.ID] = sb
}

// Remove deletes a sandbox from a worker behind assignment's back (a crash).
func (w *Workers) Remove(workerID, sandboxID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.workers[workerID], sandboxID)
}

// RemoveWorker makes a worker unknown (ListSandboxes: ErrNotFound).
func (w *Workers) RemoveWorker(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.workers, id)
}

// Sandboxes returns "worker/sandbox" for every sandbox, sorted.
func (w *Workers) Sandboxes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for wid, sbs := range w.workers {
		for id := range sbs {
			out = append(out, wid+"/"+id)
		}
	}
	slices.Sort(out)
	return out
}

// Calls returns the calls made so far and forgets them.
func (w *Workers) Calls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.calls
	w.calls = nil
	return c
}

func (w *Workers) reachLocked(id string) error {
	if w.down[id] {
		return fmt.Errorf("worker %s down: %w", id, errdefs.ErrUnavailable)
	}
	if _, ok := w.workers[id]; !ok {
		return fmt.Errorf("worker %s: %w", id, errdefs.ErrNotFound)
	}
	return nil
}

// CreateSandbox implements assignment.Workers.
func (w *Workers) CreateSandbox(ctx context.Context, workerID string, req assignment.CreateRequest) (assignment.Created, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, "create "+workerID+" "+req.SandboxID)
	if err := ctx.Err(); err != nil {
		return assignment.Created{}, err
	}
	if err := w.reachLocked(workerID); err != nil {
		return assignment.Created{}, err
	}
	if w.createErr != nil {
		if w.leak {
			w.workers[workerID][req.SandboxID] = assignment.WorkerSandbox{ID: req.SandboxID, Function: req.Function, Key: req.Key}
		}
		return assignment.Created{}, w.createErr
	}
	w.workers[workerID][req.SandboxID] = assignment.WorkerSandbox{ID: req.SandboxID, Function: req.Function, Key: req.Key}
	h, _ := json.Marshal(map[string]string{"driver": "fake", "id": req.SandboxID})
	return assignment.Created{Handle: h}, nil
}

// DestroySandbox implements assignment.Workers.
func (w *Workers) DestroySandbox(ctx context.Context, workerID, sandboxID string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, "destroy "+workerID+" "+sandboxID)
	if err := w.reachLocked(workerID); err != nil {
		return err
	}
	if w.destroyErr != nil {
		return w.destroyErr
	}
	delete(w.workers[workerID], sandboxID)
	return nil
}

// ListSandboxes implements assignment.Workers.
func (w *Workers) ListSandboxes(ctx context.Context, workerID string) ([]assignment.WorkerSandbox, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, "list "+workerID)
	if err := w.reachLocked(workerID); err != nil {
		return nil, err
	}
	var out []assignment.WorkerSandbox
	for _, sb := range w.workers[workerID] {
		out = append(out, sb)
	}
	slices.SortFunc(out, func(a, b assignment.WorkerSandbox) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
