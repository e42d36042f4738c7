package runtimeapi

import (
	"net/http"
)

// handleInitError serves POST /2018-06-01/runtime/init/error: allowed only
// before the runtime's first /next. The posted body (or one built from the
// error type) goes to Hooks.InitError; later calls get 403.
func (s *Server) handleInitError(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.state != stateInit {
		name := s.stateName()
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, errInvalidStateTransition, "State transition from "+name+" to InitError is not allowed")
		return
	}
	s.state = stateInitFailed
	s.mu.Unlock()
	body, _, _ := readBody(nil, r.Body, r.ContentLength, MaxResponseSize)
	errorType := normaliseErrorType(r.Header.Get(HeaderFunctionError))
	if r.Header.Get("Content-Type") == contentTypeErrorCause {
		body = stripErrorCause(body)
	}
	if len(body) == 0 {
		body = append(append([]byte(`{"errorMessage":"","errorType":`), appendJSONString(nil, errorType)...), '}')
	}
	if s.cfg.Hooks.InitError != nil {
		s.cfg.Hooks.InitError(errorType, body)
	}
	writeAccepted(w)
}
