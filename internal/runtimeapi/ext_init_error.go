package runtimeapi

import "github.com/ignis-run/ignis/internal/lambdaerr"

// handleExtensionInitError serves POST /2020-01-01/extension/init/error:
// the extension failed its init; the environment's init fails with the
// posted Lambda-Extension-Function-Error-Type (required).
func (s *Server) handleExtensionInitError(c *conn) {
	e := s.extensionFor(c)
	if e == nil {
		return
	}
	errorType := c.req.get(hExtensionError)
	if errorType == "" {
		c.writeError(403, errMissingFunctionErrorType, "Missing Lambda-Extension-Function-Error-Type header")
		return
	}
	body, _, _ := c.readBody(nil, MaxResponseSize)
	if len(body) == 0 {
		body = lambdaerr.Body(errorType, "")
	}
	s.log.Info("extension init error", "extension", e.name, "errorType", errorType)
	if s.cfg.Hooks.InitError != nil {
		s.cfg.Hooks.InitError(errorType, body)
	}
	c.writeAccepted()
}
