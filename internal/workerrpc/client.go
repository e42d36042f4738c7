package workerrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/worker"
)

// Client reaches workers on other nodes. It implements assignment.Workers
// and invoke.Workers. Safe for concurrent use.
type Client struct {
	nc *nats.Conn

	mu sync.Mutex
	// gone cancels the calls in flight to a worker, by worker ID, when
	// Forget learns it is dead: a call to a worker that vanished
	// mid-invoke would otherwise wait for its caller's deadline.
	gone map[string]map[*inflight]struct{}
}

type inflight struct{ cancel context.CancelCauseFunc }

var (
	_ assignment.Workers = (*Client)(nil)
	_ invoke.Workers     = (*Client)(nil)
)

// NewClient returns a client over nc.
func NewClient(nc *nats.Conn) *Client {
	return &Client{nc: nc, gone: make(map[string]map[*inflight]struct{})}
}

// ErrWorkerGone is the cause of the calls Forget ends.
var ErrWorkerGone = fmt.Errorf("the worker left the fleet: %w", errdefs.ErrUnavailable)

// errWorkerSilent ends an invoke whose worker did not answer within the
// function's timeout and a grace.
var errWorkerSilent = fmt.Errorf("the worker did not answer within the function's timeout: %w", errdefs.ErrUnavailable)

// Forget ends every call in flight to workerID with ErrWorkerGone (the
// capacity manager calls it when the worker's heartbeat lapses).
func (c *Client) Forget(workerID string) {
	c.mu.Lock()
	calls := c.gone[workerID]
	delete(c.gone, workerID)
	c.mu.Unlock()
	for f := range calls {
		f.cancel(ErrWorkerGone)
	}
}

// request sends one call to workerID and returns the reply, which is
// never an error reply.
func (c *Client) request(ctx context.Context, workerID, op string, cl call, body []byte) (*nats.Msg, error) {
	if err := ValidID(workerID); err != nil {
		return nil, fmt.Errorf("worker %s: %w", workerID, errdefs.ErrNotFound)
	}
	if dl, ok := ctx.Deadline(); ok {
		cl.Deadline = dl.UnixNano()
	}
	h, err := json.Marshal(cl)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	f := &inflight{cancel: cancel}
	c.mu.Lock()
	set := c.gone[workerID]
	if set == nil {
		set = make(map[*inflight]struct{})
		c.gone[workerID] = set
	}
	set[f] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if set := c.gone[workerID]; set != nil {
			delete(set, f)
			if len(set) == 0 {
				delete(c.gone, workerID)
			}
		}
		c.mu.Unlock()
	}()

	msg := &nats.Msg{Subject: subject(workerID, op), Header: nats.Header{hdrCall: []string{string(h)}}, Data: body}
	reply, err := c.nc.RequestMsgWithContext(ctx, msg)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("worker %s does not answer: %w: %w", workerID, errdefs.ErrUnavailable, invoke.ErrNotStarted)
	case context.Cause(ctx) == ErrWorkerGone, context.Cause(ctx) == errWorkerSilent:
		return nil, fmt.Errorf("worker %s: %w", workerID, context.Cause(ctx))
	case ctx.Err() != nil:
		return nil, fmt.Errorf("calling worker %s: %w", workerID, ctx.Err())
	default:
		return nil, fmt.Errorf("calling worker %s: %v: %w", workerID, err, errdefs.ErrUnavailable)
	}
	if e := reply.Header.Get(hdrError); e != "" {
		return nil, decodeError(workerID, e)
	}
	return reply, nil
}

// CreateSandbox implements assignment.Workers.
func (c *Client) CreateSandbox(ctx context.Context, workerID string, req assignment.CreateRequest) (assignment.Created, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return assignment.Created{}, err
	}
	reply, err := c.request(ctx, workerID, opCreate, call{}, body)
	if err != nil {
		return assignment.Created{}, err
	}
	var out assignment.Created
	if err := json.Unmarshal(reply.Data, &out); err != nil {
		return assignment.Created{}, fmt.Errorf("worker %s: unreadable create reply: %w", workerID, errdefs.ErrInternal)
	}
	return out, nil
}

// DestroySandbox implements assignment.Workers.
func (c *Client) DestroySandbox(ctx context.Context, workerID, sandboxID string) error {
	_, err := c.request(ctx, workerID, opDestroy, call{SandboxID: sandboxID}, nil)
	return err
}

// ListSandboxes implements assignment.Workers.
func (c *Client) ListSandboxes(ctx context.Context, workerID string) ([]assignment.WorkerSandbox, error) {
	reply, err := c.request(ctx, workerID, opList, call{}, nil)
	if err != nil {
		return nil, err
	}
	var out []assignment.WorkerSandbox
	if err := json.Unmarshal(reply.Data, &out); err != nil {
		return nil, fmt.Errorf("worker %s: unreadable list reply: %w", workerID, errdefs.ErrInternal)
	}
	return out, nil
}

// timeoutGrace is how long past a function's timeout a remote invoke
// waits for its worker: the worker's own timeout handling (kill, death
// report) and the way back. Past it the worker is presumed lost, without
// waiting for the fleet to say so.
const timeoutGrace = 2 * time.Second

// Invoke implements invoke.Workers.
func (c *Client) Invoke(ctx context.Context, workerID, sandboxID string, req worker.InvokeRequest) (worker.InvokeResult, error) {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, req.Timeout+timeoutGrace, errWorkerSilent)
		defer cancel()
	}
	reply, err := c.request(ctx, workerID, opInvoke, call{
		SandboxID:     sandboxID,
		RequestID:     req.RequestID,
		InvokedARN:    req.InvokedARN,
		ClientContext: req.ClientContext,
		TraceID:       req.TraceID,
		TenantID:      req.TenantID,
		Tail:          req.Tail,
	}, req.Payload)
	if err != nil {
		return worker.InvokeResult{}, err
	}
	var r result
	if err := json.Unmarshal([]byte(reply.Header.Get(hdrResult)), &r); err != nil {
		return worker.InvokeResult{}, fmt.Errorf("worker %s: unreadable invoke result: %w", workerID, errdefs.ErrInternal)
	}
	return worker.InvokeResult{
		Payload:       reply.Data,
		FunctionError: r.FunctionError,
		ErrorType:     r.ErrorType,
		LogTail:       r.LogTail,
		Duration:      r.Duration,
		MaxMemory:     r.MaxMemory,
		Dead:          r.Dead,
	}, nil
}

// Router sends each call to the local worker it names, or else over the
// network: the one Workers the assignment and invoke services use.
type Router struct {
	local  *invoke.Local
	remote *Client
}

var (
	_ assignment.Workers = (*Router)(nil)
	_ invoke.Workers     = (*Router)(nil)
)

// NewRouter routes to local (nil: no local worker) and remote.
func NewRouter(local *invoke.Local, remote *Client) *Router {
	return &Router{local: local, remote: remote}
}

func (r *Router) isLocal(workerID string) bool { return r.local != nil && r.local.Has(workerID) }

// CreateSandbox implements assignment.Workers.
func (r *Router) CreateSandbox(ctx context.Context, workerID string, req assignment.CreateRequest) (assignment.Created, error) {
	if r.isLocal(workerID) {
		return r.local.CreateSandbox(ctx, workerID, req)
	}
	return r.remote.CreateSandbox(ctx, workerID, req)
}

// DestroySandbox implements assignment.Workers.
func (r *Router) DestroySandbox(ctx context.Context, workerID, sandboxID string) error {
	if r.isLocal(workerID) {
		return r.local.DestroySandbox(ctx, workerID, sandboxID)
	}
	return r.remote.DestroySandbox(ctx, workerID, sandboxID)
}

// ListSandboxes implements assignment.Workers.
func (r *Router) ListSandboxes(ctx context.Context, workerID string) ([]assignment.WorkerSandbox, error) {
	if r.isLocal(workerID) {
		return r.local.ListSandboxes(ctx, workerID)
	}
	return r.remote.ListSandboxes(ctx, workerID)
}

// Invoke implements invoke.Workers.
func (r *Router) Invoke(ctx context.Context, workerID, sandboxID string, req worker.InvokeRequest) (worker.InvokeResult, error) {
	if r.isLocal(workerID) {
		return r.local.Invoke(ctx, workerID, sandboxID, req)
	}
	return r.remote.Invoke(ctx, workerID, sandboxID, req)
}
