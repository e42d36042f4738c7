// Package rawio reads and writes non-blocking descriptors with raw system
// calls, waiting in the runtime's netpoller when they are not ready.
//
// Every system call made through package syscall or os enters the
// scheduler's syscall state, and the first one after a process was idle
// (all Ps idle, as a sandbox's agent is between invokes and a worker is at
// concurrency 1) wakes sysmon from its deep sleep; sysmon then ticks every
// 20 µs until the process idles again. That is a futex wake and a few
// context switches per idle spell, more than the work of a warm invoke's
// pipe or socket hop. A non-blocking descriptor never blocks, so its calls
// need none of that bookkeeping: they are made raw, and waiting is left to
// the netpoller through syscall.RawConn.
package rawio

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on a non-blocking descriptor.
func Read(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// Write is write(2) on a non-blocking descriptor.
func Write(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// Send is send(2) with MSG_NOSIGNAL on a non-blocking socket, so a peer
// that is gone is EPIPE and never a signal. On a descriptor that is not a
// socket it falls back to write(2).
func Send(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e == unix.ENOTSOCK {
		return Write(fd, p)
	}
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// Poll is ppoll(2) with a zero timeout: it reports readiness and never
// waits.
func Poll(fds []unix.PollFd) syscall.Errno {
	if len(fds) == 0 {
		return 0
	}
	var ts unix.Timespec
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)),
			uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e != unix.EINTR {
			return e
		}
	}
}

// Conn reads and writes a poller-registered descriptor (a pipe from
// os.Pipe, a net.Conn's socket) with raw system calls. The callbacks
// handed to syscall.RawConn are method values made once, so a call does
// not allocate. A Conn serves one reader and one writer goroutine at most;
// callers with more writers serialise them.
type Conn struct {
	rc   syscall.RawConn
	name string
	send func(fd int, p []byte) (int, syscall.Errno)

	rp     []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	wp      []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

// NewConn returns a Conn over c's descriptor, or nil if c has none (an
// in-memory net.Conn, say): callers then use c as it is. The descriptor is
// made non-blocking, as the poller's already are: a raw call on a blocking
// one could wait in the kernel holding its P, stalling the goroutines
// queued on it; a descriptor the poller does not know then fails its
// first call that would block instead.
func NewConn(c syscall.Conn, name string) *Conn {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var nbErr error
	if err := rc.Control(func(fd uintptr) { nbErr = unix.SetNonblock(int(fd), true) }); err != nil || nbErr != nil {
		return nil
	}
	rw := &Conn{rc: rc, name: name, send: Write}
	if _, ok := c.(*os.File); !ok {
		rw.send = Send
	}
	rw.readFn = rw.doRead
	rw.writeFn = rw.doWrite
	return rw
}

// File returns a Conn over f, which must be non-blocking and registered
// with the poller (os.Pipe's files are; see os.NewFile for others), or nil
// if f exposes no descriptor.
func File(f *os.File) *Conn { return NewConn(f, f.Name()) }

// Read implements io.Reader: io.EOF once the peer closed its end, an
// *os.PathError wrapping the errno on a failed read, or the poller's error
// as it is (a closed file or connection, os.ErrDeadlineExceeded).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rp = p
	err := c.rc.Read(c.readFn)
	c.rp = nil
	switch {
	case err != nil:
		return 0, err
	case c.rerr != 0:
		return 0, &os.PathError{Op: "read", Path: c.name, Err: c.rerr}
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

func (c *Conn) doRead(fd uintptr) bool {
	for {
		n, e := Read(int(fd), c.rp)
		switch e {
		case 0:
			c.rn, c.rerr = n, 0
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			c.rn, c.rerr = 0, e
			return true
		}
	}
}

// Write implements io.Writer: it writes p whole or fails. Writing to a
// pipe or socket whose reader is gone is EPIPE, never a signal (sockets
// are written with MSG_NOSIGNAL; the Go runtime ignores SIGPIPE for
// descriptors other than 1 and 2).
func (c *Conn) Write(p []byte) (int, error) {
	c.wp, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n := c.wn
	c.wp = nil
	switch {
	case err != nil:
		return n, err
	case c.werr != 0:
		return n, &os.PathError{Op: "write", Path: c.name, Err: c.werr}
	}
	return n, nil
}

func (c *Conn) doWrite(fd uintptr) bool {
	for c.wn < len(c.wp) {
		n, e := c.send(int(fd), c.wp[c.wn:])
		switch e {
		case 0:
			c.wn += n
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// Pair returns a control channel's two pipe ends as one io.ReadWriter
// read from r and written to w with raw system calls; an end that exposes
// no descriptor is used as it is.
func Pair(r, w *os.File) io.ReadWriter {
	rw := struct {
		io.Reader
		io.Writer
	}{r, w}
	if c := File(r); c != nil {
		rw.Reader = c
	}
	if c := File(w); c != nil {
		rw.Writer = c
	}
	return rw
}

// Pread is pread(2), for files whose reads never wait (procfs, cgroupfs):
// made raw, it leaves sysmon asleep like the calls above.
func Pread(fd int, p []byte, off int64) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(off), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
