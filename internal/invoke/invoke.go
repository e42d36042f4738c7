package invoke

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/lambdaerr"
	"github.com/ignis-run/ignis/internal/registry"
	"github.com/ignis-run/ignis/internal/snapshot"
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
	// reserved is the reservation last applied per function. Guarded by mu.
	reserved map[string]int
	// applied is the revision of the reservations last applied, and
	// appliedCh is closed (and replaced) each time it grows. Guarded by
	// mu; applied is also read without it on the invoke path.
	applied   atomic.Uint64
	appliedCh chan struct{}
	// written reports the revision of this server's last reservation
	// write (registry.ReservationsWritten); nil until FollowReservations.
	written atomic.Pointer[func() uint64]
	// events queues Event invocations; nil answers them Unavailable.
	// Guarded by mu.
	events EventQueue
}

// EventQueue durably queues an Event invocation (internal/async); it
// returns once the event is stored.
type EventQueue interface {
	Enqueue(ctx context.Context, req *Request) error
}

// SetEventQueue routes Event invocations to q.
func (s *Service) SetEventQueue(q EventQueue) {
	s.mu.Lock()
	s.events = q
	s.mu.Unlock()
}

// New returns a Service leasing sandboxes from asg and invoking through workers.
func New(asg *assignment.Service, workers Workers, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{asg: asg, workers: workers, log: log.With("component", "invoke"), reserved: make(map[string]int), appliedCh: make(chan struct{})}
}

// ThrottleError is a throttled invoke; Reason is the TooManyRequestsException
// Reason the frontend reports.
type ThrottleError struct{ err *assignment.ThrottleError }

func (e *ThrottleError) Error() string          { return e.err.Error() }
func (e *ThrottleError) Unwrap() error          { return e.err }
func (e *ThrottleError) ThrottleReason() string { return string(e.err.Reason) }
func (e *ThrottleError) UserMessage() string    { return "Rate Exceeded." }

// ErrNotStarted marks a worker call that provably never reached the
// sandbox (nobody answered the worker's address): the invoke may run
// elsewhere. Workers implementations wrap it.
var ErrNotStarted = errors.New("the invoke never reached its sandbox")

// WorkerError is a platform failure between the invoke service and the
// worker (the worker left the fleet mid-invoke, or did not answer): a
// ServiceException (HTTP 500), which SDKs retry.
type WorkerError struct{ err error }

func (e *WorkerError) Error() string { return e.err.Error() }

// Unwrap classifies it as internal: the cause (often "unavailable") is
// not the caller's to see as anything but a service failure.
func (e *WorkerError) Unwrap() error { return errdefs.ErrInternal }

// Cause is the worker call's error.
func (e *WorkerError) Cause() error { return e.err }

func (e *WorkerError) UserMessage() string {
	return "No worker could run this invoke, or the one running it failed or left the fleet; the invoke may be retried."
}

// Invoke runs one RequestResponse or DryRun invocation.
func (s *Service) Invoke(ctx context.Context, req *Request) (*Result, error) {
	fn := &req.Function
	cfg := fn.Pick(rand.Float64())
	if err := cfg.CheckInvocable(fn.QualifiedArn); err != nil {
		return nil, err
	}
	switch req.InvocationType {
	case "DryRun":
		return &Result{StatusCode: 204, ExecutedVersion: cfg.Version}, nil
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
		return &Result{StatusCode: 202}, nil
	}
	if err := s.awaitReservations(ctx); err != nil {
		return nil, err
	}
	key := cfg.Name + ":" + cfg.Version
	if cfg.Version == registry.Latest {
		// $LATEST changes in place: sandboxes are shared only within one revision.
		key += "#" + cfg.RevisionId
	}
	areq := assignment.Request{
		Function: cfg.Name,
		Key:      key,
		MemoryMB: cfg.MemorySize,
		Spec:     SpecOf(cfg, fn.FunctionArn),
	}
	invoked := fn.QualifiedArn
	if fn.Qualifier == registry.Latest {
		invoked = fn.FunctionArn
	}
	wreq := worker.InvokeRequest{
		RequestID:     req.RequestID,
		InvokedARN:    invoked,
		Payload:       req.Payload,
		ClientContext: string(req.ClientContext),
		TraceID:       req.TraceID,
		TenantID:      req.TenantID,
		Tail:          req.LogType == "Tail",
		Timeout:       areq.Spec.Timeout,
	}
	// A second attempt only when the first provably never started: an
	// invoke runs at most once.
	for attempt := 0; ; attempt++ {
		res, retry, err := s.invokeOnce(ctx, areq, wreq)
		if retry && attempt == 0 {
			s.log.WarnContext(ctx, "invoke never reached its sandbox; trying another", "function", key, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if res.initErr != nil {
			return &Result{
				ExecutedVersion: cfg.Version,
				FunctionError:   lambdaerr.Unhandled,
				Payload:         res.initErr.Body,
				LogResult:       logResult(req, res.initErr.LogTail),
			}, nil
		}
		return &Result{
			ExecutedVersion: cfg.Version,
			FunctionError:   res.FunctionError,
			Payload:         res.Payload,
			LogResult:       logResult(req, res.LogTail),
		}, nil
	}
}

// once is the outcome of invokeOnce: the worker's result, or the init
// failure of the sandbox created for it.
type once struct {
	worker.InvokeResult
	initErr *worker.InitError
}

// invokeOnce leases a sandbox, runs the invoke in it and releases it.
// retry reports an error after which the invoke provably never started.
func (s *Service) invokeOnce(ctx context.Context, areq assignment.Request, wreq worker.InvokeRequest) (res once, retry bool, err error) {
	lease, err := s.asg.Acquire(ctx, areq)
	if err != nil {
		var ie *worker.InitError
		var te *assignment.ThrottleError
		switch {
		case errors.As(err, &ie):
			return once{initErr: ie}, false, nil
		case errors.As(err, &te):
			return once{}, false, &ThrottleError{err: te}
		}
		err = fmt.Errorf("acquiring a sandbox for %s: %w", areq.Key, err)
		if errors.Is(err, errdefs.ErrUnavailable) && ctx.Err() == nil {
			// No worker could take it (the fleet is short a worker for
			// a moment): a service failure the caller may retry.
			return once{}, false, &WorkerError{err: err}
		}
		return once{}, false, err
	}
	wres, err := s.workers.Invoke(ctx, lease.WorkerID, lease.SandboxID, wreq)
	out := assignment.OutcomeOK
	switch {
	case err != nil && errdefs.IsInvalidArgument(err):
		// Refused before it ran; the sandbox is fine.
	case err != nil:
		out = assignment.OutcomeCrash
	case wres.Dead && wres.ErrorType == lambdaerr.SandboxTimedout:
		out = assignment.OutcomeTimeout
	case wres.Dead && wres.ErrorType == lambdaerr.RuntimeOutOfMemory:
		out = assignment.OutcomeOutOfMemory
	case wres.Dead:
		out = assignment.OutcomeCrash
	}
	if rerr := s.asg.Release(lease, out); rerr != nil {
		s.log.WarnContext(ctx, "releasing lease", "sandbox", lease.SandboxID, "err", rerr)
	}
	if err != nil {
		err = fmt.Errorf("invoking %s in sandbox %s on worker %s: %w", areq.Key, lease.SandboxID, lease.WorkerID, err)
		if errdefs.IsInvalidArgument(err) || ctx.Err() != nil {
			return once{}, false, err
		}
		// A sandbox the worker does not have never ran the invoke either.
		notStarted := errors.Is(err, ErrNotStarted) || errdefs.IsNotFound(err)
		return once{}, notStarted, &WorkerError{err: err}
	}
	return once{InvokeResult: wres}, false, nil
}

func logResult(req *Request, tail []byte) string {
	if req.LogType != "Tail" || len(tail) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(tail)
}

// FollowReservations applies every function's reserved concurrency, as the
// registry reports it, to the concurrency limits until updates closes. The
// first table is applied before it returns, so no invoke is admitted
// against a pool that does not yet know the reservations. written reports
// the revision of the reservations this server last wrote: an invoke waits
// until that revision is applied, so a PutFunctionConcurrency is in force
// for the next invoke through the same server (read-your-writes, as the
// registry's Resolve cache gives for configurations).
func (s *Service) FollowReservations(ctx context.Context, updates <-chan registry.Reservations, written func() uint64) error {
	select {
	case res, ok := <-updates:
		if !ok {
			return fmt.Errorf("reserved concurrency watch ended: %w", errdefs.ErrUnavailable)
		}
		s.applyReservations(res)
	case <-ctx.Done():
		return ctx.Err()
	}
	s.written.Store(&written)
	go func() {
		for res := range updates {
			s.applyReservations(res)
		}
		// No more updates: nobody must wait for one.
		s.applyReservations(registry.Reservations{Revision: ^uint64(0), Reserved: s.snapshotReserved()})
	}()
	return nil
}

// awaitReservations waits until the reservations this server wrote are
// applied. It costs three atomic loads when they are, which is always but
// for the first invoke after a write.
func (s *Service) awaitReservations(ctx context.Context) error {
	written := s.written.Load()
	if written == nil {
		return nil
	}
	want := (*written)()
	for s.applied.Load() < want {
		s.mu.Lock()
		ch := s.appliedCh
		s.mu.Unlock()
		if s.applied.Load() >= want {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for reserved concurrency revision %d: %w", want, ctx.Err())
		}
	}
	return nil
}

func (s *Service) snapshotReserved() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.reserved))
	for fn, n := range s.reserved {
		m[fn] = n
	}
	return m
}

// applyReservations makes the limits match res, then records its revision.
func (s *Service) applyReservations(res registry.Reservations) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fn, n := range res.Reserved {
		if last, ok := s.reserved[fn]; ok && last == n {
			continue
		}
		if err := s.asg.SetReservedConcurrency(fn, n); err != nil {
			s.log.Warn("applying reserved concurrency", "function", fn, "reserved", n, "err", err)
			continue
		}
		s.reserved[fn] = n
	}
	for fn := range s.reserved {
		if _, ok := res.Reserved[fn]; !ok {
			s.asg.DeleteReservedConcurrency(fn)
			delete(s.reserved, fn)
		}
	}
	if res.Revision > s.applied.Load() {
		s.applied.Store(res.Revision)
		close(s.appliedCh)
		s.appliedCh = make(chan struct{})
	}
}

// SpecOf is the worker's Spec of the version cfg; arn is the function's
// unqualified ARN.
func SpecOf(cfg *registry.FunctionConfig, arn string) fnspec.Spec {
	s := fnspec.Spec{
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
		Network:      cfg.Network,
	}
	if cfg.SnapStartOptimized {
		s.InitType = fnspec.InitSnapStart
		s.Snapshot = snapshot.KeyOf(cfg.Name, cfg.Version, cfg.RevisionId).String()
	}
	return s
}
