package invoke

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/frontend"
	"github.com/ignis-run/ignis/internal/registry"
	"github.com/ignis-run/ignis/internal/worker"
)

// Workers forwards an invoke to the worker holding a leased sandbox.
type Workers interface {
	Invoke(ctx context.Context, workerID, sandboxID string, req worker.InvokeRequest) (worker.InvokeResult, error)
}

// Service runs invocations. Safe for concurrent use.
type Service struct {
	asg     *assignment.Service
	workers Workers
	log     *slog.Logger

	mu sync.Mutex
	// reserved is the reservation last pushed to assignment per function
	// (-1: none). Guarded by mu.
	reserved map[string]int
	// events queues Event invocations; nil answers them Unavailable.
	// Guarded by mu.
	events EventQueue
}

// EventQueue durably queues an Event invocation (internal/async); it
// returns once the event is stored.
type EventQueue interface {
	Enqueue(ctx context.Context, req *frontend.InvokeRequest) error
}

// SetEventQueue routes Event invocations to q.
func (s *Service) SetEventQueue(q EventQueue) {
	s.mu.Lock()
	s.events = q
	s.mu.Unlock()
}

var _ frontend.Invoker = (*Service)(nil)

// New returns a Service leasing sandboxes from asg and invoking through workers.
func New(asg *assignment.Service, workers Workers, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{asg: asg, workers: workers, log: log.With("component", "invoke"), reserved: make(map[string]int)}
}

// ThrottleError is a throttled invoke; Reason is the TooManyRequestsException
// Reason the frontend reports.
type ThrottleError struct{ err *assignment.ThrottleError }

func (e *ThrottleError) Error() string          { return e.err.Error() }
func (e *ThrottleError) Unwrap() error          { return e.err }
func (e *ThrottleError) ThrottleReason() string { return string(e.err.Reason) }
func (e *ThrottleError) UserMessage() string    { return "Rate Exceeded." }

// Invoke runs one RequestResponse or DryRun invocation.
func (s *Service) Invoke(ctx context.Context, req *frontend.InvokeRequest) (*frontend.InvokeResult, error) {
	fn := &req.Function
	cfg := fn.Pick(rand.Float64())
	switch req.InvocationType {
	case "DryRun":
		return &frontend.InvokeResult{StatusCode: 204, ExecutedVersion: cfg.Version}, nil
	case "Event":
		// Queued even when the function is throttled; pollers run it
		// through this method as RequestResponse.
		s.mu.Lock()
		q := s.events
		s.mu.Unlock()
		if q == nil {
			return nil, fmt.Errorf("invoking %s: asynchronous invocation is not available: %w", cfg.Name, errdefs.ErrUnavailable)
		}
		if err := q.Enqueue(ctx, req); err != nil {
			return nil, err
		}
		return &frontend.InvokeResult{StatusCode: 202}, nil
	}
	s.syncReserved(cfg.Name, fn.ReservedConcurrency)

	key := cfg.Name + ":" + cfg.Version
	if cfg.Version == registry.Latest {
		// $LATEST changes in place: sandboxes are shared only within one revision.
		key += "#" + cfg.RevisionId
	}
	lease, err := s.asg.Acquire(ctx, assignment.Request{
		Function: cfg.Name,
		Key:      key,
		MemoryMB: cfg.MemorySize,
		Spec:     specOf(cfg, fn.FunctionArn),
	})
	if err != nil {
		var ie *worker.InitError
		var te *assignment.ThrottleError
		switch {
		case errors.As(err, &ie):
			return &frontend.InvokeResult{
				ExecutedVersion: cfg.Version,
				FunctionError:   "Unhandled",
				Payload:         ie.Body,
				LogResult:       logResult(req, ie.LogTail),
			}, nil
		case errors.As(err, &te):
			return nil, &ThrottleError{err: te}
		}
		return nil, fmt.Errorf("acquiring a sandbox for %s: %w", key, err)
	}

	invoked := fn.QualifiedArn
	if fn.Qualifier == registry.Latest {
		invoked = fn.FunctionArn
	}
	res, err := s.workers.Invoke(ctx, lease.WorkerID, lease.SandboxID, worker.InvokeRequest{
		RequestID:     req.RequestID,
		InvokedARN:    invoked,
		Payload:       req.Payload,
		ClientContext: string(req.ClientContext),
		TraceID:       req.TraceID,
		TenantID:      req.TenantID,
		Tail:          req.LogType == "Tail",
	})
	out := assignment.OutcomeOK
	switch {
	case err != nil:
		out = assignment.OutcomeCrash
	case res.Dead && res.ErrorType == "Sandbox.Timedout":
		out = assignment.OutcomeTimeout
	case res.Dead && res.ErrorType == "Runtime.OutOfMemory":
		out = assignment.OutcomeOutOfMemory
	case res.Dead:
		out = assignment.OutcomeCrash
	}
	if rerr := s.asg.Release(lease, out); rerr != nil {
		s.log.WarnContext(ctx, "releasing lease", "sandbox", lease.SandboxID, "err", rerr)
	}
	if err != nil {
		return nil, fmt.Errorf("invoking %s in sandbox %s: %w", key, lease.SandboxID, err)
	}
	return &frontend.InvokeResult{
		ExecutedVersion: cfg.Version,
		FunctionError:   res.FunctionError,
		Payload:         res.Payload,
		LogResult:       logResult(req, res.LogTail),
	}, nil
}

func logResult(req *frontend.InvokeRequest, tail []byte) string {
	if req.LogType != "Tail" || len(tail) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(tail)
}

// syncReserved pushes a function's reserved concurrency to assignment when
// the registry's value differs from the last one pushed.
func (s *Service) syncReserved(function string, reserved *int) {
	n := -1
	if reserved != nil {
		n = *reserved
	}
	s.mu.Lock()
	last, known := s.reserved[function]
	if known && last == n {
		s.mu.Unlock()
		return
	}
	s.reserved[function] = n
	s.mu.Unlock()
	if n < 0 {
		s.asg.DeleteReservedConcurrency(function)
		return
	}
	if err := s.asg.SetReservedConcurrency(function, n); err != nil {
		s.log.Warn("applying reserved concurrency", "function", function, "reserved", n, "err", err)
	}
}

func specOf(cfg *registry.FunctionConfig, arn string) worker.FunctionSpec {
	return worker.FunctionSpec{
		FunctionName: cfg.Name,
		FunctionARN:  arn,
		Version:      cfg.Version,
		Runtime:      cfg.Runtime,
		Handler:      cfg.Handler,
		MemoryMB:     cfg.MemorySize,
		Timeout:      time.Duration(cfg.Timeout) * time.Second,
		EphemeralMB:  cfg.EphemeralStorageSize,
		Environment:  cfg.Environment,
		CodeSha256:   cfg.CodeSha256,
	}
}
