package runtimeapi

import (
	"net/http"
	"strconv"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// handleNext serves GET /2018-06-01/runtime/invocation/next: it blocks until
// the agent hands over an event, then answers 200 with the raw payload and
// the headers of the Runtime API. The first call completes the runtime's
// init.
func (s *Server) handleNext(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	switch s.state {
	case stateRunning, stateAnswering, stateInitFailed:
		name := s.stateName()
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, errInvalidStateTransition, "State transition from "+name+" to Ready is not allowed")
		return
	}
	first := s.state == stateInit
	s.state = stateIdle
	s.cur = nil
	s.mu.Unlock()
	if first {
		s.checkInitReady()
	}

	var inv *agentproto.Invoke
	select {
	case inv = <-s.invokes:
	case <-r.Context().Done():
		return
	case <-s.closed:
		writeError(w, http.StatusInternalServerError, errInternalServerError, "Runtime API is shutting down")
		return
	}

	s.mu.Lock()
	s.cur = inv
	s.state = stateRunning
	s.mu.Unlock()

	h := w.Header()
	h[HeaderRequestID] = []string{inv.RequestID}
	h[HeaderDeadlineMs] = []string{strconv.FormatInt(inv.DeadlineMs, 10)}
	if inv.InvokedARN != "" {
		h[HeaderInvokedARN] = []string{inv.InvokedARN}
	}
	if inv.TraceID != "" {
		h[HeaderTraceID] = []string{inv.TraceID}
	}
	if inv.ClientContext != "" {
		h[HeaderClientContext] = []string{inv.ClientContext}
	}
	if inv.CognitoIdentity != "" {
		h[HeaderCognitoIdentity] = []string{inv.CognitoIdentity}
	}
	if inv.TenantID != "" {
		h[HeaderTenantID] = []string{inv.TenantID}
	}
	if inv.ContentType != "" {
		h["Content-Type"] = []string{inv.ContentType}
	} else {
		h["Content-Type"] = contentTypeJSON
	}
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Payload))}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(inv.Payload); err != nil {
		s.log.Debug("writing event to runtime", "requestId", inv.RequestID, "err", err)
	}
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
	}
	return "Unknown"
}
