// Package sandbox defines the contract between a worker and the isolation
// technology that runs one function environment: the Driver.
//
// A sandbox is one Lambda execution environment: an isolated process tree
// whose PID 1 is ignis-agent, a read-only root made of the host's runtime base
// plus the function's code at /var/task, layers at /opt and Ignis's runtime
// files at /var/runtime, a size-limited writable /tmp, limits on memory, CPU
// and processes, and a network namespace of its own: its loopback, plus, when
// the driver has a sandboxnet.Network and Spec.Network allows egress, a link
// to the world that never reaches the host or another sandbox.
//
// Lifecycle:
//
//	          Create                      agent exits / killed
//	(none) ───────────► running ──────────────────────────────► exited
//	                      │  ▲                                    │
//	             Destroy  │  │ Recover (same worker host,         │ Destroy
//	                      ▼  │  after a worker restart)           ▼
//	                   destroyed ◄────────────────────────────────┘
//
// Create returns once the agent process is started and its control channel
// (agentproto over the agent's stdio) is connected; the caller then waits for
// Hello and sends Init. The sandbox never serves two functions: a worker
// creates one per execution environment and destroys it when done.
//
// Drivers must persist nothing the worker does not know about: every
// resource a sandbox holds (processes, cgroups, mounts, state and temp
// directories) is derivable from its Handle, so that Recover, or Destroy of a
// recovered sandbox, can remove it after a crash of the worker.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/ignis-run/ignis/internal/fnspec"
)

// Errors a driver returns, wrapped with context.
var (
	// ErrGone reports that the sandbox no longer exists (Recover, Stats).
	ErrGone = errors.New("sandbox gone")
	// ErrUnsupported reports an operation the driver cannot do on this host.
	ErrUnsupported = errors.New("not supported by this driver")
	// ErrInvalidSpec reports a Spec that fails validation.
	ErrInvalidSpec = errors.New("invalid sandbox spec")
)

// Standard paths inside every sandbox.
const (
	TaskRoot    = "/var/task"    // function code, read-only
	RuntimeRoot = "/var/runtime" // Ignis runtime files (agent, bootstraps), read-only
	OptRoot     = "/opt"         // layers, read-only
	TmpRoot     = "/tmp"         // writable, size-limited
	AgentPath   = "/var/runtime/ignis-agent"
)

// Spec describes a sandbox to create. Host paths must exist and stay
// unchanged while the sandbox lives; the driver mounts them read-only.
type Spec struct {
	// ID names the sandbox uniquely on this host: 1–64 of [a-z0-9-].
	ID string
	// AgentBinary is the host path of the static ignis-agent binary. The
	// driver makes it available at AgentPath and runs it as PID 1.
	AgentBinary string
	// AgentArgs are extra arguments for the agent.
	AgentArgs []string
	// CodeDir is the host directory with the unpacked function code (/var/task).
	CodeDir string
	// LayerDirs are host directories overlaid, in order, at /opt. A driver that
	// cannot merge several may mount only one and must then reject more.
	LayerDirs []string
	// RuntimeDir is the host directory with Ignis's runtime files
	// (bootstraps), mounted at /var/runtime beside the agent.
	RuntimeDir string
	// ExtraMounts are further host paths mounted read-only at the same path
	// inside (e.g. a language runtime's install prefix not under /usr).
	ExtraMounts []string
	// MemoryMB is the hard memory limit (Lambda MemorySize). Exceeding it kills
	// the runtime (reported as out of memory).
	MemoryMB int
	// CPUMillis is the CPU quota in thousandths of a CPU (1769 MB → 1000).
	// 0 means MemoryMB*1000/1769, at least 100.
	CPUMillis int
	// PidsLimit caps processes+threads (Lambda: 1024). 0 means 1024.
	PidsLimit int
	// TmpMB is the size of /tmp (EphemeralStorage). 0 means 512.
	TmpMB int
	// DeferCPU leaves the CPU quota off until the caller applies it with
	// CPULimiter.LimitCPU (drivers whose sandboxes implement CPULimiter;
	// others ignore it and limit at once). Workers run the init phase at
	// full speed, as Lambda boosts init, and limit the invoke phase.
	DeferCPU bool
	// Network is the sandbox's network policy. Drivers without a
	// sandboxnet.Network give every sandbox its loopback alone.
	Network fnspec.Network
	// Env is the agent's environment (the runtime's env is sent in Init).
	Env []string
	// Stderr receives the agent's own diagnostics; nil discards them.
	Stderr io.Writer
}

// CPU returns the effective CPU quota in thousandths of a CPU.
func (s Spec) CPU() int {
	if s.CPUMillis > 0 {
		return s.CPUMillis
	}
	c := s.MemoryMB * 1000 / 1769
	if c < 100 {
		c = 100
	}
	return c
}

// Handle is the persisted description of a live sandbox. The worker writes it
// to its own state before it uses the sandbox, and hands it to Recover after a
// restart. Data is driver-private.
type Handle struct {
	Driver  string          `json:"driver"`
	ID      string          `json:"id"`
	Created time.Time       `json:"created"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Capabilities says what optional features a driver has on this host.
type Capabilities struct {
	// Checkpoint: the sandbox implements Checkpointer and the driver
	// Restorer (SnapStart), and they work on this host. A driver that can
	// only tell by trying (gvisor: runsc's build, platform and kernel)
	// probes it and reports false until it has.
	Checkpoint bool
	// Reattach: Recover can reconnect to a live sandbox's control channel.
	// When false, Recover destroys what it finds and returns ErrGone.
	Reattach bool
	// Network: sandboxes whose Spec.Network allows egress get it (the
	// driver has a sandboxnet.Network and can attach it here). When false
	// every sandbox has its loopback alone.
	Network bool
}

// Stats are resource readings of a sandbox.
type Stats struct {
	MemoryBytes    uint64 // current usage
	MaxMemoryBytes uint64 // peak usage since creation
	OOMKills       uint64 // times the memory limit killed a process
	CPUUsage       time.Duration
	PidsCurrent    uint64
}

// Driver creates and destroys sandboxes. Implementations are safe for
// concurrent use.
type Driver interface {
	// Name is the driver's name as given to --sandbox (jail, gvisor).
	Name() string
	// Capabilities reports optional features.
	Capabilities() Capabilities
	// Create builds and starts a sandbox. It blocks until the agent is
	// running (not until it is initialised) and honours ctx cancellation,
	// cleaning up whatever it built. Errors: ErrInvalidSpec, or an internal
	// failure; on error nothing is left behind.
	Create(ctx context.Context, spec Spec) (Sandbox, error)
	// Recover takes over a sandbox from a Handle persisted before a worker
	// restart. Drivers without Reattach remove every resource of the handle
	// and return ErrGone; so does any driver whose sandbox has died.
	// Idempotent.
	Recover(ctx context.Context, h Handle) (Sandbox, error)
}

// Sandbox is one running environment. Methods are safe for concurrent use.
type Sandbox interface {
	ID() string
	Handle() Handle
	// Control is the agent's control channel: writes go to the agent's
	// stdin, reads come from its stdout.
	Control() io.ReadWriter
	// Stats reads current resource usage. ErrGone after Destroy.
	Stats(ctx context.Context) (Stats, error)
	// Done is closed when the agent (PID 1) has exited.
	Done() <-chan struct{}
	// ExitErr is the agent's exit state once Done is closed (nil for exit 0).
	ExitErr() error
	// Destroy kills every process and removes every resource of the
	// sandbox: processes, mounts, cgroups, state and temp directories.
	// Idempotent; safe to call after the agent exited or concurrently.
	Destroy(ctx context.Context) error
}

// CPULimiter is implemented by sandboxes whose CPU quota can be set while
// they run.
type CPULimiter interface {
	// LimitCPU sets the CPU quota in thousandths of a CPU.
	LimitCPU(millis int) error
}

// MemoryPeaker is implemented by sandboxes that can report their peak
// memory cheaply (one read, no allocation). Workers call it after every
// invoke for the REPORT line's Max Memory Used, where a full Stats would cost
// more than the rest of the warm path.
type MemoryPeaker interface {
	// PeakMemory is the highest memory usage since creation, in bytes.
	PeakMemory() (uint64, error)
}

// Checkpointer is implemented by sandboxes of drivers with
// Capabilities.Checkpoint.
type Checkpointer interface {
	// Checkpoint writes the sandbox's full state (memory and files) into
	// dir and stops the sandbox.
	Checkpoint(ctx context.Context, dir string) error
}

// Restorer is implemented by drivers with Capabilities.Checkpoint: it starts
// a new sandbox from a checkpoint made by Checkpoint, under a new spec ID.
type Restorer interface {
	Restore(ctx context.Context, spec Spec, dir string) (Sandbox, error)
}
