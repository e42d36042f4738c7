package runtimeapi

import (
	"bytes"
	"encoding/json"
	"errors"
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
func (s *Server) handleRegister(c *conn) {
	name := c.req.get(hExtensionName)
	if name == "" {
		c.writeError(403, errMissingExtensionName, "Missing Lambda-Extension-Name header")
		return
	}
	var req registerRequest
	body, tooLarge, err := c.readBody(nil, maxRegisterBody)
	if err == nil && tooLarge {
		err = errors.New("http: request body too large")
	}
	if err == nil {
		err = json.NewDecoder(bytes.NewReader(body)).Decode(&req)
	}
	if err != nil {
		c.writeError(403, errInvalidRequestBody, "Invalid registration request body: "+err.Error())
		return
	}
	if len(req.ConfigurationKeys) > 0 && string(req.ConfigurationKeys) != "null" {
		c.writeError(403, errInvalidRequestBody, "configurationKeys are not supported for external extensions")
		return
	}
	e := &extension{id: newUUID(), name: name}
	for _, ev := range req.Events {
		switch ev {
		case "INVOKE":
			e.invoke = true
		case "SHUTDOWN":
			e.shutdown = true
		default:
			c.writeError(403, errInvalidEventType, "Invalid event type: "+strconv.Quote(ev))
			return
		}
	}
	s.mu.Lock()
	switch {
	case s.regClosed:
		s.mu.Unlock()
		c.writeError(403, errRegistrationClosed, "Extension registration is closed")
		return
	case len(s.extList) >= MaxExtensions:
		s.mu.Unlock()
		c.writeError(403, errTooManyExtensions, "Too many extensions registered (max "+strconv.Itoa(MaxExtensions)+")")
		return
	}
	for _, o := range s.extList {
		if o.name == name {
			s.mu.Unlock()
			c.writeError(403, errAlreadyRegistered, "Extension "+strconv.Quote(name)+" is already registered")
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
	c.respond(appendField(c.head(200), HeaderExtensionID, e.id), contentTypeJSON, b)
	if s.cfg.Hooks.Registered != nil {
		s.cfg.Hooks.Registered(name)
	}
}

// maxRegisterBody bounds a registration request.
const maxRegisterBody = 64 << 10

// extensionFor returns the extension named by the request's identifier
// header, or answers the 403 and returns nil.
func (s *Server) extensionFor(c *conn) *extension {
	id := c.req.getBytes(hExtensionID)
	if len(id) == 0 {
		c.writeError(403, errMissingExtensionID, "Missing Lambda-Extension-Identifier header")
		return nil
	}
	s.mu.Lock()
	e := s.exts[string(id)]
	s.mu.Unlock()
	if e == nil {
		c.writeError(403, errUnknownExtensionID, "Unknown extension "+strconv.Quote(string(id)))
		return nil
	}
	return e
}
