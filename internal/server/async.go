package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/async"
	"github.com/ignis-run/ignis/internal/frontend"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/registry"
)

// asyncRole is the event queue and its pollers (internal/async), feeding
// the invoke service.
type asyncRole struct {
	svc    *async.Service
	cancel context.CancelFunc
	done   chan struct{}
}

// startAsync opens the event queue, routes Event invokes to it and starts
// the pollers.
func startAsync(ctx context.Context, cfg Config, js jetstream.JetStream, reg *registry.Registry, c *compute, log *slog.Logger) (*asyncRole, error) {
	inv := c.invoke
	pol := async.DefaultPolicy()
	if cfg.Compute.AsyncRetryDelay > 0 {
		pol.RetryDelay = cfg.Compute.AsyncRetryDelay
	}
	svc, err := async.Open(ctx, async.Config{
		JetStream:  js,
		Registry:   reg,
		Invoker:    inv,
		Logs:       c.logs,
		MaxPollers: cfg.Compute.AsyncPollers,
		Policy:     pol,
		Logger:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the event queue: %w", err)
	}
	inv.SetEventQueue(svc)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &asyncRole{svc: svc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		_ = svc.Run(runCtx)
	}()
	return a, nil
}

// close stops the pollers; running events go back to the queue.
func (a *asyncRole) close(ctx context.Context) {
	a.cancel()
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}

// frontendInvoker is the frontend's Invoker: the invoke service plus the
// event queue's operator routes (frontend.QueueOperator).
type frontendInvoker struct {
	*invoke.Service
	queue *async.Service
}

// The invoke service serves the frontend, the async pollers and the event
// queue behind it; none of those packages imports another for it.
var (
	_ frontend.Invoker       = (*invoke.Service)(nil)
	_ async.Invoker          = (*invoke.Service)(nil)
	_ invoke.EventQueue      = (*async.Service)(nil)
	_ frontend.QueueOperator = frontendInvoker{}
)

func (f frontendInvoker) QueueMetrics(ctx context.Context) (any, error) {
	return f.queue.QueueMetrics(ctx)
}

func (f frontendInvoker) ReceiveQueue(ctx context.Context, name string, max int, wait time.Duration) ([]api.QueueMessage, error) {
	return f.queue.ReceiveQueue(ctx, name, max, wait)
}
