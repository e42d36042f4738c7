package jail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/ignis-run/ignis/internal/rawio"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// jailSandbox is one running jail. Safe for concurrent use.
type jailSandbox struct {
	log    *slog.Logger
	handle sandbox.Handle
	cmd    *exec.Cmd
	cg     cgroup
	ctlIn  *os.File         // worker → agent stdin
	ctlOut *os.File         // agent stdout → worker
	ctl    io.ReadWriter    // ctlOut and ctlIn, raw (see package rawio)
	link   *sandboxnet.Link // nil without a network link

	done    chan struct{} // closed when the agent has exited
	exitErr error         // set before done is closed

	mu        sync.Mutex // serialises Destroy
	destroyed bool       // guarded by mu

	// peakPath is the cgroup file with the memory high-water mark.
	peakPath string
	peakMu   sync.Mutex
	// peakFile is peakPath kept open, read in place through peakFD (Fd
	// costs an fcntl per call). Guarded by peakMu.
	peakFile *os.File
	peakFD   int
	// peakBuf is the read buffer. Guarded by peakMu.
	peakBuf [32]byte
}

// peakMemoryFile is the cgroup file holding a cgroup's memory high-water
// mark: memory.max_usage_in_bytes in v1, memory.peak in v2 (kernel 5.19+).
func peakMemoryFile(mode cgroupMode, cgPath string) string {
	if mode == cgroupV2 {
		return filepath.Join("/sys/fs/cgroup", cgPath, "memory.peak")
	}
	return filepath.Join("/sys/fs/cgroup/memory", cgPath, "memory.max_usage_in_bytes")
}

// PeakMemory implements sandbox.MemoryPeaker with one pread of the cgroup's
// high-water mark, falling back to Stats where the file is missing.
func (s *jailSandbox) PeakMemory() (uint64, error) {
	s.peakMu.Lock()
	defer s.peakMu.Unlock()
	if s.peakFile == nil {
		f, err := os.Open(s.peakPath)
		if err != nil {
			st, serr := s.Stats(context.Background())
			return st.MaxMemoryBytes, serr
		}
		s.peakFile, s.peakFD = f, int(f.Fd())
	}
	// Raw: one syscall per invoke on the package os path would wake the
	// server's sysmon (see package rawio). peakMu keeps the file open.
	n, e := rawio.Pread(s.peakFD, s.peakBuf[:], 0)
	if e != 0 {
		return 0, fmt.Errorf("reading %s: %w", s.peakPath, e)
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(s.peakBuf[:n])), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", s.peakPath, err)
	}
	return v, nil
}

var (
	_ sandbox.Sandbox      = (*jailSandbox)(nil)
	_ sandbox.CPULimiter   = (*jailSandbox)(nil)
	_ sandbox.MemoryPeaker = (*jailSandbox)(nil)
)

func (s *jailSandbox) ID() string             { return s.handle.ID }
func (s *jailSandbox) Handle() sandbox.Handle { return s.handle }
func (s *jailSandbox) Done() <-chan struct{}  { return s.done }

// Control is the agent's stdio.
func (s *jailSandbox) Control() io.ReadWriter {
	return s.ctl
}

// ExitErr is the agent's exit state once Done is closed.
func (s *jailSandbox) ExitErr() error {
	select {
	case <-s.done:
		return s.exitErr
	default:
		return nil
	}
}

func (s *jailSandbox) wait() {
	s.exitErr = s.cmd.Wait()
	close(s.done)
}

// LimitCPU implements sandbox.CPULimiter: it sets the cgroup's CPU quota.
func (s *jailSandbox) LimitCPU(millis int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return fmt.Errorf("limiting CPU of %s: %w", s.handle.ID, sandbox.ErrGone)
	}
	if err := s.cg.limitCPU(millis); err != nil {
		return fmt.Errorf("limiting CPU of %s: %w", s.handle.ID, err)
	}
	return nil
}

// Stats reads the sandbox's cgroup.
func (s *jailSandbox) Stats(ctx context.Context) (sandbox.Stats, error) {
	s.mu.Lock()
	destroyed := s.destroyed
	s.mu.Unlock()
	if destroyed {
		return sandbox.Stats{}, fmt.Errorf("stats of %s: %w", s.handle.ID, sandbox.ErrGone)
	}
	st, err := s.cg.stats()
	if err != nil {
		return st, fmt.Errorf("stats of %s: %w", s.handle.ID, err)
	}
	return st, nil
}

// Destroy kills PID 1 (the kernel then kills the rest of the pid
// namespace, and the mount namespace with every mount goes with it), kills
// anything still in the cgroup, waits, removes the cgroup and closes the
// control channel. Idempotent; when ctx ends first it returns an error and
// a later call finishes the job.
func (s *jailSandbox) Destroy(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return nil
	}
	// Rules first, while the namespace, and so the interface's name, is
	// certainly still this sandbox's: once it is gone the kernel may give
	// the name to another sandbox, whose rules a late release would take.
	if err := s.link.Close(); err != nil {
		return fmt.Errorf("destroying %s: %w", s.handle.ID, err)
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("killing agent", "err", err)
	}
	if err := s.cg.kill(); err != nil {
		s.log.Warn("killing cgroup", "err", err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("destroying %s: waiting for the agent: %w", s.handle.ID, ctx.Err())
	}
	s.peakMu.Lock()
	if s.peakFile != nil {
		s.peakFile.Close()
		s.peakFile = nil
	}
	s.peakMu.Unlock()
	if err := removeCgroup(ctx, s.cg); err != nil {
		return fmt.Errorf("destroying %s: %w", s.handle.ID, err)
	}
	s.ctlIn.Close()
	s.ctlOut.Close()
	s.destroyed = true
	return nil
}
