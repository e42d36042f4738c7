package runtimeapi

import "net/http"

// handleExtensionInitError serves POST /2020-01-01/extension/init/error:
// the extension failed its init; the environment's init fails with the
// posted Lambda-Extension-Function-Error-Type (required).
func (s *Server) handleExtensionInitError(w http.ResponseWriter, r *http.Request) {
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
	if len(body) == 0 {
		body = append(append([]byte(`{"errorMessage":"","errorType":`), appendJSONString(nil, errorType)...), '}')
	}
	s.log.Info("extension init error", "extension", e.name, "errorType", errorType)
	if s.cfg.Hooks.InitError != nil {
		s.cfg.Hooks.InitError(errorType, body)
	}
	writeAccepted(w)
}
