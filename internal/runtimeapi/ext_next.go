package runtimeapi

import (
	"net/http"
	"strconv"
)

// handleExtensionNext serves GET /2020-01-01/extension/event/next: it blocks
// until an INVOKE or SHUTDOWN event is queued for the extension. The first
// call marks the extension's init done.
func (s *Server) handleExtensionNext(w http.ResponseWriter, r *http.Request) {
	e := s.extensionFor(w, r)
	if e == nil {
		return
	}
	s.mu.Lock()
	first := !e.ready
	e.ready = true
	s.mu.Unlock()
	if first {
		s.checkInitReady()
	}
	var ev []byte
	select {
	case ev = <-e.events:
	case <-r.Context().Done():
		return
	case <-s.closed:
		writeError(w, http.StatusInternalServerError, errInternalServerError, "Extensions API is shutting down")
		return
	}
	h := w.Header()
	h[HeaderExtensionEventID] = []string{newUUID()}
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(ev))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ev)
}
