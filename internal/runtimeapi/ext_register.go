package runtimeapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// registerRequest is the body of POST /extension/register.
type registerRequest struct {
	Events            []string        `json:"events"`
	ConfigurationKeys json.RawMessage `json:"configurationKeys,omitempty"`
}

// registerResponse is its answer.
type registerResponse struct {
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
	AccountID       string `json:"accountId,omitempty"`
}

// handleRegister serves POST /2020-01-01/extension/register: 200 with a new
// Lambda-Extension-Identifier while registration is open (init phase).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(HeaderExtensionName)
	if name == "" {
		writeError(w, http.StatusForbidden, errMissingExtensionName, "Missing Lambda-Extension-Name header")
		return
	}
	var req registerRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusForbidden, errInvalidRequestBody, "Invalid registration request body: "+err.Error())
		return
	}
	if len(req.ConfigurationKeys) > 0 && string(req.ConfigurationKeys) != "null" {
		writeError(w, http.StatusForbidden, errInvalidRequestBody, "configurationKeys are not supported for external extensions")
		return
	}
	e := &extension{id: newUUID(), name: name, events: make(chan []byte, 16)}
	for _, ev := range req.Events {
		switch ev {
		case "INVOKE":
			e.invoke = true
		case "SHUTDOWN":
			e.shutdown = true
		default:
			writeError(w, http.StatusForbidden, errInvalidEventType, "Invalid event type: "+strconv.Quote(ev))
			return
		}
	}

	s.mu.Lock()
	switch {
	case s.regClosed:
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, errRegistrationClosed, "Extension registration is closed")
		return
	case len(s.extList) >= MaxExtensions:
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, errTooManyExtensions, "Too many extensions registered (max "+strconv.Itoa(MaxExtensions)+")")
		return
	}
	for _, o := range s.extList {
		if o.name == name {
			s.mu.Unlock()
			writeError(w, http.StatusForbidden, "Extension.AlreadyRegistered", "Extension "+strconv.Quote(name)+" is already registered")
			return
		}
	}
	s.exts[e.id] = e
	// extList is copied on write so Invoke and Shutdown can range over a
	// snapshot without holding mu.
	s.extList = append(s.extList[:len(s.extList):len(s.extList)], e)
	s.mu.Unlock()
	s.log.Debug("extension registered", "extension", name, "id", e.id)

	b, _ := json.Marshal(registerResponse{
		FunctionName:    s.cfg.FunctionName,
		FunctionVersion: s.cfg.FunctionVersion,
		Handler:         s.cfg.Handler,
	})
	h := w.Header()
	h[HeaderExtensionID] = []string{e.id}
	h["Content-Type"] = contentTypeJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if s.cfg.Hooks.Registered != nil {
		s.cfg.Hooks.Registered(name)
	}
}

// extensionFor returns the extension named by the request's identifier
// header, or writes the 403 and returns nil.
func (s *Server) extensionFor(w http.ResponseWriter, r *http.Request) *extension {
	id := r.Header.Get(HeaderExtensionID)
	if id == "" {
		writeError(w, http.StatusForbidden, errMissingExtensionID, "Missing Lambda-Extension-Identifier header")
		return nil
	}
	s.mu.Lock()
	e := s.exts[id]
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusForbidden, errUnknownExtensionID, "Unknown extension "+strconv.Quote(id))
		return nil
	}
	return e
}
