package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/async"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/logs"
	"github.com/ignis-run/ignis/internal/placement/fleet"
	"github.com/ignis-run/ignis/internal/registry"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/worker"
	"github.com/ignis-run/ignis/internal/workerrpc"
)

// A role is one part of the platform a server runs: the function logs,
// the worker, assignment, the invoke service, the event queue. Server.Start
// starts the roles of newRoles in order, Server.Close closes the started
// ones in reverse:
//
//	start: logs → worker → snapstart → assignment → invoke → async
//	close: async → invoke → assignment → snapstart → worker → logs
//
// so a role is closed while everything it uses still runs: the pollers stop
// before the invoke service, assignment drains its background destroys
// before the worker destroys what is left, the logs flush last.
type role interface {
	// start builds the role from what sys holds, publishes what later
	// roles use in sys, starts its background loops and returns once the
	// role can serve. ctx bounds the start only; the loops run until close.
	start(ctx context.Context, sys *system) error
	// close stops the role's loops, waits for them while ctx lasts, and
	// releases what start built. It is called once, also after a start
	// that failed part way, and must cope with whatever start got to.
	close(ctx context.Context)
}

// newRoles returns the roles of `ignis server` cl asks for (--roles), in
// start order. Adding a role is one entry here.
func newRoles(cl ClusterConfig) []role {
	roles := []role{&logsRole{}} // workers write to it, frontends read it
	if cl.has(RoleWorker) {
		// Each worker node makes its own snapshots: they live on the
		// worker that made them until the chunk store shares them.
		roles = append(roles, &workerRole{}, &snapStartRole{})
	}
	if cl.has(RoleAssignment) {
		roles = append(roles, &assignmentRole{})
	}
	if cl.has(RoleFrontend) {
		roles = append(roles, &invokeRole{}, &asyncRole{})
	}
	return roles
}

// system is what the roles of one server share: the infrastructure the
// server starts before any role, and the services each role publishes for
// the roles after it (in newRoles order). Only Server.Start's goroutine
// writes it, before serving begins.
type system struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream
	reg *registry.Registry
	// replicas is the replication factor of every stream and bucket.
	replicas int

	// Published by logsRole.
	logs    *logs.Store
	logsAPI http.Handler
	// Published by workerRole (nil on a node without it): the local
	// worker's driver, the in-process adapter over the worker, and the
	// worker itself (SnapStart makes its snapshots there).
	driver sandbox.Driver
	local  *invoke.Local
	worker *worker.Worker
	// Published by assignmentRole. workers is how the assignment and
	// invoke services reach every worker: the local one in process, the
	// others over the network.
	asg     *assignment.Service
	workers *workerrpc.Router
	fleet   *fleet.Registry
	// Published by invokeRole.
	invoke *invoke.Service
	// Published by asyncRole.
	queue *async.Service
}

// loops runs a role's background goroutines: started by the role's start,
// under a context of their own, until stop.
type loops struct {
	cancel context.CancelFunc
	g      errgroup.Group
}

// context returns the context the loops run under: ctx's values without
// its cancellation, ending at stop. Call it once, in start.
func (l *loops) context(ctx context.Context) context.Context {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	return runCtx
}

// stop cancels the loops and waits for them to return, or for ctx to end
// (then it returns nil: the server is past its shutdown deadline anyway).
// It returns the first error a loop returned other than its cancellation.
// A stop before context returns at once.
func (l *loops) stop(ctx context.Context) error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	done := make(chan error, 1)
	go func() { done <- l.g.Wait() }()
	select {
	case err := <-done:
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-ctx.Done():
		return nil
	}
}

// logsRole is the function log store: workers and pollers append to it,
// the frontend serves it as the CloudWatch Logs API.
type logsRole struct {
	store *logs.Store
}

func (r *logsRole) start(ctx context.Context, sys *system) error {
	lcfg := logs.DefaultConfig()
	lcfg.MaxAge = sys.cfg.Compute.LogRetention
	lcfg.Replicas = sys.replicas
	store, err := logs.Open(ctx, sys.nc, lcfg, sys.log, nil)
	if err != nil {
		return fmt.Errorf("opening log store: %w", err)
	}
	r.store = store
	sys.logs = store
	sys.logsAPI = logs.NewHandler(store, logs.HandlerConfig{Region: sys.cfg.Region, AccountID: sys.cfg.AccountID, Logger: sys.log})
	return nil
}

// close flushes the logs buffered so far.
func (r *logsRole) close(ctx context.Context) {
	if r.store != nil {
		_ = r.store.Close(ctx)
	}
}
