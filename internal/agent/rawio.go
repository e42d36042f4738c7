package agent

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls for the warm path.
//
// Every syscall made through package syscall or os enters the scheduler's
// syscall state, and the first one after the agent was idle (all Ps idle:
// waiting for the worker or the runtime) wakes sysmon from its deep sleep;
// sysmon then ticks every 20 µs until the agent idles again. That is a
// futex wake plus a few context switches per idle period, two or three
// times per invoke, which cost more than the agent's own work. The
// descriptors used here are non-blocking, so their calls return at once
// and need none of the scheduler's syscall bookkeeping; waiting is done by
// the netpoller through syscall.RawConn.

// rawRead reads from a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// rawWrite writes to a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// rawPoll polls fds without blocking (ppoll with a zero timeout).
func rawPoll(fds []unix.PollFd) syscall.Errno {
	var ts unix.Timespec
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)),
			uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e != unix.EINTR {
			return e
		}
	}
}

// rawFile reads or writes a non-blocking, poller-registered file with raw
// system calls, waiting in the netpoller when the file is not ready. The
// callbacks are method values made once, so a call does not allocate. A
// rawFile is used by one reader and one writer goroutine at most.
type rawFile struct {
	f  *os.File
	rc syscall.RawConn

	rp     []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	wp      []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

// newRawFile wraps f, which must be non-blocking and read through the
// poller (see pollable). It returns nil if f exposes no descriptor.
func newRawFile(f *os.File) *rawFile {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawFile{f: f, rc: rc}
	r.readFn = r.doRead
	r.writeFn = r.doWrite
	return r
}

// Read implements io.Reader.
func (r *rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp = p
	err := r.rc.Read(r.readFn)
	r.rp = nil
	switch {
	case err != nil:
		return 0, err
	case r.rerr != 0:
		return 0, &os.PathError{Op: "read", Path: r.f.Name(), Err: r.rerr}
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

func (r *rawFile) doRead(fd uintptr) bool {
	for {
		n, e := rawRead(int(fd), r.rp)
		switch e {
		case 0:
			r.rn, r.rerr = n, 0
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			r.rn, r.rerr = 0, e
			return true
		}
	}
}

// Write implements io.Writer. A write to a pipe whose reader is gone is
// EPIPE (the runtime ignores the signal for descriptors other than 1 and 2).
func (r *rawFile) Write(p []byte) (int, error) {
	r.wp, r.wn, r.werr = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n := r.wn
	r.wp = nil
	switch {
	case err != nil:
		return n, err
	case r.werr != 0:
		return n, &os.PathError{Op: "write", Path: r.f.Name(), Err: r.werr}
	}
	return n, nil
}

func (r *rawFile) doWrite(fd uintptr) bool {
	for r.wn < len(r.wp) {
		n, e := rawWrite(int(fd), r.wp[r.wn:])
		switch e {
		case 0:
			r.wn += n
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}
