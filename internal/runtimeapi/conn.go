package runtimeapi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ignis-run/ignis/internal/rawio"
)

// The server side of one client connection. The APIs have two or three
// clients (the runtime, a few extensions), each on one keep-alive
// connection, so everything here is per connection and reused: one bufio
// reader, one request arena, one response buffer.
//
// A GET /next parks the connection instead of blocking its goroutine: the
// goroutine goes back to reading the connection (which is how it learns
// that the client went away, and where the runtime's next request arrives)
// and the event is written by whoever produces it — Invoke on the agent's
// frame reader — straight onto the socket. A warm invoke thus wakes no
// goroutine but the ones the kernel has data for.
//
// Socket reads and writes are raw system calls (package rawio), which keep
// sysmon asleep while the agent idles between invokes.

// headerTimeout bounds a request head once its first bytes have arrived
// (net/http's ReadHeaderTimeout in the server this replaces).
const headerTimeout = 10 * time.Second

// largeBody is the size above which a response body is written by a
// second write instead of being copied behind the head.
const largeBody = 64 << 10

// lingerTimeout bounds how long a closing connection drains input the
// server did not read, so the client sees the response rather than a
// reset.
const lingerTimeout = time.Second

// conn is one client connection.
//
// Ownership: the conn goroutine (serve) owns req, br and the body state;
// the response buffer wbuf belongs to whoever answers the current request:
// the conn goroutine, or, while the connection is parked, the goroutine
// that takes it from the park (see Server.take).
type conn struct {
	s  *Server
	nc net.Conn  // nil for a conn over plain streams (tests)
	w  io.Writer // fallback writer when raw is nil
	r  io.Reader // fallback reader when raw is nil

	br   *bufio.Reader
	lr   lineReader
	req  request
	wbuf []byte

	// bodyDone is set once the request's body is consumed (or it has none).
	bodyDone bool
	// sent100 is set once "100 Continue" went out for the request.
	sent100 bool
	// inHead, headReads and deadline drive the lazy header timeout: the
	// deadline is only armed when a head needs a second read.
	inHead    bool
	headReads int
	deadline  bool

	// parked is set while the connection waits in /next or /event/next
	// for an event. Guarded by s.mu.
	parked bool
	// answering is set while another goroutine writes the parked request's
	// answer. Guarded by s.mu.
	answering bool
	// parkField is the Connection field of the parked request's answer,
	// and parkAPI names the API it waits in (for Close's answer). Set by
	// park, read by the goroutine that takes the connection.
	parkField connField
	parkAPI   string
	// unparked is signalled when answering ends.
	unparked chan struct{}

	// raw reads and writes nc's socket; nil when nc has no descriptor.
	raw *rawio.Conn
	// wmu serialises writes (only the shutdown path can race the owner).
	wmu sync.Mutex
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, r: nc, w: nc, unparked: make(chan struct{}, 1), wbuf: make([]byte, 0, 1024)}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw = rawio.NewConn(sc, "runtime API connection")
	}
	c.br = bufio.NewReaderSize(c, 16<<10)
	c.lr.br = c.br
	return c
}

// newStreamConn returns a conn over plain streams, for tests and fuzzing.
func newStreamConn(s *Server, r io.Reader, w io.Writer) *conn {
	c := &conn{s: s, r: r, w: w, unparked: make(chan struct{}, 1)}
	c.br = bufio.NewReaderSize(c, 16<<10)
	c.lr.br = c.br
	return c
}

// Read reads from the connection (for br).
func (c *conn) Read(p []byte) (int, error) {
	if c.inHead {
		c.headReads++
		if c.headReads == 2 && c.nc != nil {
			_ = c.nc.SetReadDeadline(time.Now().Add(headerTimeout))
			c.deadline = true
		}
	}
	if c.raw == nil {
		return c.r.Read(p)
	}
	return c.raw.Read(p)
}

// write writes p whole.
func (c *conn) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.raw == nil {
		_, err := c.w.Write(p)
		return err
	}
	_, err := c.raw.Write(p)
	return err
}

// serve reads and answers requests until the connection ends.
func (c *conn) serve() {
	defer c.finish()
	for c.serveOne() {
	}
}

// serveOne reads and answers one request. It returns false when the
// connection is done.
func (c *conn) serveOne() bool {
	c.inHead, c.headReads = true, 0
	err := c.lr.readRequest(&c.req)
	c.inHead = false
	if c.deadline {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.deadline = false
	}
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && c.waitAnswered() {
			c.bodyDone = false // the rest of the input is unknown
			c.writePlain(he.status, he.msg)
			c.lingerClose()
		}
		return false
	}
	// A request pipelined behind a parked one waits for that answer.
	if !c.waitAnswered() {
		return false
	}
	c.bodyDone = c.req.contentLength <= 0 && !c.req.chunked
	c.sent100 = false
	c.s.route(c)
	if c.willClose() {
		if c.waitAnswered() {
			c.lingerClose()
		}
		return false
	}
	if !c.bodyDone {
		if _, err := c.br.Discard(int(c.req.contentLength)); err != nil {
			return false
		}
	}
	return true
}

// willClose reports whether the connection ends after the current
// response: the client asked, the server is closing, or a body is left
// that is not worth reading (or whose client waits for 100 Continue).
func (c *conn) willClose() bool {
	if c.req.closeConn || c.s.isClosed() {
		return true
	}
	if c.bodyDone {
		return false
	}
	return c.req.chunked || c.req.contentLength > maxDiscard || (c.req.expectContinue && !c.sent100)
}

// waitAnswered waits until the connection is neither parked nor being
// answered by another goroutine. It returns false if the server closed.
func (c *conn) waitAnswered() bool {
	for {
		c.s.mu.Lock()
		busy := c.parked || c.answering
		c.s.mu.Unlock()
		if !busy {
			return true
		}
		select {
		case <-c.unparked:
		case <-c.s.closed:
			return false
		}
	}
}

// connField is the Connection field a response carries.
type connField uint8

const (
	fieldNone      connField = iota
	fieldClose               // Connection: close
	fieldKeepAlive           // Connection: keep-alive (HTTP/1.0 clients)
)

// field returns the Connection field for the current request's response.
// Only the conn goroutine may call it.
func (c *conn) field() connField {
	switch {
	case c.willClose():
		return fieldClose
	case c.req.http10:
		return fieldKeepAlive
	}
	return fieldNone
}

// park registers the connection as waiting for an event in api; the
// goroutine that takes it answers. Preconditions: c.s.mu is held.
func (c *conn) park(api string) {
	c.parked = true
	c.parkField = c.field()
	c.parkAPI = api
	select {
	case <-c.unparked: // a stale signal from an earlier park
	default:
	}
}

// take claims a parked connection for answering. Preconditions: c.s.mu is
// held and c.parked.
func (c *conn) take() {
	c.parked = false
	c.answering = true
}

// answered ends an answer begun by take.
func (c *conn) answered() {
	c.s.mu.Lock()
	c.answering = false
	c.s.mu.Unlock()
	select {
	case c.unparked <- struct{}{}:
	default:
	}
}

// finish forgets the connection and closes it.
func (c *conn) finish() {
	c.s.forget(c)
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

// lingerClose closes the connection; when input may be left unread it
// first shuts the write side and drains the input for a while, so that the
// client reads the response instead of a connection reset.
func (c *conn) lingerClose() {
	if c.nc == nil {
		return
	}
	if !c.bodyDone {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			_, _ = io.Copy(io.Discard, c.br)
		}
	}
	_ = c.nc.Close()
}

// Response writing. A response is built in wbuf (status line, fields,
// body) and written with one system call.

// statusLine returns the status line of a status the server sends.
func statusLine(status int) string {
	switch status {
	case 200:
		return "HTTP/1.1 200 OK\r\n"
	case 202:
		return "HTTP/1.1 202 Accepted\r\n"
	case 400:
		return "HTTP/1.1 400 Bad Request\r\n"
	case 403:
		return "HTTP/1.1 403 Forbidden\r\n"
	case 404:
		return "HTTP/1.1 404 Not Found\r\n"
	case 405:
		return "HTTP/1.1 405 Method Not Allowed\r\n"
	case 413:
		return "HTTP/1.1 413 Request Entity Too Large\r\n"
	case 417:
		return "HTTP/1.1 417 Expectation Failed\r\n"
	case 431:
		return "HTTP/1.1 431 Request Header Fields Too Large\r\n"
	case 500:
		return "HTTP/1.1 500 Internal Server Error\r\n"
	case 501:
		return "HTTP/1.1 501 Not Implemented\r\n"
	case 505:
		return "HTTP/1.1 505 HTTP Version Not Supported\r\n"
	}
	return "HTTP/1.1 " + strconv.Itoa(status) + " Status\r\n"
}

// head starts a response in wbuf.
func (c *conn) head(status int) []byte {
	return append(c.wbuf[:0], statusLine(status)...)
}

// appendField appends "name: value\r\n". CR and LF in value become spaces,
// as net/http does, so a value cannot inject fields.
func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	start := len(b)
	b = append(b, value...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return append(b, "\r\n"...)
}

// send finishes the response begun in b with the framing fields and the
// body, and writes it.
func (c *conn) send(b []byte, contentType string, body []byte, f connField) {
	if contentType != "" {
		b = appendField(b, "Content-Type", contentType)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	switch f {
	case fieldClose:
		b = append(b, "Connection: close\r\n"...)
	case fieldKeepAlive:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	var err error
	if len(body) > largeBody {
		if err = c.write(b); err == nil {
			err = c.write(body)
		}
	} else {
		b = append(b, body...)
		err = c.write(b)
	}
	if cap(b) <= 4*largeBody {
		c.wbuf = b[:0]
	}
	if err != nil {
		c.s.log.Debug("writing response", "err", err)
	}
}

// respond sends a whole response from the conn goroutine.
func (c *conn) respond(b []byte, contentType string, body []byte) {
	c.send(b, contentType, body, c.field())
}

// writePlain answers a request refused before routing, as net/http does:
// text/plain "400 Bad Request: msg" and the connection closes.
func (c *conn) writePlain(status int, msg string) {
	b := c.head(status)
	line := statusLine(status)
	body := make([]byte, 0, 64)
	body = append(body, line[len("HTTP/1.1 "):len(line)-2]...)
	body = append(body, ": "...)
	body = append(body, msg...)
	c.send(b, "text/plain; charset=utf-8", body, fieldClose)
}

// notFound and methodNotAllowed answer like http.ServeMux.
func (c *conn) notFound() {
	b := c.head(404)
	b = appendField(b, "X-Content-Type-Options", "nosniff")
	c.respond(b, "text/plain; charset=utf-8", []byte("404 page not found\n"))
}

func (c *conn) methodNotAllowed(allow string) {
	b := c.head(405)
	b = appendField(b, "Allow", allow)
	b = appendField(b, "X-Content-Type-Options", "nosniff")
	c.respond(b, "text/plain; charset=utf-8", []byte("Method Not Allowed\n"))
}

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// readBody reads the request body into dst (reusing its capacity), up to
// limit bytes. tooLarge reports a body above limit; the rest is not read
// (the connection then closes). A client waiting on Expect: 100-continue
// gets "100 Continue" first, and only when the body is within limit.
func (c *conn) readBody(dst []byte, limit int) (body []byte, tooLarge bool, err error) {
	r := &c.req
	b := dst[:0]
	if c.bodyDone {
		return b, false, nil
	}
	if r.contentLength > int64(limit) {
		return b, true, nil
	}
	if r.expectContinue && !c.sent100 {
		c.sent100 = true
		if err := c.write(continue100); err != nil {
			return b, false, err
		}
	}
	if !r.chunked {
		n := int(r.contentLength)
		if n > cap(b) {
			b = make([]byte, 0, n)
		}
		b = b[:n]
		if _, err := io.ReadFull(c.br, b); err != nil {
			return b[:0], false, eofIsUnexpected(err)
		}
		c.bodyDone = true
		return b, false, nil
	}
	for {
		n, err := c.lr.readChunkSize()
		if err != nil {
			return b, false, err
		}
		if n == 0 {
			if err := c.lr.readTrailer(r); err != nil {
				return b, false, err
			}
			c.bodyDone = true
			return b, false, nil
		}
		if int64(len(b))+n > int64(limit) {
			return b[:0], true, nil
		}
		start := len(b)
		if start+int(n) > cap(b) {
			nb := make([]byte, start, max(2*cap(b), start+int(n)))
			copy(nb, b)
			b = nb
		}
		b = b[:start+int(n)]
		if _, err := io.ReadFull(c.br, b[start:]); err != nil {
			return b[:start], false, eofIsUnexpected(err)
		}
		if err := c.lr.readChunkEnd(); err != nil {
			return b, false, err
		}
	}
}
