package gvisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/rawio"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// Name is the driver's name as given to --sandbox.
const Name = "gvisor"

// Platforms runsc can use on this kind of host, in order of preference.
const (
	PlatformSystrap = "systrap" // newer runsc builds; fastest without KVM
	PlatformPtrace  = "ptrace"  // every build; slowest but always works
)

// Config configures the driver.
type Config struct {
	// Runsc is the runsc binary. Empty means "runsc" from PATH.
	Runsc string
	// StateDir holds runsc's state (--root) and the per-sandbox bundles. It
	// must be on a filesystem that allows bind-mount sources (not noexec for
	// the agent). Required.
	StateDir string
	// Platform forces a runsc platform; empty detects one: systrap when this
	// runsc lists it and a trivial container runs on it, else ptrace.
	Platform string
	// ExtraFlags are further global runsc flags (e.g. --debug, --strace).
	ExtraFlags []string
	// Network attaches sandboxes: each gets a network namespace of its
	// own, mounted under StateDir/netns, which runsc's netstack takes
	// over (--network=sandbox). Nil: --network=none, loopback alone. The
	// driver does not close it.
	Network *sandboxnet.Network
	// Logger receives the driver's diagnostics. Nil discards them.
	Logger *slog.Logger
}

// Driver runs sandboxes under gVisor. It is safe for concurrent use.
type Driver struct {
	runsc string
	state string
	extra []string
	net   *sandboxnet.Network
	log   *slog.Logger

	// canCheckpoint is what the last Probe found: whether this host's
	// runsc can checkpoint a sandbox and restore it. Not under mu, which
	// Platform holds for the seconds detection takes.
	canCheckpoint atomic.Bool
	// canNetwork is what the last Probe or ProbeNetwork found: whether
	// runsc's netstack runs in a namespace of ours here. Sandboxes are
	// attached only when it is true.
	canNetwork atomic.Bool

	mu       sync.Mutex
	platform string // guarded by mu; "" until detected
}

var (
	_ sandbox.Driver   = (*Driver)(nil)
	_ sandbox.Restorer = (*Driver)(nil)
)

// New returns a driver. It checks only that runsc exists and the state
// directory can be made; Probe tells whether runsc can run a container here.
func New(cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("gvisor: state dir not set")
	}
	bin := cfg.Runsc
	if bin == "" {
		bin = "runsc"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("gvisor: finding runsc: %w", err)
	}
	state, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("gvisor: state dir: %w", err)
	}
	for _, d := range []string{filepath.Join(state, "runsc"), filepath.Join(state, "bundles"), filepath.Join(state, "netns")} {
		// 0711: runsc's gofer must traverse to the bundle's rootfs.
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("gvisor: creating %s: %w", d, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A namespace whose sandbox has no bundle was left by a worker killed
	// mid-create, before the sandbox's handle was saved: nobody will
	// recover it. (One with a bundle waits for Recover.)
	if names, err := os.ReadDir(filepath.Join(state, "netns")); err == nil {
		for _, e := range names {
			if _, err := os.Lstat(filepath.Join(state, "bundles", e.Name())); os.IsNotExist(err) {
				if err := sandboxnet.RemoveNamespace(filepath.Join(state, "netns", e.Name())); err != nil {
					log.Warn("removing the network namespace of a sandbox that never started", "err", err)
				}
			}
		}
	}
	return &Driver{
		runsc:    path,
		state:    state,
		extra:    append([]string(nil), cfg.ExtraFlags...),
		net:      cfg.Network,
		log:      log.With("component", "sandbox.gvisor"),
		platform: cfg.Platform,
	}, nil
}

// Name implements sandbox.Driver.
func (d *Driver) Name() string { return Name }

// nullNetNS is where runsc (2023 and later) pins the empty network
// namespace it shares between gofers, under --root: a bind mount nobody
// else removes, and which keeps the state directory from being removed.
const nullNetNS = "null-netns"

// Close unmounts what runsc pinned under the driver's state directory.
// Live sandboxes are not affected (a new gofer makes its own namespace).
// Idempotent.
func (d *Driver) Close() error {
	p := filepath.Join(d.state, "runsc", nullNetNS)
	// Concurrent runsc invocations may stack mounts on the path.
	for unix.Unmount(p, unix.MNT_DETACH) == nil {
	}
	return nil
}

// Capabilities implements sandbox.Driver. Checkpoint is what Probe found
// (false until a Probe succeeded): whether runsc could checkpoint a sandbox
// and restore it on this host. Reattach is false: the control channel is
// the stdio of a runsc process owned by the previous worker.
func (d *Driver) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Checkpoint: d.canCheckpoint.Load(), Reattach: false, Network: d.canNetwork.Load()}
}

// ProbeNetwork runs a trivial container in a network namespace of its own
// and sets Capabilities().Network to whether it ran: runsc's netstack
// copies the namespace's interfaces, and runsc builds from before 2023
// refuse any namespace on kernels where net.core.rmem_default is per
// namespace ("cannot run with network enabled in root network
// namespace"). Without a Config.Network it does nothing. Probe calls it.
func (d *Driver) ProbeNetwork(ctx context.Context) error {
	if d.net == nil {
		return nil
	}
	p, err := d.Platform(ctx)
	if err != nil {
		return err
	}
	d.canNetwork.Store(true)
	if err := d.probe(ctx, p); err != nil {
		d.canNetwork.Store(false)
		d.log.WarnContext(ctx, "this runsc cannot run sandbox networking here: sandboxes get their loopback alone", "runsc", d.runsc, "reason", err)
		return err
	}
	return nil
}

// Platform returns the runsc platform the driver uses, detecting it on first
// use.
func (d *Driver) Platform(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.platform != "" {
		return d.platform, nil
	}
	out, err := exec.CommandContext(ctx, d.runsc, "help", "platforms").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gvisor: listing platforms: %w: %s", err, bytes.TrimSpace(out))
	}
	p := PlatformPtrace
	for _, l := range strings.Fields(string(out)) {
		if l != PlatformSystrap {
			continue
		}
		// Listed is not enough: systrap needs kernel features (seccomp
		// user notification, ...) that a host may lack.
		if err := d.probe(ctx, PlatformSystrap); err != nil {
			d.log.InfoContext(ctx, "systrap unusable, using ptrace", "err", err)
			break
		}
		p = PlatformSystrap
	}
	d.platform = p
	d.log.InfoContext(ctx, "runsc platform", "platform", p)
	return p, nil
}

// Probe runs a trivial container (the host's /usr/bin/true) and reports
// whether gVisor works on this host, so that --sandbox=auto can fall back to
// another driver. It then checkpoints a small sandbox and restores it, and
// sets Capabilities().Checkpoint to whether that worked: a runsc that runs
// containers may still be unable to save them (its platform, the kernel, a
// build without it). That failure is logged, not returned. It takes one to
// two seconds on ptrace.
func (d *Driver) Probe(ctx context.Context) error {
	p, err := d.Platform(ctx)
	if err != nil {
		return err
	}
	if err := d.probe(ctx, p); err != nil {
		d.canCheckpoint.Store(false)
		return err
	}
	// Networking second: a runsc that runs containers but not in our
	// namespaces is still a working driver, without egress.
	_ = d.ProbeNetwork(ctx)
	t0 := time.Now()
	err = d.probeCheckpoint(ctx, p)
	d.canCheckpoint.Store(err == nil)
	if err != nil {
		d.log.InfoContext(ctx, "runsc cannot checkpoint and restore here: Capabilities.Checkpoint is false", "reason", err)
	} else {
		d.log.InfoContext(ctx, "checkpoint/restore works", "took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

func (d *Driver) probe(ctx context.Context, platform string) error {
	tmp, err := os.MkdirTemp(d.state, "probe-")
	if err != nil {
		return fmt.Errorf("gvisor: probe: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("gvisor: probe: %w", err)
	}
	id := "probe-" + randomHex(6)
	spec := sandbox.Spec{
		ID:          id,
		AgentBinary: "/usr/bin/true",
		CodeDir:     tmp,
		RuntimeDir:  tmp,
		MemoryMB:    128,
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	spec.Stderr = &stderr
	sb, err := d.start(ctx, spec, platform, "")
	if err != nil {
		return fmt.Errorf("gvisor: probe on %s: %w", platform, err)
	}
	defer sb.Destroy(context.WithoutCancel(ctx))
	select {
	case <-sb.Done():
	case <-ctx.Done():
		return fmt.Errorf("gvisor: probe on %s: %w", platform, ctx.Err())
	}
	if err := sb.ExitErr(); err != nil {
		return fmt.Errorf("gvisor: probe on %s: %w: %s %s", platform, err,
			bytes.TrimSpace(stderr.Bytes()), sb.logTail())
	}
	return nil
}

// probeCheckpoint starts a small sandbox whose agent is a shell that says
// "ready" and then echoes its stdin, checkpoints it, restores it and checks
// that the restored shell echoes on its new stdio. Everything it made is
// removed on return.
func (d *Driver) probeCheckpoint(ctx context.Context, platform string) error {
	tmp, err := os.MkdirTemp(d.state, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// mnt is CodeDir and RuntimeDir: empty, so that nothing else in tmp
	// (the image, the agent) is mounted into the sandbox.
	mnt, agent, image := filepath.Join(tmp, "mnt"), filepath.Join(tmp, "agent"), filepath.Join(tmp, "image")
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}
	// Speaks first, as the agent does (its first message arms the memory
	// limit, see control); builtins only; ignores the -poll-stdin=false
	// the bundle passes the agent.
	script := "#!/bin/sh\necho ready\nwhile read -r line; do echo \"$line\"; done\n"
	if err := os.WriteFile(agent, []byte(script), 0o755); err != nil {
		return err
	}
	// A file, not a buffer: the error message reads it while runsc may
	// still write to it.
	stderr, err := os.Create(filepath.Join(tmp, "stderr"))
	if err != nil {
		return err
	}
	defer stderr.Close()
	spec := func() sandbox.Spec {
		return sandbox.Spec{
			ID: "probe-" + randomHex(6), AgentBinary: agent, CodeDir: mnt, RuntimeDir: mnt,
			MemoryMB: 128, DeferCPU: true, Stderr: stderr,
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cleanup := context.WithoutCancel(ctx)
	// expect reads a line from sb's agent; a wrong or missing one comes
	// with runsc's reasons.
	expect := func(sb *Sandbox, want string) error {
		got, err := readLine(ctx, sb)
		if err == nil && got != want {
			err = fmt.Errorf("agent said %q, want %q", got, want)
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %s %s", sb.id, err, tail(stderr.Name(), 1024), sb.logTail())
		}
		return nil
	}

	orig, err := d.start(ctx, spec(), platform, "")
	if err != nil {
		return err
	}
	defer orig.Destroy(cleanup)
	// Booted: a checkpoint must not race the Sentry's start.
	if err := expect(orig, "ready"); err != nil {
		return err
	}
	if err := orig.Checkpoint(ctx, image); err != nil {
		return err
	}
	if err := orig.Destroy(cleanup); err != nil {
		return err
	}
	// What Restore does, on the platform being probed.
	restored, err := d.start(ctx, spec(), platform, image)
	if err != nil {
		return err
	}
	defer restored.Destroy(cleanup)
	if _, err := io.WriteString(restored.Control(), "restored\n"); err != nil {
		return fmt.Errorf("%s: writing to the agent: %w", restored.id, err)
	}
	return expect(restored, "restored")
}

// readLine reads one line from the sandbox's agent, without its newline.
func readLine(ctx context.Context, sb *Sandbox) (string, error) {
	got := make(chan string, 1)
	go func() {
		// Returns at the latest when the sandbox is destroyed (EOF).
		var b []byte
		buf := make([]byte, 1)
		for len(b) < 256 {
			n, err := sb.Control().Read(buf)
			if err != nil || (n == 1 && buf[0] == '\n') {
				break
			}
			b = append(b, buf[:n]...)
		}
		got <- string(b)
	}()
	select {
	case s := <-got:
		return s, nil
	case <-sb.Done():
		return "", fmt.Errorf("agent exited: %v", sb.ExitErr())
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the agent: %w", ctx.Err())
	}
}

// Create implements sandbox.Driver. It returns once runsc is started with
// the control channel connected; a container that fails to start shows up
// as Done with ExitErr (runsc's reason goes to Spec.Stderr).
func (d *Driver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	p, err := d.Platform(ctx)
	if err != nil {
		return nil, err
	}
	return d.start(ctx, spec, p, "")
}

// Restore implements sandbox.Restorer: it starts a new sandbox, under
// spec.ID, from an image written by Checkpoint. The spec must describe the
// same mounts (same RuntimeDir entries, layer count, extra mounts) as the
// checkpointed sandbox; host paths may differ. The restored agent continues
// where it was checkpointed and speaks on the new sandbox's Control.
func (d *Driver) Restore(ctx context.Context, spec sandbox.Spec, dir string) (sandbox.Sandbox, error) {
	if _, err := os.Stat(filepath.Join(dir, checkpointFile)); err != nil {
		return nil, fmt.Errorf("gvisor: restoring %s: %w", spec.ID, err)
	}
	p, err := d.Platform(ctx)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("gvisor: restoring %s: %w", spec.ID, err)
	}
	return d.start(ctx, spec, p, abs)
}

// checkpointFile is the image runsc checkpoint writes into --image-path.
const checkpointFile = "checkpoint.img"

// handleData is the driver-private part of a sandbox.Handle: everything a
// later worker needs to find and remove the sandbox.
type handleData struct {
	Root     string `json:"root"`     // runsc --root
	Bundle   string `json:"bundle"`   // bundle directory, removed on Destroy
	Cgroup   string `json:"cgroup"`   // our cgroup path (below each hierarchy root)
	Platform string `json:"platform"` // runsc --platform
	PID      int    `json:"pid"`      // the foreground runsc process
	// NetNS is the mount of the sandbox's network namespace, removed on
	// Destroy; empty: runsc's --network=none.
	NetNS string `json:"netns,omitempty"`
	// Link is the host-side interface of its network link (sandboxnet).
	Link string `json:"link,omitempty"`
}

// start builds the bundle and cgroup for spec and launches `runsc run`, or
// `runsc restore` from image when image is not empty.
func (d *Driver) start(ctx context.Context, spec sandbox.Spec, platform, image string) (_ *Sandbox, err error) {
	if err := validate(spec); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hd := handleData{
		Root:     filepath.Join(d.state, "runsc"),
		Bundle:   filepath.Join(d.state, "bundles", spec.ID),
		Cgroup:   cgroupPath(spec.ID),
		Platform: platform,
	}
	if _, err := os.Lstat(hd.Bundle); err == nil {
		return nil, fmt.Errorf("gvisor: creating %s: bundle exists: %w", spec.ID, sandbox.ErrInvalidSpec)
	}
	sb := &Sandbox{
		d:    d,
		id:   spec.ID,
		data: hd,
		log:  d.log.With("sandbox", spec.ID),
		done: make(chan struct{}),
	}
	// From here on every failure unwinds through Destroy, which removes
	// whatever part of the sandbox exists.
	defer func() {
		if err != nil {
			sb.cleanup(context.WithoutCancel(ctx))
		}
	}()
	var resolvConf []byte
	if d.net != nil && d.canNetwork.Load() {
		sb.data.NetNS = filepath.Join(d.state, "netns", spec.ID)
		if err := sandboxnet.NewNamespace(sb.data.NetNS); err != nil {
			sb.data.NetNS = "" // nothing to remove
			return nil, fmt.Errorf("gvisor: creating %s: %w", spec.ID, err)
		}
		link, err := d.net.Attach(ctx, sb.data.NetNS, spec.Network)
		if err != nil {
			return nil, fmt.Errorf("gvisor: creating %s: %w", spec.ID, err)
		}
		if link != nil {
			sb.data.Link = link.Name()
		}
		resolvConf = d.net.ResolvConf()
	}
	hd = sb.data
	oci, err := writeBundle(hd.Bundle, spec, hd.Cgroup, hd.NetNS, resolvConf)
	if err != nil {
		return nil, fmt.Errorf("gvisor: creating %s: %w", spec.ID, err)
	}
	// The CPU quota waits for the agent's first message (see control): at
	// Lambda's small sizes (0.07 CPU at 128 MB) it would otherwise stretch
	// the Sentry's own boot, platform overhead, from 1 s to 5 s.
	//
	// The host cgroup holds the Sentry and gofer too: it gets safety
	// limits until the agent's first message, when the memory limit is
	// armed (see memwatch.go).
	boot := *oci.Linux.Resources
	boot.CPU = nil
	tmpMB := spec.TmpMB
	if tmpMB == 0 {
		tmpMB = 512
	}
	pids := spec.PidsLimit
	if pids == 0 {
		pids = 1024
	}
	hostMem, hostPidsMax := hostMemory(spec.MemoryMB, tmpMB), hostPids(pids)
	boot.Memory = &specs.LinuxMemory{Limit: &hostMem, Swap: &hostMem, Swappiness: oci.Linux.Resources.Memory.Swappiness}
	boot.Pids = &specs.LinuxPids{Limit: &hostPidsMax}
	cg, err := newCgroup(hd.Cgroup, &boot)
	if err != nil {
		return nil, fmt.Errorf("gvisor: creating %s: cgroup: %w", spec.ID, err)
	}
	sb.cg = cg
	sb.mem = newMemWatch(sb, spec.MemoryMB, hostMem)
	// Watched from before the Sentry starts: its boot is bounded too.
	stopOOM, err := cg.watchOOM(sb.mem.onOOM)
	if err != nil {
		return nil, fmt.Errorf("gvisor: creating %s: watching for out of memory: %w", spec.ID, err)
	}
	defer func() {
		if err != nil {
			stopOOM()
		}
	}()

	args := d.globalFlags(hd)
	if image == "" {
		args = append(args, "run", "--bundle", hd.Bundle, spec.ID)
	} else {
		args = append(args, "restore", "--image-path", image, "--bundle", hd.Bundle, spec.ID)
	}
	// Pipes we own, rather than cmd.StdinPipe, so the worker side stays
	// open independently of cmd.Wait and we close the child's ends here.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("gvisor: creating %s: %w", spec.ID, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("gvisor: creating %s: %w", spec.ID, err)
	}
	sb.ctl = &control{r: outR, w: inW, rw: rawio.Pair(outR, inW), readOnly: image != "", first: func() {
		// Before the worker sees the agent's first message, so before
		// Init can start the function.
		sb.mem.arm()
		if spec.DeferCPU {
			return // the caller applies it with LimitCPU
		}
		if err := cg.limitCPU(oci.Linux.Resources); err != nil {
			sb.log.Warn("applying cpu quota", "err", err)
		}
	}}
	// Not CommandContext: ctx bounds creation, not the sandbox's life.
	cmd := exec.Command(d.runsc, args...)
	cmd.Stdin = inR
	cmd.Stdout = outW
	cmd.Stderr = spec.Stderr
	cmd.Dir = hd.Bundle
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		return nil, fmt.Errorf("gvisor: starting runsc for %s: %w", spec.ID, err)
	}
	sb.cmd = cmd
	go sb.wait()
	go sb.mem.run(sb.done, stopOOM)
	sb.data.PID = cmd.Process.Pid
	h, err := json.Marshal(sb.data)
	if err != nil {
		return nil, fmt.Errorf("gvisor: creating %s: %w", spec.ID, err)
	}
	sb.handle = sandbox.Handle{Driver: Name, ID: spec.ID, Created: time.Now().UTC(), Data: h}
	sb.log.DebugContext(ctx, "sandbox started", "platform", platform, "restore", image != "")
	return sb, nil
}

// globalFlags are the runsc flags every command on a sandbox needs: runsc
// looks a container up by --root and must see the same platform and network.
func (d *Driver) globalFlags(hd handleData) []string {
	network := "--network=none"
	if hd.NetNS != "" {
		network = "--network=sandbox"
	}
	f := []string{
		"--root", hd.Root,
		network,
		// Apply the bundle's seccomp profile to the function (off by
		// default: runsc would ignore it).
		"--oci-seccomp",
		"--platform=" + hd.Platform,
		// runsc logs to stdout by default: keep the control channel clean.
		"--log", filepath.Join(hd.Bundle, "runsc.log"),
	}
	return append(f, d.extra...)
}

// Recover implements sandbox.Driver. gVisor sandboxes cannot be re-attached
// (their stdio belonged to the previous worker's runsc process), so Recover
// removes everything the handle names and returns ErrGone.
func (d *Driver) Recover(ctx context.Context, h sandbox.Handle) (sandbox.Sandbox, error) {
	if h.Driver != Name {
		return nil, fmt.Errorf("gvisor: recovering %s: handle of driver %q: %w", h.ID, h.Driver, sandbox.ErrInvalidSpec)
	}
	if !validID.MatchString(h.ID) {
		return nil, fmt.Errorf("gvisor: recovering %q: bad id: %w", h.ID, sandbox.ErrInvalidSpec)
	}
	var hd handleData
	if err := json.Unmarshal(h.Data, &hd); err != nil {
		return nil, fmt.Errorf("gvisor: recovering %s: %w: %w", h.ID, sandbox.ErrInvalidSpec, err)
	}
	// The namespace's mount is unmounted and removed by path: only where
	// start puts it, beside the handle's bundle directory.
	if hd.NetNS != "" && hd.NetNS != filepath.Join(filepath.Dir(filepath.Dir(hd.Bundle)), "netns", h.ID) {
		return nil, fmt.Errorf("gvisor: recovering %s: network namespace %q is not beside its bundle: %w", h.ID, hd.NetNS, sandbox.ErrInvalidSpec)
	}
	sb := &Sandbox{d: d, id: h.ID, data: hd, handle: h, log: d.log.With("sandbox", h.ID), done: make(chan struct{})}
	close(sb.done)
	sb.exitErr = sandbox.ErrGone
	if cg, err := loadCgroup(hd.Cgroup); err == nil {
		sb.cg = cg
	}
	if err := sb.cleanup(ctx); err != nil {
		return nil, fmt.Errorf("gvisor: recovering %s: %w", h.ID, err)
	}
	return nil, fmt.Errorf("gvisor: recovering %s: %w", h.ID, sandbox.ErrGone)
}

var validID = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// validate checks a spec before anything is built.
func validate(s sandbox.Spec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("gvisor: %s: %w", fmt.Sprintf(format, a...), sandbox.ErrInvalidSpec)
	}
	if !validID.MatchString(s.ID) {
		return bad("id %q must be 1-64 of [a-z0-9-]", s.ID)
	}
	if s.MemoryMB <= 0 {
		return bad("memory %d MB", s.MemoryMB)
	}
	if s.TmpMB < 0 || s.PidsLimit < 0 || s.CPUMillis < 0 {
		return bad("negative limit")
	}
	if len(s.LayerDirs) > 1 {
		// gVisor (this build) has no overlay of host directories, and
		// merging layers by hand would need one mount per file.
		return bad("%d layers: this driver mounts at most one at %s", len(s.LayerDirs), sandbox.OptRoot)
	}
	if fi, err := os.Stat(s.AgentBinary); err != nil || !fi.Mode().IsRegular() {
		return bad("agent binary %q is not a regular file", s.AgentBinary)
	}
	dirs := append([]string{s.CodeDir, s.RuntimeDir}, s.LayerDirs...)
	for _, p := range dirs {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return bad("%q is not a directory", p)
		}
	}
	for _, p := range s.ExtraMounts {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return bad("extra mount %q is not a clean absolute path", p)
		}
		if _, err := os.Stat(p); err != nil {
			return bad("extra mount %q: %v", p, err)
		}
	}
	return nil
}

// tail returns at most the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(bytes.TrimSpace(b))
}
