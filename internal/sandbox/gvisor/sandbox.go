package gvisor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// ErrOutOfMemory is wrapped in ExitErr when the sandbox died because it hit
// the memory limit. The limit kills the whole sandbox (see memwatch.go), so
// the agent cannot report the runtime's death itself.
var ErrOutOfMemory = errors.New("sandbox killed: out of memory")

// Sandbox is one gVisor sandbox. Its methods are safe for concurrent use.
type Sandbox struct {
	d      *Driver
	id     string
	data   handleData
	handle sandbox.Handle
	log    *slog.Logger
	cmd    *exec.Cmd // nil for a recovered sandbox
	ctl    *control
	cg     cgroup    // nil when none was made
	mem    *memWatch // nil for a recovered sandbox

	done    chan struct{} // closed when the runsc process has exited
	exitErr error         // written before done is closed

	// destroyMu serialises Destroy; destroyed is guarded by it.
	destroyMu sync.Mutex
	destroyed bool
}

var (
	_ sandbox.CPULimiter   = (*Sandbox)(nil)
	_ sandbox.MemoryPeaker = (*Sandbox)(nil)
)

// PeakMemory implements sandbox.MemoryPeaker from the memory watcher's
// readings, falling back to Stats before the watcher found the Sentry.
func (s *Sandbox) PeakMemory() (uint64, error) {
	if s.mem != nil {
		if _, peak, _, ok := s.mem.readings(); ok {
			return peak, nil
		}
	}
	st, err := s.Stats(context.Background())
	return st.MaxMemoryBytes, err
}

// LimitCPU implements sandbox.CPULimiter on the sandbox's host cgroup.
func (s *Sandbox) LimitCPU(millis int) error {
	if s.cg == nil {
		return nil
	}
	quota, period := int64(millis)*100, uint64(100000)
	return s.cg.limitCPU(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}})
}

var (
	_ sandbox.Sandbox      = (*Sandbox)(nil)
	_ sandbox.Checkpointer = (*Sandbox)(nil)
)

// control joins the two pipes of the agent's stdio into the Control
// channel. The first traffic in either direction (the agent's Hello, or the
// worker's first Invoke to a restored sandbox) means the sandbox has booted;
// first runs then, once.
type control struct {
	r     *os.File      // agent's stdout
	w     *os.File      // agent's stdin
	rw    io.ReadWriter // r and w, raw (see package rawio)
	once  sync.Once
	first func()
	// readOnly delays first to the agent's first output: a restored
	// Sentry is still loading its image when the worker's first Invoke
	// arrives, and throttling that would cost seconds.
	readOnly bool
}

func (c *control) Read(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	if n > 0 {
		c.once.Do(c.first)
	}
	return n, err
}

func (c *control) Write(p []byte) (int, error) {
	if !c.readOnly {
		c.once.Do(c.first)
	}
	return c.rw.Write(p)
}

func (c *control) close() {
	if c == nil {
		return
	}
	if c.r != nil {
		c.r.Close()
	}
	if c.w != nil {
		c.w.Close()
	}
}

// ID implements sandbox.Sandbox.
func (s *Sandbox) ID() string { return s.id }

// Handle implements sandbox.Sandbox.
func (s *Sandbox) Handle() sandbox.Handle { return s.handle }

// Control implements sandbox.Sandbox.
func (s *Sandbox) Control() io.ReadWriter { return s.ctl }

// Done implements sandbox.Sandbox.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// ExitErr implements sandbox.Sandbox. It wraps ErrOutOfMemory when the
// memory limit killed the sandbox.
func (s *Sandbox) ExitErr() error {
	select {
	case <-s.done:
		return s.exitErr
	default:
		return nil
	}
}

// wait reaps the runsc process and records how the agent ended.
func (s *Sandbox) wait() {
	err := s.cmd.Wait()
	if err != nil && s.cg != nil {
		kills := s.mem.oomKills()
		if st, serr := s.cg.stats(); serr == nil {
			kills = max(kills, st.OOMKills)
		}
		if kills > 0 {
			err = fmt.Errorf("%w (%d kills, limit reached): %w", ErrOutOfMemory, kills, err)
		}
	}
	if err != nil {
		s.log.Debug("sandbox exited", "err", err)
	}
	s.exitErr = err
	close(s.done)
}

// Stats implements sandbox.Sandbox. Memory and its peak are the
// function's (the Sentry's memory file, see memwatch.go), the process
// count is the sandbox's processes and threads inside; CPU is the host
// cgroup's, Sentry included. OOMKills is non-zero once the memory limit
// killed the sandbox. Until the Sentry's memory file is found (the first
// milliseconds of boot) the readings are the host cgroup's. It keeps
// working after the agent exited, until Destroy.
func (s *Sandbox) Stats(ctx context.Context) (sandbox.Stats, error) {
	s.destroyMu.Lock()
	if s.destroyed || s.cg == nil {
		s.destroyMu.Unlock()
		return sandbox.Stats{}, fmt.Errorf("gvisor: stats of %s: %w", s.id, sandbox.ErrGone)
	}
	st, err := s.cg.stats()
	s.destroyMu.Unlock()
	if err != nil {
		return sandbox.Stats{}, fmt.Errorf("gvisor: stats of %s: %w", s.id, err)
	}
	if s.mem != nil {
		// The function's own readings. An OOM kill of the sandbox may
		// have been counted by the kernel (the process its OOM killer
		// took first), by memWatch (the rest), or both.
		if cur, peak, kills, ok := s.mem.readings(); ok {
			st.MemoryBytes, st.MaxMemoryBytes = cur, peak
			st.OOMKills = max(st.OOMKills, kills)
		}
		if n, ok := s.mem.tasks(ctx); ok {
			st.PidsCurrent = n
		}
	}
	return st, nil
}

// Checkpoint implements sandbox.Checkpointer: it saves the sandbox into
// dir (created if needed) and stops it; the caller still calls Destroy. The
// agent must be idle: frames in flight are lost.
func (s *Sandbox) Checkpoint(ctx context.Context, dir string) error {
	s.destroyMu.Lock()
	defer s.destroyMu.Unlock()
	if s.destroyed {
		return fmt.Errorf("gvisor: checkpointing %s: %w", s.id, sandbox.ErrGone)
	}
	select {
	case <-s.done:
		return fmt.Errorf("gvisor: checkpointing %s: agent exited: %w", s.id, sandbox.ErrGone)
	default:
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("gvisor: checkpointing %s: %w", s.id, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("gvisor: checkpointing %s: %w", s.id, err)
	}
	// Saving is the Sentry's work, not the function's: lift the quota
	// (at 128 MB it is 7% of a CPU, which makes a checkpoint take seconds)
	// and the memory limit back to the safety one.
	if s.cg != nil {
		if s.mem != nil {
			if err := s.mem.relax(); err != nil {
				s.log.Warn("relaxing memory limit for checkpoint", "err", err)
			}
		}
		unlimited := int64(-1)
		if err := s.cg.limitCPU(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &unlimited}}); err != nil {
			s.log.Warn("lifting cpu quota for checkpoint", "err", err)
		}
	}
	if out, err := s.runsc(ctx, "checkpoint", "--image-path", abs, s.id); err != nil {
		return fmt.Errorf("gvisor: checkpointing %s: %w: %s", s.id, err, out)
	}
	// runsc checkpoint stops the sandbox; the foreground runsc then exits.
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("gvisor: checkpointing %s: waiting for stop: %w", s.id, ctx.Err())
	}
	return nil
}

// Destroy implements sandbox.Sandbox.
func (s *Sandbox) Destroy(ctx context.Context) error {
	s.destroyMu.Lock()
	defer s.destroyMu.Unlock()
	if s.destroyed {
		return nil
	}
	if err := s.cleanup(ctx); err != nil {
		return fmt.Errorf("gvisor: destroying %s: %w", s.id, err)
	}
	s.destroyed = true
	return nil
}

// cleanup removes every resource of the sandbox, whatever state it is in:
// the container (through runsc, then by killing what is left in the
// cgroup), runsc's state, the cgroup, the bundle and the pipes. It works
// from handle data alone so Recover can use it.
//
// Preconditions: s.destroyMu held, or s not yet shared.
func (s *Sandbox) cleanup(ctx context.Context) error {
	// Cleanup must finish even when the caller's ctx is already done: a
	// half-removed sandbox is worse than a late one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	exited := func() bool {
		select {
		case <-s.done:
			return true
		default:
			return false
		}
	}
	if !exited() {
		s.runsc(ctx, "kill", s.id, "KILL")
	}
	if s.cmd != nil {
		// The foreground runsc deletes the container itself once it has
		// stopped; a `runsc delete --force` racing it blocks both for
		// seconds, so wait for it first. The Sentry runs attached to it:
		// killing runsc kills the sandbox too, should kill not have worked
		// (e.g. mid-create).
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
			s.log.Warn("runsc did not exit after kill; killing it", "pid", s.cmd.Process.Pid)
			s.cmd.Process.Kill()
			<-s.done
		}
		if s.mem != nil {
			<-s.mem.stopped // returns at once after done
		}
	} else if s.data.PID > 0 && isRunscFor(s.data.PID, s.id) {
		// Recovered: the previous worker's runsc child may still live.
		syscall.Kill(s.data.PID, syscall.SIGKILL)
	}
	// runsc names its state "<id>_sandbox:<sandbox id>.{state,lock}"; what
	// is left after the foreground runsc is gone needs a delete.
	var state []string
	if s.data.Root != "" {
		state, _ = filepath.Glob(filepath.Join(s.data.Root, s.id+"_sandbox:*"))
	}
	if len(state) > 0 {
		s.runsc(ctx, "delete", "--force", s.id)
	}
	var errs []error
	if s.cg != nil {
		// Belt and braces: runsc joins the Sentry and gofer to our cgroup,
		// so anything still in it belongs to this sandbox.
		s.cg.kill()
		if err := s.cg.delete(); err != nil {
			errs = append(errs, err)
		}
	}
	// A delete that failed (state of a sandbox killed mid-create) leaves
	// files runsc can no longer act on.
	if s.data.Root != "" {
		leftovers, _ := filepath.Glob(filepath.Join(s.data.Root, s.id+"_sandbox:*"))
		for _, f := range leftovers {
			os.Remove(f)
		}
	}
	if s.data.Bundle != "" {
		if err := os.RemoveAll(s.data.Bundle); err != nil {
			errs = append(errs, err)
		}
	}
	// runsc is gone: the namespace's last user, once its mount is, takes
	// the sandbox's end of the link with it.
	if s.data.Link != "" && s.d.net != nil {
		if err := s.d.net.ReleaseIn(s.data.NetNS, s.data.Link); err != nil {
			errs = append(errs, err)
		}
	}
	if s.data.NetNS != "" {
		if err := sandboxnet.RemoveNamespace(s.data.NetNS); err != nil {
			errs = append(errs, err)
		}
	}
	s.ctl.close()
	return errors.Join(errs...)
}

// runsc runs one runsc command on this sandbox and returns its combined
// output.
func (s *Sandbox) runsc(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.d.runsc, append(s.d.globalFlags(s.data), args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		s.log.Debug("runsc", "args", args, "err", err, "out", strings.TrimSpace(out.String()))
		return strings.TrimSpace(out.String() + " " + s.logTail()), err
	}
	return out.String(), nil
}

// logTail is the end of runsc's log, for error messages.
func (s *Sandbox) logTail() string {
	if s.data.Bundle == "" {
		return ""
	}
	return tail(filepath.Join(s.data.Bundle, "runsc.log"), 2048)
}

// isRunscFor reports whether pid is a runsc process for container id, so
// that a stale PID from a handle never hits an unrelated process.
func isRunscFor(pid int, id string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(args) > 0 && strings.Contains(filepath.Base(args[0]), "runsc") && args[len(args)-1] == id
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
