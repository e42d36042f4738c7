package assignment

import (
	"context"
	"encoding/json"

	"github.com/ignis-run/ignis/internal/fnspec"
)

// Workers is the boundary between assignment and the workers that run
// sandboxes. The wiring (internal/worker's in-process client, later a
// network client) implements it; assignmenttest.Workers is a fault-injecting
// double for unit tests.
//
// Every method may be called concurrently, and for many workers at once.
// Errors use errdefs classes: ErrNotFound for an unknown worker or sandbox,
// ErrUnavailable for a worker that cannot be reached or has no room (Acquire
// then tries another worker), anything else is final for that attempt.
type Workers interface {
	// CreateSandbox creates sandbox req.SandboxID for req.Key on worker and
	// returns once it can take its first invoke. It honours ctx: when ctx
	// ends the worker removes whatever it built. On error nothing may be
	// left behind; assignment still calls DestroySandbox afterwards (so an
	// ambiguous network failure cannot leak a sandbox).
	CreateSandbox(ctx context.Context, workerID string, req CreateRequest) (Created, error)
	// DestroySandbox kills the sandbox and frees everything it holds.
	// Idempotent: destroying an unknown or already destroyed sandbox
	// returns nil or an ErrNotFound error (both mean "gone").
	DestroySandbox(ctx context.Context, workerID, sandboxID string) error
	// ListSandboxes reports every sandbox the worker has, including ones
	// it recovered after its own restart. ErrNotFound if the worker does
	// not exist (left the fleet).
	ListSandboxes(ctx context.Context, workerID string) ([]WorkerSandbox, error)
}

// CreateRequest asks a worker for one sandbox.
type CreateRequest struct {
	// SandboxID is chosen by assignment (journaled before the call):
	// 1–64 of [a-z0-9-], usable as sandbox.Spec.ID.
	SandboxID string
	// Function is the function name; Key the immutable configuration.
	Function, Key string
	// MemoryMB is the function's memory size.
	MemoryMB int
	// Spec is Request.Spec, passed through untouched: what the worker
	// builds the sandbox from (resolved function configuration, code
	// digest, runtime, environment).
	Spec fnspec.Spec
}

// Created describes a sandbox the worker just made.
type Created struct {
	// Handle is the driver's sandbox.Handle as JSON; it is journaled.
	Handle json.RawMessage
}

// WorkerSandbox is one sandbox a worker reports.
type WorkerSandbox struct {
	ID       string
	Function string
	Key      string
}
