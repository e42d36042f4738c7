package runtimeapi

import "github.com/ignis-run/ignis/internal/lambdaerr"

// handleInitError serves POST /2018-06-01/runtime/init/error: allowed only
// before the runtime's first /next. The posted body (or one built from the
// error type) goes to Hooks.InitError; later calls get 403.
func (s *Server) handleInitError(c *conn) {
	s.mu.Lock()
	if s.state != stateInit {
		name := s.stateName()
		s.mu.Unlock()
		c.writeError(403, errInvalidStateTransition, "State transition from "+name+" to InitError is not allowed")
		return
	}
	s.state = stateInitFailed
	s.mu.Unlock()
	errorType, body := c.readErrorReport()
	if s.cfg.Hooks.InitError != nil {
		s.cfg.Hooks.InitError(errorType, body)
	}
	c.writeAccepted()
}

// readErrorReport reads the error type and body an /init/error or
// /restore/error posts (a body built from the type when there is none).
func (c *conn) readErrorReport() (errorType string, body []byte) {
	body, _, _ = c.readBody(nil, MaxResponseSize)
	errorType = normaliseErrorType(c.req.get(hFunctionError))
	if string(c.req.getBytes(hContentType)) == contentTypeErrorCause {
		body = stripErrorCause(body)
	}
	if len(body) == 0 {
		body = lambdaerr.Body(errorType, "")
	}
	return errorType, body
}
