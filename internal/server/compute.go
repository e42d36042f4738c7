package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/placement/fleet"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/gvisor"
	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/worker"
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
	// HeartbeatTTL is how long a worker's registration outlives its last
	// heartbeat (it beats every third of it): the time to notice a dead
	// worker. One value for the whole fleet: the registry bucket has one.
	HeartbeatTTL time.Duration
	// LogRetention is how long function logs are kept.
	LogRetention time.Duration
	// AsyncRetryDelay is the wait before the first retry of an Event
	// invoke after a function error (the second waits twice as long);
	// Lambda's is one minute.
	AsyncRetryDelay time.Duration
	// AsyncPollers bounds how many Event invokes run at once.
	AsyncPollers int
	// SandboxNetwork gives sandboxes egress (package sandboxnet), as each
	// function's policy allows. Off: every sandbox has its loopback alone.
	SandboxNetwork bool
	// SandboxCIDR is the IPv4 pool sandbox links are cut from; empty:
	// sandboxnet.DefaultCIDR.
	SandboxCIDR string
	// SandboxDNS are the nameservers sandboxes use; empty: the host's
	// that sandboxes can reach.
	SandboxDNS []string
	// SandboxDeny are further IPv4 prefixes no sandbox reaches unless its
	// function's allow-list names them (other nodes of a cluster).
	SandboxDeny []string
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
		HeartbeatTTL:    fleet.DefaultConfig().TTL,
		LogRetention:    7 * 24 * time.Hour,
		AsyncRetryDelay: time.Minute,
		AsyncPollers:    16,
		SandboxNetwork:  true,
	}
}

// Validate reports the first invalid field.
func (c ComputeConfig) Validate() error {
	if _, ok := drivers()[c.Sandbox]; !ok {
		return fmt.Errorf("unknown sandbox driver %q (want %s)", c.Sandbox, driverNames())
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
	if c.HeartbeatTTL < time.Second {
		return fmt.Errorf("heartbeat ttl %v: want at least 1s", c.HeartbeatTTL)
	}
	if c.KeepAlive <= 0 || c.LogRetention <= 0 {
		return errors.New("keep-alive and log retention must be positive")
	}
	if c.AsyncRetryDelay <= 0 || c.AsyncPollers < 1 {
		return errors.New("async retry delay and async pollers must be positive")
	}
	if _, err := c.sandboxNetConfig(); err != nil {
		return err
	}
	return nil
}

// sandboxNetConfig parses the sandbox network settings.
func (c ComputeConfig) sandboxNetConfig() (sandboxnet.Config, error) {
	var nc sandboxnet.Config
	if c.SandboxCIDR != "" {
		p, err := netip.ParsePrefix(c.SandboxCIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
			return nc, fmt.Errorf("sandbox CIDR %q: want an IPv4 prefix of /30 or larger", c.SandboxCIDR)
		}
		nc.CIDR = p
	}
	for _, s := range c.SandboxDNS {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nc, fmt.Errorf("sandbox nameserver %q: want an IPv4 address", s)
		}
		nc.Nameservers = append(nc.Nameservers, a)
	}
	for _, s := range c.SandboxDeny {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nc, fmt.Errorf("sandbox deny %q: want an IPv4 address or prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if !p.Addr().Is4() {
			return nc, fmt.Errorf("sandbox deny %q: want an IPv4 address or prefix", s)
		}
		nc.Deny = append(nc.Deny, p)
	}
	return nc, nil
}

// driverFunc starts a sandbox driver keeping its state under workDir,
// attaching sandboxes through net (nil: loopback alone).
type driverFunc func(ctx context.Context, cfg Config, workDir string, net *sandboxnet.Network, log *slog.Logger) (sandbox.Driver, error)

// drivers is the sandbox driver table, by ComputeConfig.Sandbox name.
// Adding a driver is one entry here.
func drivers() map[string]driverFunc {
	return map[string]driverFunc{
		SandboxAuto:   newAutoDriver,
		SandboxJail:   newJailDriver,
		SandboxGVisor: newGVisorDriver,
	}
}

// driverNames lists the table's names for messages: "a, b or c".
func driverNames() string {
	names := slices.Sorted(maps.Keys(drivers()))
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// newDriver starts the driver cfg.Compute.Sandbox names (empty: auto).
func newDriver(ctx context.Context, cfg Config, workDir string, net *sandboxnet.Network, log *slog.Logger) (sandbox.Driver, error) {
	name := cfg.Compute.Sandbox
	if name == "" {
		name = SandboxAuto
	}
	newD, ok := drivers()[name]
	if !ok {
		return nil, fmt.Errorf("unknown sandbox driver %q (want %s)", cfg.Compute.Sandbox, driverNames())
	}
	return newD(ctx, cfg, workDir, net, log)
}

// newJailDriver starts the jail driver.
func newJailDriver(ctx context.Context, cfg Config, workDir string, net *sandboxnet.Network, log *slog.Logger) (sandbox.Driver, error) {
	dlog := log.With("component", "sandbox")
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
	d, err := jail.New(jail.Config{StateDir: filepath.Join(workDir, "jail"), CgroupParent: parent, InitBinary: initBin, Network: net, Logger: dlog})
	if err != nil {
		return nil, fmt.Errorf("starting the jail sandbox driver: %w", err)
	}
	return d, nil
}

// openGVisor returns an unprobed gvisor driver.
func openGVisor(workDir string, net *sandboxnet.Network, log *slog.Logger) (*gvisor.Driver, error) {
	runsc, err := worker.LocateRunsc()
	if err != nil {
		return nil, fmt.Errorf("starting the gvisor sandbox driver: %w", err)
	}
	d, err := gvisor.New(gvisor.Config{Runsc: runsc, StateDir: filepath.Join(workDir, "gvisor"), Network: net, Logger: log.With("component", "sandbox")})
	if err != nil {
		return nil, fmt.Errorf("starting the gvisor sandbox driver: %w", err)
	}
	return d, nil
}

// newGVisorDriver starts the gvisor driver, probed: asked for by name,
// gVisor must work, and the probe also finds what it can do here
// (Capabilities.Checkpoint).
func newGVisorDriver(ctx context.Context, cfg Config, workDir string, net *sandboxnet.Network, log *slog.Logger) (sandbox.Driver, error) {
	d, err := openGVisor(workDir, net, log)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := d.Probe(pctx); err != nil {
		return nil, fmt.Errorf("gvisor does not work on this host (--sandbox=gvisor): %w", err)
	}
	return d, nil
}

// newAutoDriver starts gvisor where runsc runs a probe container here on a
// fast platform, jail otherwise.
func newAutoDriver(ctx context.Context, cfg Config, workDir string, net *sandboxnet.Network, log *slog.Logger) (sandbox.Driver, error) {
	if _, err := worker.LocateRunsc(); err != nil {
		return newJailDriver(ctx, cfg, workDir, net, log)
	}
	d, err := openGVisor(workDir, net, log)
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
	return newJailDriver(ctx, cfg, workDir, net, log)
}

// hostCapacity reports this machine's memory in MB and CPUs in millis.
func hostCapacity() (memoryMB, cpuMillis int) {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		memoryMB = int(uint64(si.Totalram) * uint64(si.Unit) >> 20)
	}
	return memoryMB, runtime.NumCPU() * 1000
}
