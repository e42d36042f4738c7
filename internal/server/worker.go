package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/placement"
	"github.com/ignis-run/ignis/internal/placement/fleet"
	"github.com/ignis-run/ignis/internal/runtimes"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/worker"
	"github.com/ignis-run/ignis/internal/workerrpc"
)

// workerRole is the local worker: the sandbox driver, the worker running
// sandboxes through it, its registration in the fleet (kept alive while it
// runs, removed at close) and the prefetch of deployed code into its cache.
type workerRole struct {
	log    *slog.Logger
	net    *sandboxnet.Network // nil without sandbox networking
	driver sandbox.Driver
	worker *worker.Worker
	fleet  *fleet.Registry
	// rpc serves the worker to other nodes; nil on a node alone.
	rpc          *workerrpc.Server
	heartbeatTTL time.Duration
	loops        loops
}

// start builds the worker, reaps the sandboxes a previous run left, and
// registers the worker, so that assignment, started next, finds it.
func (r *workerRole) start(ctx context.Context, sys *system) (err error) {
	cfg, log := sys.cfg, sys.log
	r.log, r.heartbeatTTL = log, cfg.Compute.HeartbeatTTL
	workDir := filepath.Join(cfg.DataDir, "worker")
	if cfg.Compute.SandboxNetwork {
		ncfg, err := cfg.Compute.sandboxNetConfig()
		if err != nil {
			return err
		}
		ncfg.Logger = log
		if r.net, err = sandboxnet.New(ctx, ncfg); err != nil {
			return fmt.Errorf("%w (--sandbox-network=false runs sandboxes without a network)", err)
		}
	}
	if r.driver, err = newDriver(ctx, cfg, workDir, r.net, log); err != nil {
		return err
	}
	log.InfoContext(ctx, "sandbox driver", "driver", r.driver.Name())
	sys.driver = r.driver

	runtimeDir := filepath.Join(workDir, "runtime")
	if err := runtimes.Install(runtimeDir); err != nil {
		return fmt.Errorf("installing runtime bootstraps: %w", err)
	}
	agent := cfg.Compute.AgentBinary
	if agent == "" {
		if agent, err = worker.LocateAgent(ctx, filepath.Join(workDir, "bin")); err != nil {
			return err
		}
	}
	wcfg := worker.DefaultConfig()
	wcfg.ID, wcfg.DataDir, wcfg.AgentBinary, wcfg.RuntimeDir, wcfg.Region = cfg.Compute.WorkerID, workDir, agent, runtimeDir, cfg.Region
	if r.worker, err = worker.New(wcfg, r.driver, sys.reg, sys.logs, log); err != nil {
		return err
	}
	if n, err := r.worker.Recover(ctx); err != nil {
		return fmt.Errorf("recovering sandboxes: %w", err)
	} else if n > 0 {
		log.InfoContext(ctx, "reaped sandboxes left by a previous run", "count", n)
	}
	sys.local = invoke.NewLocal(r.worker)
	sys.worker = r.worker
	if cfg.Cluster.clustered() {
		// Before registering: a node that finds the worker in the fleet
		// must find it answering.
		if r.rpc, err = workerrpc.Serve(sys.nc, r.worker, log); err != nil {
			return err
		}
	}

	if r.fleet, err = openFleet(ctx, sys); err != nil {
		return err
	}
	self := fleet.Registration{
		ID:        cfg.Compute.WorkerID,
		MemoryMB:  cfg.Compute.WorkerMemoryMB,
		CPUMillis: cfg.Compute.WorkerCPUMillis,
		Started:   time.Now(),
	}
	if err := r.fleet.Register(ctx, self); err != nil {
		return fmt.Errorf("registering worker %s: %w", self.ID, err)
	}

	runCtx := r.loops.context(ctx)
	codes, err := sys.reg.WatchCode(runCtx)
	if err != nil {
		return err
	}
	r.loops.g.Go(func() error {
		// One at a time: a burst of deploys queues in the channel rather
		// than unpacking side by side with cold starts.
		for sha := range codes {
			if r.placementLikely(runCtx) {
				r.worker.PrefetchCode(runCtx, sha)
			}
		}
		return nil
	})
	if r.net != nil {
		r.loops.g.Go(func() error {
			// Rules of sandboxes whose namespaces were still being torn
			// down when New swept (those the restart's Recover killed).
			t := time.NewTicker(30 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return nil
				case <-t.C:
					if err := r.net.Sweep(runCtx); err != nil && runCtx.Err() == nil {
						log.Warn("removing rules of vanished sandboxes", "err", err)
					}
				}
			}
		})
	}
	r.loops.g.Go(func() error {
		err := r.fleet.KeepAlive(runCtx, self, sys.cfg.Compute.HeartbeatTTL/3, func() fleet.Load {
			envs := r.worker.List()
			l := fleet.Load{Sandboxes: len(envs)}
			for _, e := range envs {
				l.AllocatedMB += e.MemoryMB
			}
			return l
		}, func(ctx context.Context) {
			// Assignment forgot them with the registration: nobody
			// would ever reuse or destroy them.
			if n := r.worker.DestroyAll(ctx); n > 0 {
				log.Warn("registration lapsed: destroyed the worker's sandboxes, which assignment dropped", "count", n)
			}
		})
		// Said when it happens, not at close: placement stops seeing
		// this worker once its registration expires.
		if err != nil && runCtx.Err() == nil {
			log.Error("worker heartbeat stopped", "err", err)
		}
		return nil
	})
	return nil
}

// close drains the worker: it stops the heartbeat and the prefetch, marks
// the worker draining (placement sends it nothing new), waits for the
// calls other nodes have under way, destroys every sandbox, closes the
// driver and deregisters the worker.
func (r *workerRole) close(ctx context.Context) {
	if err := r.loops.stop(ctx); err != nil {
		r.log.Warn("stopping the worker's loops", "err", err)
	}
	if r.fleet != nil && r.rpc != nil {
		if err := r.fleet.SetDraining(ctx, r.worker.ID(), true); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("marking the worker draining", "worker", r.worker.ID(), "err", err)
		}
	}
	if r.rpc != nil {
		r.awaitDrained(ctx)
		r.rpc.Close(ctx)
	}
	if r.worker != nil {
		r.worker.Close(ctx)
	}
	// Drivers that keep resources of their own (the jail's prestarted
	// setup stages) release them last.
	if cl, ok := r.driver.(interface{ Close() error }); ok {
		if err := cl.Close(); err != nil {
			r.log.Warn("closing sandbox driver", "err", err)
		}
	}
	if r.net != nil {
		r.net.Close()
	}
	if r.fleet != nil {
		if err := r.fleet.Deregister(ctx, r.worker.ID()); err != nil {
			r.log.Warn("deregistering worker", "worker", r.worker.ID(), "err", err)
		}
	}
}

// prefetchChoices is how many of placement's choices for a new function's
// sandboxes prefetch its code: the first two (a function's sandboxes
// spread, so the second is likely soon).
const prefetchChoices = 2

// placementLikely reports whether placement would put one of the first
// sandboxes of a newly deployed function on this worker: the deploy is
// then worth unpacking here ahead of the first cold start. It runs the
// placement policy itself over the fleet's registrations and their
// heartbeat loads; on a fleet it cannot read, it says yes.
func (r *workerRole) placementLikely(ctx context.Context) bool {
	regs, err := r.fleet.List(ctx)
	if err != nil {
		return true
	}
	cfg := placement.DefaultConfig()
	cfg.StaleAfter = r.heartbeatTTL
	return placedHere(&cfg, r.worker.ID(), regs, prefetchChoices, time.Now())
}

// placedHere reports whether self is among placement's first k choices,
// over regs, for a new 128 MB function.
func placedHere(cfg *placement.Config, self string, regs []fleet.Registration, k int, now time.Time) bool {
	ws := make([]placement.Worker, len(regs))
	for i := range regs {
		ws[i] = regs[i].Placement()
	}
	req := placement.Request{MemoryMB: 128}
	for range k {
		i, err := placement.Pick(cfg, ws, req, now)
		if err != nil {
			return false
		}
		if ws[i].ID == self {
			return true
		}
		req.Exclude = append(req.Exclude, ws[i].ID)
	}
	return false
}

// awaitDrained waits, while ctx lasts, until assignment has taken every
// sandbox off the draining worker: idle ones at once, busy ones as their
// invokes end.
func (r *workerRole) awaitDrained(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for len(r.worker.List()) > 0 {
		select {
		case <-ctx.Done():
			r.log.Warn("stopping with sandboxes still in use", "worker", r.worker.ID(), "sandboxes", len(r.worker.List()))
			return
		case <-t.C:
		}
	}
}

// openFleet opens the worker registry: the worker role registers in it,
// assignment follows it.
func openFleet(ctx context.Context, sys *system) (*fleet.Registry, error) {
	fcfg := fleet.DefaultConfig()
	fcfg.TTL = sys.cfg.Compute.HeartbeatTTL
	fcfg.Logger = sys.log
	fcfg.Replicas = sys.replicas
	fl, err := fleet.Open(ctx, sys.js, fcfg)
	if err != nil {
		return nil, fmt.Errorf("opening worker registry: %w", err)
	}
	return fl, nil
}
