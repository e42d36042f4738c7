package runtimeapi

import "net/http"

// handleExtensionExitError serves POST /2020-01-01/extension/exit/error: the
// extension reports why it is about to exit. The report goes to
// Hooks.ExtensionExitError (the agent logs it).
func (s *Server) handleExtensionExitError(w http.ResponseWriter, r *http.Request) {
	e := s.extensionFor(w, r)
	if e == nil {
		return
	}
	errorType := r.Header.Get(HeaderExtensionError)
	if errorType == "" {
		writeError(w, http.StatusForbidden, errMissingFunctionErrorType, "Missing Lambda-Extension-Function-Error-Type header")
		return
	}
	body, _, _ := readBody(nil, r.Body, r.ContentLength, MaxResponseSize)
	if s.cfg.Hooks.ExtensionExitError != nil {
		s.cfg.Hooks.ExtensionExitError(e.name, errorType, body)
	}
	writeAccepted(w)
}
