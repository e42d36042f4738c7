package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/async"
	"github.com/ignis-run/ignis/internal/frontend"
	"github.com/ignis-run/ignis/internal/invoke"
)

// asyncRole is the event queue and its pollers (internal/async), feeding
// the invoke service.
type asyncRole struct {
	log   *slog.Logger
	loops loops
}

// start opens the event queue, routes Event invokes to it and starts the
// pollers.
func (r *asyncRole) start(ctx context.Context, sys *system) error {
	r.log = sys.log
	pol := async.DefaultPolicy()
	if sys.cfg.Compute.AsyncRetryDelay > 0 {
		pol.RetryDelay = sys.cfg.Compute.AsyncRetryDelay
	}
	svc, err := async.Open(ctx, async.Config{
		JetStream:  sys.js,
		Replicas:   sys.replicas,
		Registry:   sys.reg,
		Invoker:    sys.invoke,
		Logs:       sys.logs,
		MaxPollers: sys.cfg.Compute.AsyncPollers,
		Policy:     pol,
		Logger:     sys.log,
	})
	if err != nil {
		return fmt.Errorf("opening the event queue: %w", err)
	}
	sys.invoke.SetEventQueue(svc)
	sys.queue = svc
	runCtx := r.loops.context(ctx)
	r.loops.g.Go(func() error { return svc.Run(runCtx) })
	return nil
}

// close stops the pollers; running events go back to the queue.
func (r *asyncRole) close(ctx context.Context) {
	if err := r.loops.stop(ctx); err != nil {
		r.log.Warn("stopping the event queue's pollers", "err", err)
	}
}

// frontendInvoker is the frontend's Invoker: the invoke service plus the
// event queue's operator routes (frontend.QueueOperator).
type frontendInvoker struct {
	*invoke.Service
	queue *async.Service
	fleet func(context.Context) ([]api.FleetWorker, error)
}

// The invoke service serves the frontend, the async pollers and the event
// queue behind it; none of those packages imports another for it.
var (
	_ frontend.Invoker       = (*invoke.Service)(nil)
	_ async.Invoker          = (*invoke.Service)(nil)
	_ invoke.EventQueue      = (*async.Service)(nil)
	_ frontend.QueueOperator = frontendInvoker{}
	_ frontend.FleetOperator = frontendInvoker{}
)

func (f frontendInvoker) Fleet(ctx context.Context) ([]api.FleetWorker, error) { return f.fleet(ctx) }

func (f frontendInvoker) QueueMetrics(ctx context.Context) (any, error) {
	return f.queue.QueueMetrics(ctx)
}

func (f frontendInvoker) ReceiveQueue(ctx context.Context, name string, max int, wait time.Duration) ([]api.QueueMessage, error) {
	return f.queue.ReceiveQueue(ctx, name, max, wait)
}
