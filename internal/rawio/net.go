package rawio

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
)

// Listen wraps ln so that every connection it accepts is read and written
// with raw system calls (see NetConn). net/http's server takes it as it
// takes any listener; its socket calls then no longer wake sysmon.
func Listen(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return WrapConn(c), nil
}

// WrapConn returns c as a NetConn, or c itself if it exposes no
// descriptor. An http.Transport's DialContext can use it for the client
// side.
func WrapConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw := NewConn(sc, "")
	if raw == nil {
		return c
	}
	return &NetConn{Conn: c, raw: raw}
}

// NetConn is a net.Conn whose Read and Write are raw system calls on its
// non-blocking socket, waited on by the netpoller: deadlines, Close and
// the other methods are the wrapped connection's. Errors have net's
// shapes: io.EOF, *net.OpError (with Timeout for a passed deadline).
// Like any net.Conn it is safe for concurrent use.
type NetConn struct {
	net.Conn
	raw *Conn
	rmu sync.Mutex // one reader at a time: raw keeps per-call state
	wmu sync.Mutex // likewise for writers
}

// Read implements net.Conn.
func (c *NetConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	n, err := c.raw.Read(p)
	c.rmu.Unlock()
	return n, c.opError("read", err)
}

// Write implements net.Conn.
func (c *NetConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	n, err := c.raw.Write(p)
	c.wmu.Unlock()
	return n, c.opError("write", err)
}

// CloseWrite shuts down the writing side, when the wrapped connection can
// (net/http's server does so before closing a connection it rejects).
func (c *NetConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// opError gives a failed system call the shape net gives it; io.EOF and
// the poller's own errors (already *net.OpError) pass through.
func (c *NetConn) opError(op string, err error) error {
	var pe *os.PathError
	if err == nil || !errors.As(err, &pe) {
		return err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, pe.Err)}
}
