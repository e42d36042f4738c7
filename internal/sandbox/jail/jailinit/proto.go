package jailinit

// The protocol between the driver and a setup stage. Both ends are built
// from this file; Version tells a stage binary from another build apart.

// Version is the protocol's version, sent in RootConfig. A stage refuses a
// RootConfig of another version: a stale ignis-jail-init beside a newer
// worker would otherwise drop the fields it does not know.
const Version = 1

// Arg0 is argv[0] of a setup stage. MaybeRunInit-style hooks in a binary
// that doubles as the stage (the driver's /proc/self/exe fallback)
// recognise it; the dedicated ignis-jail-init binary ignores it.
const Arg0 = "ignis-jail-init"

// File descriptors of a setup stage (exec.Cmd ExtraFiles start at 3).
const (
	// FDSock is a SOCK_SEQPACKET socket on which the stage receives two
	// messages, each JSON with file descriptors attached (SCM_RIGHTS):
	// RootConfig and its mount trees as soon as it is started, answered
	// with Ready once the shared part of the root is built; then
	// SandboxConfig, sent by Create, with the agent's stdin, stdout and
	// stderr and the sandbox's own mount trees; then Start, once the stage
	// is in the sandbox's cgroup.
	FDSock = 3
	// FDErr is written the setup error text; a successful execve of the
	// agent closes it.
	FDErr = 4
	// FDExe is the stage's own binary, which the driver opened and had
	// executed as /proc/self/fd/5, so that no path of it had to be
	// resolved by the stage's unprivileged host uid. The stage closes it
	// first thing.
	FDExe = 5
)

// Ready is the one byte a stage writes on FDSock when its root is built
// and it waits for a sandbox.
const Ready = 'R'

// Start is the one-byte message the driver sends after SandboxConfig,
// once the stage is in the sandbox's cgroup with its limits: the stage
// builds the sandbox's part of the root meanwhile, and execs the agent
// only after it.
const Start = 'S'

// The descriptors sent with SandboxConfig are the agent's stdin, stdout
// and stderr, then the mount trees: Mount.FD is an index among the latter
// (with RootConfig, among all of them).
const (
	FirstMountFD = 3
	// MaxMounts keeps a message within SCM_MAX_FD (253 descriptors).
	MaxMounts = 250
)

// MaxConfig bounds a config message, in bytes.
const MaxConfig = 256 << 10

// RootConfig is the stage's first message: what every sandbox's root
// shares (the host's runtime base, the minimal /etc, the devices), sent
// when the stage is started, before any sandbox is asked for.
type RootConfig struct {
	Version  int     `json:"version"`
	Hostname string  `json:"hostname"`
	Mounts   []Mount `json:"mounts"`
	Links    []Link  `json:"links"`
}

// SandboxConfig is the stage's second message, sent by Create: the part
// of the sandbox that depends on its Spec. Path (in the new root) is
// executed with Argv and Env once the root is finished.
type SandboxConfig struct {
	TmpMB  int      `json:"tmpMB"`
	Mounts []Mount  `json:"mounts"`
	Path   string   `json:"path"`
	Argv   []string `json:"argv"`
	Env    []string `json:"env"`
}

// Mount attaches the detached mount tree at FD to Target (relative to the
// new root). File targets are created as empty files, others as
// directories.
type Mount struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
	File   bool   `json:"file,omitempty"`
}

// Link is a symlink in the new root (Debian's /bin → usr/bin).
type Link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}
