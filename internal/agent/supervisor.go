package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
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
	go pump(p, outR, "stdout", onLine)
	go pump(p, errR, "stderr", onLine)
	return p, nil
}

// maxLogLine is where a long output line is split (Lambda's 256 KB).
const maxLogLine = 256 << 10

// pump reads r line by line. A line longer than maxLogLine is passed on in
// maxLogLine pieces. The line slice is only valid during the onLine call.
func pump(p *process, r *os.File, stream string, onLine func(stream string, line []byte, head *[]byte)) {
	defer p.pumps.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLogLine)
	head := make([]byte, 0, 128)
	for {
		line, err := br.ReadSlice('\n')
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			onLine(stream, line, &head)
		} else if len(line) > 0 {
			onLine(stream, line, &head)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return
		}
	}
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
