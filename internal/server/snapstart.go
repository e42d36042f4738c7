package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/registry"
	"github.com/ignis-run/ignis/internal/snapshot"
	"github.com/ignis-run/ignis/internal/worker"
)

// snapStartRole makes the SnapStart snapshots of published versions on the
// local worker and settles their state, and deletes the snapshots of
// versions that are gone. It works from the registry alone: every version
// Pending there is a snapshot to make, whether it was published a moment
// ago or before a server was killed half way through making it (the
// restart's scan makes it again: the half-made image and sandbox are gone
// with the worker's recovery). So no version stays Pending.
//
// Snapshots are made one at a time: each is a full init on a worker whose
// CPUs also serve invokes.
type snapStartRole struct {
	log    *slog.Logger
	reg    *registry.Registry
	worker *worker.Worker
	loops  loops
}

// snapStartRescan is how often the role rescans without a change seen:
// a safety net for a missed watch update.
const snapStartRescan = 30 * time.Second

func (r *snapStartRole) start(ctx context.Context, sys *system) error {
	r.log, r.reg, r.worker = sys.log.With("component", "snapstart"), sys.reg, sys.worker
	runCtx := r.loops.context(ctx)
	changes, err := r.reg.WatchVersions(runCtx)
	if err != nil {
		return err
	}
	r.loops.g.Go(func() error {
		t := time.NewTicker(snapStartRescan)
		defer t.Stop()
		for {
			if err := r.scan(runCtx); err != nil && runCtx.Err() == nil {
				r.log.Warn("scanning SnapStart versions", "err", err)
			}
			select {
			case <-runCtx.Done():
				return nil
			case _, ok := <-changes:
				if !ok {
					return nil
				}
			case <-t.C:
			}
		}
	})
	return nil
}

func (r *snapStartRole) close(ctx context.Context) {
	if err := r.loops.stop(ctx); err != nil {
		r.log.Warn("stopping the SnapStart loop", "err", err)
	}
}

// scan makes the snapshot of every Pending version, then deletes the
// snapshots no version owns any more.
func (r *snapStartRole) scan(ctx context.Context) error {
	versions, err := r.reg.SnapStartVersions(ctx)
	if err != nil {
		return err
	}
	owned := make(map[snapshot.Key]bool, len(versions))
	for i := range versions {
		c := &versions[i]
		key := snapshot.KeyOf(c.Name, c.Version, c.RevisionId)
		if c.EffectiveState() == registry.StatePending {
			r.make(ctx, c, key)
		}
		owned[key] = true
	}
	// Rescan: a version deleted while its snapshot was being made.
	if versions, err = r.reg.SnapStartVersions(ctx); err != nil {
		return err
	}
	clear(owned)
	for i := range versions {
		c := &versions[i]
		if c.EffectiveState() != registry.StateFailed {
			owned[snapshot.KeyOf(c.Name, c.Version, c.RevisionId)] = true
		}
	}
	keys, err := r.worker.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if owned[k] {
			continue
		}
		if err := r.worker.DeleteSnapshot(ctx, k); err != nil {
			r.log.Warn("deleting snapshot", "snapshot", k.String(), "err", err)
			continue
		}
		r.log.Info("snapshot deleted", "snapshot", k.String())
	}
	return nil
}

// make makes one version's snapshot and settles the version.
func (r *snapStartRole) make(ctx context.Context, c *registry.FunctionConfig, key snapshot.Key) {
	log := r.log.With("function", c.Name, "version", c.Version)
	spec := invoke.SpecOf(c, r.reg.ARNs().Function(c.Name))
	res, err := r.worker.Snapshot(ctx, spec, key)
	if ctx.Err() != nil {
		// Shutting down: the version stays Pending, and the next
		// start makes its snapshot.
		return
	}
	st := registry.VersionState{State: registry.StateActive, Optimized: res.Optimized}
	var ie *worker.InitError
	switch {
	case errors.As(err, &ie):
		st = registry.VersionState{State: registry.StateFailed, StateReasonCode: initFailureCode(ie.ErrorType),
			StateReason: fmt.Sprintf("%s: %s", ie.ErrorType, errorMessage(ie.Body))}
	case err != nil:
		log.Error("making snapshot", "err", err)
		st = registry.VersionState{State: registry.StateFailed, StateReasonCode: "InternalError",
			StateReason: "The snapshot of the function could not be created; see the server log."}
	case !res.Optimized:
		log.Info("sandbox driver cannot checkpoint: the version initialises on demand (OptimizationStatus Off)")
	}
	if _, err := r.reg.SetVersionState(ctx, c.Name, c.Version, c.RevisionId, st); err != nil {
		log.Warn("settling version state", "err", err)
	}
}

// initFailureCode is the StateReasonCode of a snapshot's failed init.
func initFailureCode(errorType string) string {
	switch errorType {
	case "Runtime.InitTimeout", "Sandbox.Timedout":
		return "FunctionError.InitTimeout"
	}
	return "FunctionError.RuntimeInitError"
}

// errorMessage is the errorMessage of a Lambda error body, bounded.
func errorMessage(body []byte) string {
	var m struct {
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &m)
	if len(m.ErrorMessage) > 512 {
		return m.ErrorMessage[:512]
	}
	return m.ErrorMessage
}
