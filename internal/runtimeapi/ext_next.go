package runtimeapi

// handleExtensionNext serves GET /2020-01-01/extension/event/next: it
// answers with the extension's next INVOKE or SHUTDOWN event, parking the
// connection until one is sent when none is queued. The first call marks
// the extension's init done.
func (s *Server) handleExtensionNext(c *conn) {
	e := s.extensionFor(c)
	if e == nil {
		return
	}
	s.mu.Lock()
	first := !e.ready
	e.ready = true
	var ev []byte
	closed := false
	switch {
	case len(e.queue) > 0:
		ev = e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
	case s.isClosed():
		closed = true
	default:
		e.waiter = c
		c.park("Extensions API")
	}
	s.mu.Unlock()
	if first {
		s.checkInitReady()
	}
	switch {
	case ev != nil:
		c.writeExtensionEvent(ev, c.field())
	case closed:
		c.writeError(500, errInternalServerError, "Extensions API is shutting down")
	}
}

// writeExtensionEvent answers an event/next with ev.
func (c *conn) writeExtensionEvent(ev []byte, f connField) {
	b := c.head(200)
	b = appendField(b, HeaderExtensionEventID, newUUID())
	c.send(b, contentTypeJSON, ev, f)
}
