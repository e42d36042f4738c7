package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
)

// restore resumes a runtime in a sandbox restored from a SnapStart
// snapshot: the runtime's parked /runtime/restore/next is answered, it runs
// its after-restore hooks and calls /next (RestoreDone), or posts
// /runtime/restore/error, exits or overruns m.TimeoutMs (RestoreError).
// It returns an error only when the agent cannot go on.
//
// Nothing of the agent itself needs re-seeding: it holds no random state
// that outlives a request (request ids come from the worker), and the
// guest kernel's entropy comes from the host at each read.
func (a *Agent) restore(ctx context.Context, m agentproto.Restore) error {
	start := time.Now()
	fail := func(errorType string, body []byte) error {
		a.log.Info("restore failed", "errorType", errorType)
		return a.out.RestoreError(agentproto.InitError{ErrorType: errorType, Body: body, DurationNs: time.Since(start).Nanoseconds()})
	}
	if a.api == nil {
		return fail(lambdaerr.RuntimeUnknown, lambdaerr.Body(lambdaerr.RuntimeUnknown, "restore of an agent that was never initialised"))
	}
	if err := a.api.Restore(); err != nil {
		return fail(lambdaerr.RuntimeUnknown, lambdaerr.Body(lambdaerr.RuntimeUnknown, err.Error()))
	}
	var deadline <-chan time.Time
	if m.TimeoutMs > 0 {
		t := time.NewTimer(time.Duration(m.TimeoutMs) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case <-a.api.RestoreReady():
			return a.out.RestoreDone(agentproto.RestoreDone{DurationNs: time.Since(start).Nanoseconds()})
		case f := <-a.restoreErrs:
			return fail(f.errorType, f.body)
		case p := <-a.sup.exits:
			if p != a.runtime {
				a.exited(p)
				continue
			}
			select {
			case f := <-a.restoreErrs:
				err := fail(f.errorType, f.body)
				a.exited(p)
				return err
			default:
			}
			err := fail(lambdaerr.RuntimeExitError, lambdaerr.Body(lambdaerr.RuntimeExitError, "Runtime exited with error: "+statusString(p.status)))
			a.exited(p)
			return err
		case <-deadline:
			return fail(lambdaerr.SnapStartTimeout, lambdaerr.Body(lambdaerr.SnapStartTimeout, fmt.Sprintf("After-restore hooks timed out after %.2f seconds", time.Since(start).Seconds())))
		case <-a.stdinDone:
			return errWorkerGone
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
