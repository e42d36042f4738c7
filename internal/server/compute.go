package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/journal"
	"github.com/ignis-run/ignis/internal/logs"
	"github.com/ignis-run/ignis/internal/placement/fleet"
	"github.com/ignis-run/ignis/internal/registry"
	"github.com/ignis-run/ignis/internal/runtimes"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/gvisor"
	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/worker"

	"github.com/nats-io/nats.go"
)

// Sandbox driver names for Config.Sandbox.
const (
	SandboxAuto   = "auto"
	SandboxJail   = "jail"
	SandboxGVisor = "gvisor"
)

// ComputeConfig configures the invoke side of a server: the local worker,
// its sandboxes, the assignment service and function logs.
type ComputeConfig struct {
	// Sandbox is the sandbox driver: auto, jail or gvisor. auto takes
	// gvisor where runsc runs here on a fast platform (systrap or kvm), else
	// jail: on ptrace, gVisor's compatibility platform, a cold start costs
	// over 20 times a native start.
	Sandbox string
	// AgentBinary is the ignis-agent to run in sandboxes; empty: beside the
	// ignis binary, on PATH, or built from the source checkout.
	AgentBinary string
	// WorkerID names the local worker; WorkerMemoryMB and WorkerCPUMillis
	// are its capacity for placement (default: the machine's).
	WorkerID        string
	WorkerMemoryMB  int
	WorkerCPUMillis int
	// CgroupParent is the cgroup, relative to the root of each hierarchy,
	// under which the jail makes the worker's sandbox cgroups; empty:
	// ignis-<WorkerID>. A supervisor that runs the server in a cgroup of
	// its own (internal/testcluster, a CPU quota per host) points it
	// inside that cgroup, so that the quota and a kill cover the sandboxes
	// too.
	CgroupParent string
	// KeepAlive is how long an idle sandbox is kept for reuse.
	KeepAlive time.Duration
	// LogRetention is how long function logs are kept.
	LogRetention time.Duration
	// AsyncRetryDelay is the wait before the first retry of an Event
	// invoke after a function error (the second waits twice as long);
	// Lambda's is one minute.
	AsyncRetryDelay time.Duration
	// AsyncPollers bounds how many Event invokes run at once.
	AsyncPollers int
}

// DefaultComputeConfig returns the defaults: auto driver, the machine's
// capacity, 10 minute keep-alive, 7 days of logs.
func DefaultComputeConfig() ComputeConfig {
	mem, cpu := hostCapacity()
	return ComputeConfig{
		Sandbox:         SandboxAuto,
		WorkerID:        "local",
		WorkerMemoryMB:  mem,
		WorkerCPUMillis: cpu,
		KeepAlive:       10 * time.Minute,
		LogRetention:    7 * 24 * time.Hour,
		AsyncRetryDelay: time.Minute,
		AsyncPollers:    16,
	}
}

// Validate reports the first invalid field.
func (c ComputeConfig) Validate() error {
	switch c.Sandbox {
	case SandboxAuto, SandboxJail, SandboxGVisor:
	default:
		return fmt.Errorf("unknown sandbox driver %q (want auto, jail or gvisor)", c.Sandbox)
	}
	if c.WorkerID == "" {
		return errors.New("worker id is required")
	}
	if slices.Contains(strings.Split(c.CgroupParent, "/"), "..") {
		return fmt.Errorf("cgroup parent %q must not climb out of the hierarchy (..)", c.CgroupParent)
	}
	if c.WorkerMemoryMB < 128 {
		return fmt.Errorf("worker memory %d MB is below the 128 MB a function needs", c.WorkerMemoryMB)
	}
	if c.KeepAlive <= 0 || c.LogRetention <= 0 {
		return errors.New("keep-alive and log retention must be positive")
	}
	if c.AsyncRetryDelay <= 0 || c.AsyncPollers < 1 {
		return errors.New("async retry delay and async pollers must be positive")
	}
	return nil
}

// compute is the invoke side of a server: the local worker and its sandbox
// driver, the fleet registration, the assignment service with its journal,
// the invoke service and the function log store.
type compute struct {
	log     *slog.Logger
	driver  sandbox.Driver
	worker  *worker.Worker
	fleet   *fleet.Registry
	asg     *assignment.Service
	invoke  *invoke.Service
	logs    *logs.Store
	logsAPI http.Handler

	cancel context.CancelFunc
	// bg is closed when the background loops have stopped; nil until they
	// start.
	bg chan struct{}
}

// startCompute builds and starts the invoke side. On error it undoes what it
// started.
func startCompute(ctx context.Context, cfg Config, nc *nats.Conn, js jetstream.JetStream, reg *registry.Registry, log *slog.Logger) (_ *compute, err error) {
	c := &compute{log: log}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	defer func() {
		if err != nil {
			c.close(context.WithoutCancel(ctx))
		}
	}()

	lcfg := logs.DefaultConfig()
	lcfg.MaxAge = cfg.Compute.LogRetention
	if c.logs, err = logs.Open(ctx, nc, lcfg, log, nil); err != nil {
		return nil, fmt.Errorf("opening log store: %w", err)
	}
	c.logsAPI = logs.NewHandler(c.logs, logs.HandlerConfig{Region: cfg.Region, AccountID: cfg.AccountID, Logger: log})

	workDir := filepath.Join(cfg.DataDir, "worker")
	if c.driver, err = newDriver(ctx, cfg, workDir, log); err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "sandbox driver", "driver", c.driver.Name())

	runtimeDir := filepath.Join(workDir, "runtime")
	if err := runtimes.Install(runtimeDir); err != nil {
		return nil, fmt.Errorf("installing runtime bootstraps: %w", err)
	}
	agent := cfg.Compute.AgentBinary
	if agent == "" {
		if agent, err = worker.LocateAgent(ctx, filepath.Join(workDir, "bin")); err != nil {
			return nil, err
		}
	}
	wcfg := worker.DefaultConfig()
	wcfg.ID, wcfg.DataDir, wcfg.AgentBinary, wcfg.RuntimeDir, wcfg.Region = cfg.Compute.WorkerID, workDir, agent, runtimeDir, cfg.Region
	if c.worker, err = worker.New(wcfg, c.driver, reg, c.logs, log); err != nil {
		return nil, err
	}
	if n, err := c.worker.Recover(ctx); err != nil {
		return nil, fmt.Errorf("recovering sandboxes: %w", err)
	} else if n > 0 {
		log.InfoContext(ctx, "reaped sandboxes left by a previous run", "count", n)
	}

	jr, err := journal.Open(ctx, js, journal.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening journal: %w", err)
	}
	fcfg := fleet.DefaultConfig()
	fcfg.Logger = log
	if c.fleet, err = fleet.Open(ctx, js, fcfg); err != nil {
		return nil, fmt.Errorf("opening worker registry: %w", err)
	}
	local := invoke.NewLocal(c.worker)
	acfg := assignment.DefaultConfig()
	acfg.AccountConcurrency = cfg.AccountConcurrency
	if cfg.Compute.KeepAlive > 0 {
		acfg.KeepAlive = cfg.Compute.KeepAlive
	}
	acfg.Logger = log
	if c.asg, err = assignment.New(acfg, jr, local); err != nil {
		return nil, err
	}

	self := fleet.Registration{
		ID:        cfg.Compute.WorkerID,
		MemoryMB:  cfg.Compute.WorkerMemoryMB,
		CPUMillis: cfg.Compute.WorkerCPUMillis,
		Started:   time.Now(),
	}
	if err := c.fleet.Register(ctx, self); err != nil {
		return nil, fmt.Errorf("registering worker %s: %w", self.ID, err)
	}
	events, err := c.fleet.Watch(runCtx)
	if err != nil {
		return nil, fmt.Errorf("watching workers: %w", err)
	}
	for synced := false; !synced; {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil, errors.New("worker watch ended before it synced")
			}
			c.asg.ApplyFleetEvent(ev)
			synced = ev.Op == fleet.OpSynced
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := c.asg.Recover(ctx); err != nil {
		return nil, fmt.Errorf("recovering assignment state: %w", err)
	}
	c.invoke = invoke.New(c.asg, local, log)
	reservations, err := reg.WatchReservations(runCtx)
	if err != nil {
		return nil, err
	}
	if err := c.invoke.FollowReservations(ctx, reservations, reg.ReservationsWritten); err != nil {
		return nil, err
	}
	codes, err := reg.WatchCode(runCtx)
	if err != nil {
		return nil, err
	}

	c.bg = make(chan struct{})
	go func() {
		defer close(c.bg)
		done := make(chan struct{}, 4)
		go func() {
			for ev := range events {
				c.asg.ApplyFleetEvent(ev)
			}
			done <- struct{}{}
		}()
		go func() {
			// One at a time: a burst of deploys queues in the channel
			// rather than unpacking side by side with cold starts.
			for sha := range codes {
				c.worker.PrefetchCode(runCtx, sha)
			}
			done <- struct{}{}
		}()
		go func() {
			_ = c.asg.Run(runCtx)
			done <- struct{}{}
		}()
		go func() {
			err := c.fleet.KeepAlive(runCtx, self, fleet.DefaultConfig().TTL/3, func() fleet.Load {
				return fleet.Load{Sandboxes: len(c.worker.List())}
			})
			if err != nil && runCtx.Err() == nil {
				log.Error("worker heartbeat stopped", "err", err)
			}
			done <- struct{}{}
		}()
		for range 4 {
			<-done
		}
	}()
	return c, nil
}

// close stops the background loops, destroys every sandbox and flushes logs.
func (c *compute) close(ctx context.Context) {
	if c.cancel != nil {
		c.cancel()
	}
	if c.bg != nil {
		select {
		case <-c.bg:
		case <-ctx.Done():
		}
	}
	if c.asg != nil {
		c.asg.Wait()
	}
	if c.worker != nil {
		c.worker.Close(ctx)
	}
	// Drivers that keep resources of their own (the jail's prestarted
	// setup stages) release them last.
	if cl, ok := c.driver.(interface{ Close() error }); ok {
		if err := cl.Close(); err != nil {
			c.log.Warn("closing sandbox driver", "err", err)
		}
	}
	if c.fleet != nil && c.worker != nil {
		if err := c.fleet.Deregister(ctx, c.worker.ID()); err != nil {
			c.log.Warn("deregistering worker", "worker", c.worker.ID(), "err", err)
		}
	}
	if c.logs != nil {
		_ = c.logs.Close(ctx)
	}
}

// newDriver picks the sandbox driver: gvisor when asked, or for auto when
// runsc runs a probe container here; jail otherwise. A gvisor driver is
// always probed, so its Capabilities are this host's.
func newDriver(ctx context.Context, cfg Config, workDir string, log *slog.Logger) (sandbox.Driver, error) {
	dlog := log.With("component", "sandbox")
	newJail := func() (sandbox.Driver, error) {
		// The small setup-stage binary when installed beside ignis (or on
		// PATH); else the driver re-executes this binary (cmd/ignis calls
		// MaybeRunInit).
		initBin, err := worker.LocateJailInit()
		if err != nil {
			dlog.InfoContext(ctx, "jail setup stages re-execute the running binary", "reason", err)
		}
		parent := cfg.Compute.CgroupParent
		if parent == "" {
			parent = "ignis-" + cfg.Compute.WorkerID
		}
		d, err := jail.New(jail.Config{StateDir: filepath.Join(workDir, "jail"), CgroupParent: parent, InitBinary: initBin, Logger: dlog})
		if err != nil {
			return nil, fmt.Errorf("starting the jail sandbox driver: %w", err)
		}
		return d, nil
	}
	newGVisor := func() (*gvisor.Driver, error) {
		d, err := gvisor.New(gvisor.Config{StateDir: filepath.Join(workDir, "gvisor"), Logger: dlog})
		if err != nil {
			return nil, fmt.Errorf("starting the gvisor sandbox driver: %w", err)
		}
		return d, nil
	}
	switch cfg.Compute.Sandbox {
	case SandboxJail:
		return newJail()
	case SandboxGVisor:
		d, err := newGVisor()
		if err != nil {
			return nil, err
		}
		// Asked for by name, gVisor must work; the probe also finds what
		// it can do here (Capabilities.Checkpoint).
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := d.Probe(pctx); err != nil {
			return nil, fmt.Errorf("gvisor does not work on this host (--sandbox=gvisor): %w", err)
		}
		return d, nil
	case SandboxAuto, "":
		if _, err := exec.LookPath("runsc"); err != nil {
			return newJail()
		}
		d, err := newGVisor()
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			var platform string
			if platform, err = d.Platform(pctx); err == nil && platform == gvisor.PlatformPtrace {
				err = errors.New("runsc has only the ptrace platform here, too slow for a default")
			} else if err == nil {
				err = d.Probe(pctx)
			}
			cancel()
			if err == nil {
				return d, nil
			}
		}
		log.InfoContext(ctx, "using the jail driver; pass --sandbox=gvisor to use gVisor anyway", "reason", err)
		return newJail()
	}
	return nil, fmt.Errorf("unknown sandbox driver %q (want auto, jail or gvisor)", cfg.Compute.Sandbox)
}

// hostCapacity reports this machine's memory in MB and CPUs in millis.
func hostCapacity() (memoryMB, cpuMillis int) {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		memoryMB = int(uint64(si.Totalram) * uint64(si.Unit) >> 20)
	}
	return memoryMB, runtime.NumCPU() * 1000
}
