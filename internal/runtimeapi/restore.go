package runtimeapi

import "errors"

// SnapStart (spec §5.5). A runtime started with
// AWS_LAMBDA_INITIALIZATION_TYPE=snap-start finishes its init, runs its
// before-snapshot hooks and calls GET /runtime/restore/next instead of
// /invocation/next. That call completes init (InitReady) and parks: the
// sandbox is checkpointed with the connection open. In every copy restored
// from the checkpoint the agent calls Restore, which answers the parked
// call; the runtime runs its after-restore hooks and calls /next
// (RestoreReady) or posts /runtime/restore/error (Hooks.RestoreError).
//
//	Started ──restore/next──► SnapshotReady ──Restore──► Restoring ──next──► Ready
//	                                                         └──restore/error──► RestoreError

// handleRestoreNext serves GET /2018-06-01/runtime/restore/next: allowed
// once, in place of the first /next.
func (s *Server) handleRestoreNext(c *conn) {
	s.mu.Lock()
	if s.state != stateInit {
		name := s.stateName()
		s.mu.Unlock()
		c.writeError(403, errInvalidStateTransition, "State transition from "+name+" to SnapshotReady is not allowed")
		return
	}
	s.state = stateSnapshotReady
	if s.isClosed() {
		s.mu.Unlock()
		c.writeError(500, errInternalServerError, "Runtime API is shutting down")
		return
	}
	s.restoreWaiter = c
	c.park("Runtime API")
	s.mu.Unlock()
	s.checkInitReady()
}

// handleRestoreError serves POST /2018-06-01/runtime/restore/error: an
// after-restore hook failed. Allowed between Restore and the first /next.
func (s *Server) handleRestoreError(c *conn) {
	s.mu.Lock()
	if s.state != stateRestoring {
		name := s.stateName()
		s.mu.Unlock()
		c.writeError(403, errInvalidStateTransition, "State transition from "+name+" to RestoreError is not allowed")
		return
	}
	s.state = stateRestoreFailed
	s.mu.Unlock()
	errorType, body := c.readErrorReport()
	if s.cfg.Hooks.RestoreError != nil {
		s.cfg.Hooks.RestoreError(errorType, body)
	}
	c.writeAccepted()
}

// ErrNotSnapshotReady is returned by Restore when the runtime is not parked
// in /restore/next.
var ErrNotSnapshotReady = errors.New("runtimeapi: the runtime is not waiting in restore/next")

// Restore answers the runtime's parked /restore/next: the sandbox has been
// restored from its snapshot. The runtime then runs its after-restore hooks;
// RestoreReady is closed when it calls /next.
//
// A runtime that knows nothing of SnapStart (a provided bootstrap built
// with aws-lambda-go, say) went straight to /next and was checkpointed
// there: it has no hooks to run, so it is restored and ready at once.
func (s *Server) Restore() error {
	s.mu.Lock()
	if s.state == stateIdle && s.cur == nil {
		s.mu.Unlock()
		s.restoreReadyOnce.Do(func() { close(s.restoreReady) })
		return nil
	}
	c := s.restoreWaiter
	if s.state != stateSnapshotReady || c == nil {
		s.mu.Unlock()
		return ErrNotSnapshotReady
	}
	s.restoreWaiter = nil
	c.take()
	s.state = stateRestoring
	s.mu.Unlock()
	c.send(c.head(200), contentTypeJSON, []byte("{}"), c.parkField)
	c.answered()
	return nil
}

// RestoreReady is closed when the runtime, restored, calls its first /next.
func (s *Server) RestoreReady() <-chan struct{} { return s.restoreReady }
