package invoke

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/worker"
)

// Local serves the assignment.Workers boundary and Workers from workers in
// this process.
type Local struct {
	workers map[string]*worker.Worker
}

var (
	_ assignment.Workers = (*Local)(nil)
	_ Workers            = (*Local)(nil)
)

// NewLocal returns a Local over ws, keyed by their IDs.
func NewLocal(ws ...*worker.Worker) *Local {
	m := make(map[string]*worker.Worker, len(ws))
	for _, w := range ws {
		m[w.ID()] = w
	}
	return &Local{workers: m}
}

// Has reports whether a worker of this process is named id.
func (l *Local) Has(id string) bool { return l.workers[id] != nil }

func (l *Local) worker(id string) (*worker.Worker, error) {
	w := l.workers[id]
	if w == nil {
		return nil, fmt.Errorf("worker %s: %w", id, errdefs.ErrNotFound)
	}
	return w, nil
}

// CreateSandbox implements assignment.Workers.
func (l *Local) CreateSandbox(ctx context.Context, workerID string, req assignment.CreateRequest) (assignment.Created, error) {
	w, err := l.worker(workerID)
	if err != nil {
		return assignment.Created{}, err
	}
	spec := req.Spec
	spec.Key = req.Key
	env, err := w.CreateSandbox(ctx, req.SandboxID, spec)
	if err != nil {
		return assignment.Created{}, err
	}
	h, _ := w.Handle(env.ID)
	b, err := json.Marshal(h)
	if err != nil {
		return assignment.Created{}, err
	}
	return assignment.Created{Handle: b}, nil
}

// DestroySandbox implements assignment.Workers.
func (l *Local) DestroySandbox(ctx context.Context, workerID, sandboxID string) error {
	w, err := l.worker(workerID)
	if err != nil {
		return err
	}
	return w.Destroy(ctx, sandboxID)
}

// ListSandboxes implements assignment.Workers.
func (l *Local) ListSandboxes(ctx context.Context, workerID string) ([]assignment.WorkerSandbox, error) {
	w, err := l.worker(workerID)
	if err != nil {
		return nil, err
	}
	envs := w.List()
	out := make([]assignment.WorkerSandbox, len(envs))
	for i, e := range envs {
		out[i] = assignment.WorkerSandbox{ID: e.ID, Function: e.Function, Key: e.Key}
	}
	return out, nil
}

// Invoke implements Workers.
func (l *Local) Invoke(ctx context.Context, workerID, sandboxID string, req worker.InvokeRequest) (worker.InvokeResult, error) {
	w, err := l.worker(workerID)
	if err != nil {
		return worker.InvokeResult{}, err
	}
	return w.Invoke(ctx, sandboxID, req)
}
