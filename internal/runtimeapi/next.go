package runtimeapi

import (
	"strconv"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// handleNext serves GET /2018-06-01/runtime/invocation/next: it answers 200
// with the raw payload and the headers of the Runtime API as soon as an
// event is there. Without one the connection parks and Invoke answers it.
// The first call completes the runtime's init.
func (s *Server) handleNext(c *conn) {
	s.mu.Lock()
	switch s.state {
	case stateRunning, stateAnswering, stateInitFailed, stateSnapshotReady, stateRestoreFailed:
		name := s.stateName()
		s.mu.Unlock()
		c.writeError(403, errInvalidStateTransition, "State transition from "+name+" to Ready is not allowed")
		return
	}
	first := s.state == stateInit
	restored := s.state == stateRestoring
	s.state = stateIdle
	s.cur = nil
	inv := s.pending
	fromSlot := inv == &s.pend
	closed := false
	switch {
	case inv != nil:
		s.pending = nil
		s.curVal = *inv
		s.cur = &s.curVal
		s.state = stateRunning
		s.pendBusy = fromSlot
	case s.isClosed():
		closed = true
	default:
		// A newer /next (a runtime that reconnected) takes the place of an
		// older one.
		s.waiter = c
		c.park("Runtime API")
	}
	s.mu.Unlock()
	if first {
		s.checkInitReady()
	}
	if restored {
		s.restoreReadyOnce.Do(func() { close(s.restoreReady) })
	}
	switch {
	case inv != nil:
		c.writeInvoke(inv, c.field())
		if fromSlot {
			s.mu.Lock()
			s.pendBusy = false
			if cap(s.pendBuf) > 1<<20 {
				s.pendBuf = nil // do not pin a rare large payload
			}
			s.mu.Unlock()
		}
	case closed:
		c.writeError(500, errInternalServerError, "Runtime API is shutting down")
	}
}

// writeInvoke answers a /next with inv: the Runtime API's headers and the
// payload as received from the worker, in one write.
func (c *conn) writeInvoke(inv *agentproto.Invoke, f connField) {
	b := c.head(200)
	b = appendField(b, HeaderRequestID, inv.RequestID)
	b = append(b, HeaderDeadlineMs+": "...)
	b = strconv.AppendInt(b, inv.DeadlineMs, 10)
	b = append(b, "\r\n"...)
	if inv.InvokedARN != "" {
		b = appendField(b, HeaderInvokedARN, inv.InvokedARN)
	}
	if inv.TraceID != "" {
		b = appendField(b, HeaderTraceID, inv.TraceID)
	}
	if inv.ClientContext != "" {
		b = appendField(b, HeaderClientContext, inv.ClientContext)
	}
	if inv.CognitoIdentity != "" {
		b = appendField(b, HeaderCognitoIdentity, inv.CognitoIdentity)
	}
	if inv.TenantID != "" {
		b = appendField(b, HeaderTenantID, inv.TenantID)
	}
	ct := inv.ContentType
	if ct == "" {
		ct = contentTypeJSON
	}
	c.send(b, ct, inv.Payload, f)
}

// stateName names the runtime state in InvalidStateTransition messages.
// Preconditions: s.mu is held.
func (s *Server) stateName() string {
	switch s.state {
	case stateInit:
		return "Started"
	case stateInitFailed:
		return "InitError"
	case stateIdle:
		return "Ready"
	case stateRunning, stateAnswering:
		return "Running"
	case stateAnswered:
		return "ResponseSent"
	case stateSnapshotReady:
		return "SnapshotReady"
	case stateRestoring:
		return "Restoring"
	case stateRestoreFailed:
		return "RestoreError"
	}
	return "Unknown"
}
