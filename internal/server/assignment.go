package server

import (
	"time"

	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/journal"
	"github.com/ignis-run/ignis/internal/placement/fleet"
	"github.com/ignis-run/ignis/internal/workerrpc"
)

// assignmentRole is the assignment service over its journal, following the
// fleet's registrations for placement, reaping idle sandboxes and
// compacting the journal in the background.
type assignmentRole struct {
	log   *slog.Logger
	asg   *assignment.Service
	loops loops
}

// start opens the journal, syncs the fleet view (the local worker
// registered itself before) and recovers the sandbox tables.
func (r *assignmentRole) start(ctx context.Context, sys *system) (err error) {
	cfg, log := sys.cfg, sys.log
	r.log = log
	jr, err := journal.Open(ctx, sys.js, journal.Config{Logger: log, Replicas: sys.replicas})
	if err != nil {
		return fmt.Errorf("opening journal: %w", err)
	}
	fl, err := openFleet(ctx, sys)
	if err != nil {
		return err
	}
	acfg := assignment.DefaultConfig()
	acfg.AccountConcurrency = cfg.AccountConcurrency
	if cfg.Compute.KeepAlive > 0 {
		acfg.KeepAlive = cfg.Compute.KeepAlive
		// A keep-alive shorter than the reap interval would otherwise
		// stretch to it: idle sandboxes outlive it by up to half of it.
		if half := acfg.KeepAlive / 2; half < acfg.ReapInterval {
			acfg.ReapInterval = max(half, 10*time.Millisecond)
		}
	}
	acfg.Logger = log
	// A worker heartbeats every third of the TTL: until the TTL passes
	// it is not stale, whatever the TTL.
	acfg.Placement.StaleAfter = cfg.Compute.HeartbeatTTL
	remote := workerrpc.NewClient(sys.nc)
	sys.workers = workerrpc.NewRouter(sys.local, remote)
	if r.asg, err = assignment.New(acfg, jr, sys.workers); err != nil {
		return err
	}

	runCtx := r.loops.context(ctx)
	events, err := fl.Watch(runCtx)
	if err != nil {
		return fmt.Errorf("watching workers: %w", err)
	}
	for synced := false; !synced; {
		select {
		case ev, ok := <-events:
			if !ok {
				return errors.New("worker watch ended before it synced")
			}
			r.asg.ApplyFleetEvent(ev)
			synced = ev.Op == fleet.OpSynced
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := r.asg.Recover(ctx); err != nil {
		return fmt.Errorf("recovering assignment state: %w", err)
	}
	r.loops.g.Go(func() error {
		for ev := range events {
			r.asg.ApplyFleetEvent(ev)
			if ev.Op == fleet.OpDelete {
				// Calls in flight to a worker that left end now, not
				// at their callers' deadlines.
				remote.Forget(ev.ID)
			}
		}
		return nil
	})
	r.loops.g.Go(func() error { return r.asg.Run(runCtx) })
	sys.asg = r.asg
	sys.fleet = fl
	return nil
}

// close stops following the fleet and reaping, then waits for the
// background destroys, while the workers still run.
func (r *assignmentRole) close(ctx context.Context) {
	if err := r.loops.stop(ctx); err != nil {
		r.log.Warn("stopping assignment's loops", "err", err)
	}
	if r.asg != nil {
		r.asg.Wait()
	}
}

// invokeRole is the invoke service: it leases sandboxes from assignment
// and forwards invokes to the workers, under the reserved concurrency it
// follows from the registry.
type invokeRole struct {
	loops loops
}

// start applies every reservation before the service is published: a
// reservation shrinks the pool every function shares.
func (r *invokeRole) start(ctx context.Context, sys *system) error {
	svc := invoke.New(sys.asg, sys.workers, sys.log)
	reservations, err := sys.reg.WatchReservations(r.loops.context(ctx))
	if err != nil {
		return err
	}
	if err := svc.FollowReservations(ctx, reservations, sys.reg.ReservationsWritten); err != nil {
		return err
	}
	sys.invoke = svc
	return nil
}

// close ends the reservations watch (the service's follower stops with it).
func (r *invokeRole) close(ctx context.Context) {
	_ = r.loops.stop(ctx)
}
