package jail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"

	"github.com/ignis-run/ignis/internal/sandbox"
)

// jailSandbox is one running jail. Safe for concurrent use.
type jailSandbox struct {
	log    *slog.Logger
	handle sandbox.Handle
	cmd    *exec.Cmd
	cg     cgroup
	ctlIn  *os.File // worker → agent stdin
	ctlOut *os.File // agent stdout → worker

	done    chan struct{} // closed when the agent has exited
	exitErr error         // set before done is closed

	mu        sync.Mutex // serialises Destroy
	destroyed bool       // guarded by mu
}

var (
	_ sandbox.Sandbox    = (*jailSandbox)(nil)
	_ sandbox.CPULimiter = (*jailSandbox)(nil)
)

func (s *jailSandbox) ID() string             { return s.handle.ID }
func (s *jailSandbox) Handle() sandbox.Handle { return s.handle }
func (s *jailSandbox) Done() <-chan struct{}  { return s.done }

// Control is the agent's stdio.
func (s *jailSandbox) Control() io.ReadWriter {
	return struct {
		io.Reader
		io.Writer
	}{s.ctlOut, s.ctlIn}
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
	if err := removeCgroup(ctx, s.cg); err != nil {
		return fmt.Errorf("destroying %s: %w", s.handle.ID, err)
	}
	s.ctlIn.Close()
	s.ctlOut.Close()
	s.destroyed = true
	return nil
}
