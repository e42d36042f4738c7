package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/logs"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/snapshot"
)

// SnapStart on the worker (spec §8):
//
//	Snapshot:  create ─► Init{Snapshot} ─► runtime inits, runs before-snapshot
//	           hooks, waits in /restore/next ─► InitDone ─► Checkpoint into the
//	           store ─► sandbox gone
//	CreateSandbox of a snap-start spec whose snapshot is here:
//	           Restore (driver) ─► Restore (agent): after-restore hooks ─►
//	           RestoreDone ─► ready; the first invoke reports Restore Duration
//
// Uniqueness after restore: the guest kernel's entropy comes from the host
// at every read (gVisor's getrandom and /dev/urandom are served from the
// host), request ids come from the frontend, and the runtime re-seeds its
// own generators (Python's random) before the after-restore hooks.

// restoreHooksLimit bounds the after-restore hooks (Lambda: 10 s, then
// SnapStartTimeoutException).
const restoreHooksLimit = 10 * time.Second

// snapshotInitTimeout is the init limit of a snapshot's init: the larger
// of 130 s and the function timeout (spec §8).
func snapshotInitTimeout(spec fnspec.Spec) time.Duration {
	return min(max(130*time.Second, spec.Timeout), 900*time.Second)
}

// SnapshotResult is the outcome of Snapshot.
type SnapshotResult struct {
	// Optimized: an image was made and environments of the version restore
	// from it. False when this worker's driver cannot checkpoint: the
	// version then initialises on demand (OptimizationStatus Off).
	Optimized bool
	Init      time.Duration
	Bytes     int64
}

// canSnapshot reports whether the driver checkpoints and restores here.
func (w *Worker) canSnapshot() (sandbox.Restorer, bool) {
	r, ok := w.driver.(sandbox.Restorer)
	return r, ok && w.driver.Capabilities().Checkpoint
}

// Snapshot makes the SnapStart snapshot of a published version: a sandbox
// runs the function's init and before-snapshot hooks and is checkpointed
// into the worker's snapshot store under key. An init failure returns an
// *InitError (the version fails with its reason); nothing is left behind
// on any error.
func (w *Worker) Snapshot(ctx context.Context, spec fnspec.Spec, key snapshot.Key) (SnapshotResult, error) {
	if err := key.Validate(); err != nil {
		return SnapshotResult{}, err
	}
	if _, ok := w.canSnapshot(); !ok {
		return SnapshotResult{}, nil
	}
	select {
	case w.creating <- struct{}{}:
		defer func() { <-w.creating }()
	case <-ctx.Done():
		return SnapshotResult{}, ctx.Err()
	}
	start := time.Now()
	codeDir, err := w.code.Get(ctx, spec.CodeSha256)
	if err != nil {
		return SnapshotResult{}, err
	}
	spec.InitType, spec.Snapshot = fnspec.InitSnapStart, ""
	id := newSandboxID()
	env, sb, err := w.startSandbox(ctx, id, spec, codeDir, start)
	if err != nil {
		return SnapshotResult{}, err
	}
	defer w.destroy(context.WithoutCancel(ctx), env)
	limit := snapshotInitTimeout(spec)
	initDur, initErr, err := env.sess.initRuntime(ctx, w.initMessage(spec, "", true), limit+time.Second)
	if err != nil {
		return SnapshotResult{}, fmt.Errorf("initialising snapshot sandbox %s: %w", id, err)
	}
	// The init's output belongs to the function's log, as Lambda logs a
	// SnapStart init at publish time.
	lines := env.sess.takeLines()
	status := ""
	if initErr != nil {
		status = "\tPhase: init\tStatus: error\tError Type: " + initErr.ErrorType
	}
	lines = append(lines, fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms%s", float64(initDur)/float64(time.Millisecond), status))
	w.appendLogs(ctx, env, lines)
	if initErr != nil {
		initErr.LogTail = tail(lines)
		return SnapshotResult{}, initErr
	}

	ck, ok := sb.(sandbox.Checkpointer)
	if !ok {
		return SnapshotResult{}, fmt.Errorf("sandbox %s cannot checkpoint: %w", id, sandbox.ErrUnsupported)
	}
	dir, err := w.snaps.Create(ctx, key)
	if err != nil {
		return SnapshotResult{}, err
	}
	if err := ck.Checkpoint(ctx, snapshot.ImageDir(dir)); err != nil {
		w.snaps.Abort(dir)
		return SnapshotResult{}, fmt.Errorf("checkpointing sandbox %s: %w", id, err)
	}
	meta := snapshot.Meta{Driver: w.driver.Name(), AgentProtocol: agentproto.Version, Created: time.Now().UTC(), InitDuration: initDur}
	if err := w.snaps.Commit(ctx, key, dir, meta); err != nil {
		w.snaps.Abort(dir)
		return SnapshotResult{}, err
	}
	_, meta, err = w.snaps.Open(ctx, key)
	if err != nil {
		return SnapshotResult{}, err
	}
	w.log.Info("snapshot made", "snapshot", key.String(), "init", initDur, "bytes", meta.Bytes, "total", time.Since(start))
	return SnapshotResult{Optimized: true, Init: initDur, Bytes: meta.Bytes}, nil
}

// snapshotFor returns the directory of spec's snapshot when this worker
// can restore from it.
func (w *Worker) snapshotFor(ctx context.Context, spec fnspec.Spec) (string, bool) {
	if _, ok := w.canSnapshot(); !ok {
		return "", false
	}
	key, err := snapshot.ParseKey(spec.Snapshot)
	if err != nil {
		return "", false
	}
	dir, meta, err := w.snaps.Open(ctx, key)
	if err != nil {
		if !errors.Is(err, snapshot.ErrNotFound) {
			w.log.Warn("opening snapshot", "snapshot", spec.Snapshot, "err", err)
		}
		return "", false
	}
	if meta.Driver != w.driver.Name() || meta.AgentProtocol != agentproto.Version {
		// Made by another driver or agent: restoring it could not work.
		w.log.Info("snapshot not restorable here", "snapshot", spec.Snapshot, "driver", meta.Driver, "agentProtocol", meta.AgentProtocol)
		return "", false
	}
	return dir, true
}

// restoreSandbox creates environment id from the snapshot in dir.
func (w *Worker) restoreSandbox(ctx context.Context, id string, spec fnspec.Spec, codeDir, dir string, start time.Time) (*Env, error) {
	restorer, _ := w.canSnapshot()
	sb, err := restorer.Restore(ctx, w.sandboxSpec(id, spec, codeDir), snapshot.ImageDir(dir))
	if err != nil {
		return nil, fmt.Errorf("restoring sandbox for %s from %s: %w", spec.FunctionName, spec.Snapshot, err)
	}
	if err := w.persist(sb.Handle()); err != nil {
		_ = sb.Destroy(context.WithoutCancel(ctx))
		return nil, err
	}
	// No Hello: the agent resumes where the snapshot stopped it.
	env := &Env{ID: id, Spec: spec, LogStream: logs.NewStreamName(start, spec.Version), Created: start, sess: newSession(sb)}
	_, restoreErr, err := env.sess.restoreRuntime(ctx, agentproto.Restore{TimeoutMs: restoreHooksLimit.Milliseconds()}, restoreHooksLimit+time.Second)
	if err != nil {
		w.destroy(context.WithoutCancel(ctx), env)
		return nil, fmt.Errorf("restoring sandbox %s: %w", id, err)
	}
	// Restore Duration is the whole of it by the worker's clock: the
	// driver's restore, the runtime's resumption and its hooks.
	env.Restore = time.Since(start)
	if restoreErr != nil {
		lines := append(env.sess.takeLines(), fmt.Sprintf("RESTORE_REPORT Restore Duration: %.2f ms\tStatus: error\tError Type: %s", float64(env.Restore)/float64(time.Millisecond), restoreErr.ErrorType))
		w.appendLogs(ctx, env, lines)
		restoreErr.LogTail = tail(lines)
		w.destroy(context.WithoutCancel(ctx), env)
		return nil, restoreErr
	}
	if err := limitCPU(sb, spec); err != nil {
		w.destroy(context.WithoutCancel(ctx), env)
		return nil, fmt.Errorf("limiting CPU of sandbox %s: %w", id, err)
	}
	w.mu.Lock()
	w.envs[id] = env
	w.mu.Unlock()
	w.log.Debug("sandbox restored", "sandbox", id, "function", spec.FunctionName, "version", spec.Version, "snapshot", spec.Snapshot, "restore", env.Restore)
	return env, nil
}

// Snapshots lists the snapshots this worker holds.
func (w *Worker) Snapshots(ctx context.Context) ([]snapshot.Key, error) { return w.snaps.List(ctx) }

// DeleteSnapshot removes a snapshot (its version was deleted). Sandboxes
// already restored from it keep running until reaped.
func (w *Worker) DeleteSnapshot(ctx context.Context, key snapshot.Key) error {
	return w.snaps.Delete(ctx, key)
}
