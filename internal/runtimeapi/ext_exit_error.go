package runtimeapi

// handleExtensionExitError serves POST /2020-01-01/extension/exit/error: the
// extension reports why it is about to exit. The report goes to
// Hooks.ExtensionExitError (the agent logs it).
func (s *Server) handleExtensionExitError(c *conn) {
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
	if s.cfg.Hooks.ExtensionExitError != nil {
		s.cfg.Hooks.ExtensionExitError(e.name, errorType, body)
	}
	c.writeAccepted()
}
