package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/placement/fleet"
	"github.com/ignis-run/ignis/internal/runtimes"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/worker"
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
	loops  loops
}

// start builds the worker, reaps the sandboxes a previous run left, and
// registers the worker, so that assignment, started next, finds it.
func (r *workerRole) start(ctx context.Context, sys *system) (err error) {
	cfg, log := sys.cfg, sys.log
	r.log = log
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
	sys.workers = invoke.NewLocal(r.worker)
	sys.worker = r.worker

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
			r.worker.PrefetchCode(runCtx, sha)
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
		err := r.fleet.KeepAlive(runCtx, self, fleet.DefaultConfig().TTL/3, func() fleet.Load {
			return fleet.Load{Sandboxes: len(r.worker.List())}
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

// close stops the heartbeat and the prefetch, destroys every sandbox,
// closes the driver and deregisters the worker.
func (r *workerRole) close(ctx context.Context) {
	if err := r.loops.stop(ctx); err != nil {
		r.log.Warn("stopping the worker's loops", "err", err)
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

// openFleet opens the worker registry: the worker role registers in it,
// assignment follows it.
func openFleet(ctx context.Context, sys *system) (*fleet.Registry, error) {
	fcfg := fleet.DefaultConfig()
	fcfg.Logger = sys.log
	fl, err := fleet.Open(ctx, sys.js, fcfg)
	if err != nil {
		return nil, fmt.Errorf("opening worker registry: %w", err)
	}
	return fl, nil
}
