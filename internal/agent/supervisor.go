package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/rawio"
)

// process is one child the agent started: the runtime or an extension.
type process struct {
	name string // "runtime" or the extension's file name
	pid  int
	// done is closed by the reaper once status is set.
	done   chan struct{}
	status syscall.WaitStatus
	// pumps finish when the process's stdout and stderr reach EOF.
	pumps sync.WaitGroup
	// outs are the stdout and stderr pipes, for drain.
	outs []*outPipe
}

// drain forwards every complete line the process has written so far. The
// runtime writes its output before it posts a response, so draining before
// the Result keeps each invoke's lines in its own log (and its Tail).
//
// One ppoll(2) finds which pipes hold anything, so a quiet runtime costs one
// syscall per invoke rather than an empty read on each pipe.
func (p *process) drain() {
	var locked [2]*outPipe
	var fds [2]unix.PollFd
	n := 0
	for _, o := range p.outs {
		o.mu.Lock()
		if o.eof || n == len(fds) {
			o.mu.Unlock()
			continue
		}
		// While o.mu is held and eof unset the pump has not closed the
		// pipe, so o.fd is valid.
		locked[n] = o
		fds[n] = unix.PollFd{Fd: int32(o.fd), Events: unix.POLLIN}
		n++
	}
	defer func() {
		for _, o := range locked[:n] {
			o.mu.Unlock()
		}
	}()
	if n == 0 {
		return
	}
	if rawio.Poll(fds[:n]) != 0 {
		// Fall back to reading every pipe.
		for i := range fds[:n] {
			fds[i].Revents = unix.POLLIN
		}
	}
	for i, o := range locked[:n] {
		if fds[i].Revents != 0 {
			o.readAvailable(o.fd)
		}
	}
}

// exited reports whether the process has been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process's group (it leads its own), so helpers it
// spawned go too.
func (p *process) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid, sig)
	_ = syscall.Kill(p.pid, sig)
}

// supervisor starts processes and reaps every child of the agent.
type supervisor struct {
	// exits receives each tracked process once it has been reaped.
	exits chan *process

	mu sync.Mutex
	// procs are the live tracked processes by pid. Guarded by mu; start
	// holds mu across fork so the reaper cannot reap a pid before it is
	// tracked.
	procs map[int]*process
}

func newSupervisor() *supervisor {
	return &supervisor{exits: make(chan *process, 32), procs: make(map[int]*process)}
}

// run reaps children on SIGCHLD until ctx ends. When the agent is not PID 1
// it first makes itself a child subreaper, so orphans of the runtime are
// reaped here too (as they would be by PID 1 in a sandbox).
func (s *supervisor) run(ctx context.Context) {
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	s.reap()
	for {
		select {
		case <-ch:
			s.reap()
		case <-ctx.Done():
			return
		}
	}
}

// reap collects every exited child. Untracked ones are orphans (or
// grandchildren) and are dropped.
func (s *supervisor) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		p := s.procs[pid]
		if p == nil {
			continue
		}
		delete(s.procs, pid)
		p.status = ws
		close(p.done)
		s.exits <- p
	}
}

// start runs argv with env in dir. Its stdout and stderr are pumped into
// onLine by two goroutines that end at EOF.
func (s *supervisor) start(name string, argv, env []string, dir string, onLine func(stream string, line []byte, head *[]byte)) (*process, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, done: make(chan struct{})}
	attr := &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{devnull, outW, errW},
		Sys: &syscall.SysProcAttr{
			Setpgid: true,
			// Natively (tests, benchmarks) the children must not outlive a
			// killed agent; in a sandbox PID 1's death kills them anyway.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	s.mu.Lock()
	osp, err := os.StartProcess(argv[0], argv, attr)
	if err == nil {
		p.pid = osp.Pid
		s.procs[p.pid] = p
	}
	s.mu.Unlock()
	devnull.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	// The reaper owns the exit status; os.Process must never wait.
	_ = osp.Release()
	p.pumps.Add(2)
	for _, o := range []struct {
		f      *os.File
		stream string
	}{{outR, "stdout"}, {errR, "stderr"}} {
		op, err := newOutPipe(o.f, o.stream, onLine)
		if err != nil {
			// Cannot happen for a pipe from os.Pipe; keep the output flowing
			// through the pump anyway rather than lose it.
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		p.outs = append(p.outs, op)
		go op.pump(p)
	}
	return p, nil
}

// maxLogLine is where a long output line is split (Lambda's 256 KB).
const maxLogLine = 256 << 10

// outPipe is one output pipe of a process. The pump goroutine and
// process.drain both read it without blocking and only under mu, so once
// drain returns every complete line written before the call has been passed
// to onLine.
type outPipe struct {
	f      *os.File
	rc     syscall.RawConn
	fd     int // f's descriptor; open while eof is unset
	stream string
	onLine func(stream string, line []byte, head *[]byte)

	mu sync.Mutex
	// buf holds bytes read but not yet emitted (a partial line). Guarded by mu.
	buf []byte
	// head is the reusable Log header buffer. Guarded by mu.
	head []byte
	// eof is set once the writer side is closed. Guarded by mu.
	eof bool
	// chunk is the read buffer. Guarded by mu.
	chunk []byte
}

func newOutPipe(f *os.File, stream string, onLine func(stream string, line []byte, head *[]byte)) (*outPipe, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	o := &outPipe{f: f, rc: rc, fd: -1, stream: stream, onLine: onLine, head: make([]byte, 0, 128), chunk: make([]byte, 64<<10)}
	if err := rc.Control(func(fd uintptr) { o.fd = int(fd) }); err != nil {
		return nil, err
	}
	return o, nil
}

// pump forwards the pipe's lines until EOF.
func (o *outPipe) pump(p *process) {
	defer p.pumps.Done()
	defer o.f.Close()
	// RawConn.Read calls the function when the pipe may be readable and
	// waits in the poller while it returns false.
	_ = o.rc.Read(func(fd uintptr) bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.readAvailable(int(fd))
		return o.eof
	})
}

// readAvailable reads until the pipe is empty or closed, emitting complete
// lines (and pieces of maxLogLine).
// Preconditions: o.mu is held.
func (o *outPipe) readAvailable(fd int) {
	for !o.eof {
		// The pipe is non-blocking: a raw read never blocks.
		n, err := rawio.Read(fd, o.chunk)
		if n > 0 && err == 0 {
			o.buf = append(o.buf, o.chunk[:n]...)
			o.emit(false)
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		case n <= 0 || err != 0:
			o.eof = true
			o.emit(true)
		}
	}
}

// emit passes complete lines in buf to onLine; at EOF also the remainder.
// Preconditions: o.mu is held.
func (o *outPipe) emit(final bool) {
	start := 0
	for {
		rest := o.buf[start:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(rest) >= maxLogLine {
				o.onLine(o.stream, rest[:maxLogLine], &o.head)
				start += maxLogLine
				continue
			}
			break
		}
		line := rest[:i]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > maxLogLine {
			for len(line) > maxLogLine {
				o.onLine(o.stream, line[:maxLogLine], &o.head)
				line = line[maxLogLine:]
			}
		}
		o.onLine(o.stream, line, &o.head)
		start += i + 1
	}
	if final && start < len(o.buf) {
		o.onLine(o.stream, o.buf[start:], &o.head)
		start = len(o.buf)
	}
	o.buf = append(o.buf[:0], o.buf[start:]...)
}

// killAll sends SIGKILL to every tracked process group.
func (s *supervisor) killAll() {
	s.mu.Lock()
	ps := make([]*process, 0, len(s.procs))
	for _, p := range s.procs {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		p.signal(syscall.SIGKILL)
	}
}

// statusString renders a wait status as Go's os.ProcessState.String does
// ("exit status 1", "signal: killed").
func statusString(ws syscall.WaitStatus) string {
	var s string
	switch {
	case ws.Exited():
		s = fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		s = "signal: " + ws.Signal().String()
	case ws.Stopped():
		s = "stop signal: " + ws.StopSignal().String()
	case ws.Continued():
		s = "continued"
	}
	if ws.CoreDump() {
		s += " (core dumped)"
	}
	return s
}
