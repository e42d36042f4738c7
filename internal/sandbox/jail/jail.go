package jail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/rawio"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/jail/jailinit"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// Name is the driver's name.
const Name = "jail"

var _ sandbox.Driver = (*Driver)(nil)

// Config configures a Driver.
type Config struct {
	// StateDir holds what the driver prepares once and shares between
	// sandboxes (the minimal /etc). Required; created if missing.
	StateDir string
	// CgroupParent is the cgroup under which each sandbox gets
	// <CgroupParent>/<id>. Default "ignis".
	CgroupParent string
	// HostUID and HostGID are the unprivileged host ids that root inside a
	// sandbox maps to. Default 100000. Code, runtime and agent files must be
	// readable (and the bootstrap executable) by them.
	HostUID, HostGID uint32
	// InitBinary is the setup stage's binary: ignis-jail-init (see
	// cmd/ignis-jail-init and worker.LocateJailInit), or any binary that
	// calls MaybeRunInit first thing in main. Default /proc/self/exe, the
	// running binary, which must then call MaybeRunInit. New opens it, and
	// stages execute it by descriptor, so that it need not be reachable by
	// HostUID through its path; the file itself must be executable by
	// HostUID (0755 will do).
	InitBinary string
	// Prestart is how many setup stages the driver keeps prepared ahead
	// of Create, which then skips the slowest part of a start (see stage).
	// Each idle one is a blocked process of a few MB. Default 2: one for
	// the next Create while the other is refilled, RefillDelay after the
	// Create that took it (with one, back-to-back cold starts found the
	// pool empty: a stage of the ignis binary takes ~80-100 ms to prepare
	// on 2 CPUs). Negative disables.
	Prestart int
	// RefillDelay is how long after a Create took a prestarted stage the
	// driver waits before it starts the replacement (a Create that finds
	// the pool empty cuts it short). Starting a stage (a full fork of the
	// worker, which CLONE_NEWUSER forces on Go, new namespaces, an execve)
	// slowed a sandbox starting at the same time by ~8 ms on a 2-CPU host,
	// at nice 19 or SCHED_IDLE alike, so the refill waits until the new
	// agent is likely up. Default 50ms; negative: none.
	RefillDelay time.Duration
	// Network attaches sandboxes whose Spec.Network allows egress, and
	// gives them its resolv.conf. Nil: every sandbox has its loopback
	// alone. The driver does not close it.
	Network *sandboxnet.Network
	// Logger receives the driver's own diagnostics. Default: discarded.
	Logger *slog.Logger
}

// Driver creates jail sandboxes. It is safe for concurrent use. Close stops
// its prestarted setup stages.
type Driver struct {
	cfg        Config
	log        *slog.Logger
	mode       cgroupMode
	cgroups    *hostCgroups
	initExe    *os.File        // Config.InitBinary, open for the driver's life
	etcDir     string          // prepared minimal /etc
	links      []jailinit.Link // base dirs that are symlinks on the host
	baseMounts []string

	stages       chan *stage    // prestarted setup stages
	refill       chan time.Time // a token per stage to start, not before the time it holds; see prestart
	closing      chan struct{}  // closed by Close
	prestartDone chan struct{}  // closed when the prestart loop has ended
	closeOnce    sync.Once
	token        string        // tells this driver's stage cgroups from another's in the same process
	stageSeq     atomic.Uint64 // numbers stage cgroups
	// hurry tells the prestart loop to start a delayed refill now: a
	// Create waits for it (see takeStage).
	hurry   chan struct{}
	waiting atomic.Bool // a Create waits for the prestart loop
	// prestartFailing is set while the prestart loop fails to prepare
	// stages; prestartFailed wakes a Create waiting for one.
	prestartFailing atomic.Bool
	prestartFailed  chan struct{}
}

// New checks the host, prepares the shared /etc and returns a Driver. It
// fails with sandbox.ErrUnsupported when the host lacks what the jail needs
// (cgroups, user namespaces).
func New(cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("jail: StateDir is required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "ignis"
	}
	if cfg.HostUID == 0 {
		cfg.HostUID = 100000
	}
	if cfg.HostGID == 0 {
		cfg.HostGID = 100000
	}
	if cfg.InitBinary == "" {
		cfg.InitBinary = "/proc/self/exe"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RefillDelay == 0 {
		cfg.RefillDelay = 50 * time.Millisecond
	}
	mode, err := hostCgroupMode()
	if err != nil {
		return nil, fmt.Errorf("jail: %w", err)
	}
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return nil, fmt.Errorf("jail: user namespaces: %w", sandbox.ErrUnsupported)
	}
	cgs, err := newHostCgroups(mode)
	if err != nil {
		return nil, fmt.Errorf("jail: %w", err)
	}
	d := &Driver{cfg: cfg, log: cfg.Logger.With("component", "sandbox.jail"), mode: mode, cgroups: cgs}
	for _, p := range baseDirs {
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			continue
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, fmt.Errorf("jail: %w", err)
			}
			d.links = append(d.links, jailinit.Link{Path: strings.TrimPrefix(p, "/"), Target: target})
		case fi.IsDir():
			d.baseMounts = append(d.baseMounts, p)
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("jail: creating state dir: %w", err)
	}
	d.etcDir = filepath.Join(cfg.StateDir, "etc")
	var resolvConf []byte
	if cfg.Network != nil {
		resolvConf = cfg.Network.ResolvConf()
	}
	if err := prepareEtc(d.etcDir, resolvConf); err != nil {
		return nil, fmt.Errorf("jail: preparing /etc: %w", err)
	}
	if d.initExe, err = openInitBinary(cfg.InitBinary, cfg.HostUID, cfg.HostGID); err != nil {
		return nil, fmt.Errorf("jail: %w", err)
	}
	var tok [4]byte
	rand.Read(tok[:])
	d.token = hex.EncodeToString(tok[:])
	d.closing = make(chan struct{})
	d.prestartDone = make(chan struct{})
	d.hurry = make(chan struct{}, 1)
	d.prestartFailed = make(chan struct{})
	if cfg.Prestart == 0 {
		cfg.Prestart = 2
	}
	// Every stage waits in a stage cgroup on v1, prestarted or not.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	d.removeStaleStageCgroups(ctx)
	cancel()
	d.removeEmptySandboxCgroups()
	if cfg.Prestart > 0 {
		d.stages = make(chan *stage, cfg.Prestart)
		d.refill = make(chan time.Time, cfg.Prestart)
		for i := 0; i < cfg.Prestart; i++ {
			d.refill <- time.Time{}
		}
		go d.prestart()
	} else {
		close(d.prestartDone)
	}
	d.log.Info("jail driver ready", "cgroup", string(mode), "cgroupParent", cfg.CgroupParent, "hostUID", cfg.HostUID, "initBinary", cfg.InitBinary)
	return d, nil
}

// Close stops the driver's prestarted setup stages and removes its parent
// cgroup if no sandbox is left in it. Live sandboxes are not affected, and
// Create still works (starting stages on demand). Idempotent. A worker
// should call it on shutdown; a process that never does leaves an empty
// stage cgroup behind, which the next New on the host removes.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		close(d.closing)
		<-d.prestartDone
	drain:
		for {
			select {
			case st := <-d.stages:
				st.kill()
			default:
				break drain
			}
		}
		d.cgroups.removeParentIfEmpty(path.Join("/", d.cfg.CgroupParent))
	})
	return nil
}

// Name returns "jail".
func (d *Driver) Name() string { return Name }

// Capabilities: no checkpoint, no reattach (the control channel is a pipe
// held by the worker process; when it dies the sandbox dies with it).
func (d *Driver) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Network: d.cfg.Network != nil}
}

// handleData is the driver-private part of a Handle: enough to find and
// remove every resource of a sandbox after a worker restart.
type handleData struct {
	CgroupMode cgroupMode `json:"cgroupMode"`
	Cgroup     string     `json:"cgroup"`
	PID        int        `json:"pid"`
	StartTime  uint64     `json:"startTime"` // /proc/<pid>/stat field 22, guards against pid reuse
	// Link is the host-side interface of the sandbox's network link
	// (sandboxnet), if it has one.
	Link string `json:"link,omitempty"`
}

// validID reports whether id is 1–64 of [a-z0-9-]. (Not a regexp: with
// the /proc/self/exe fallback, this package's initialisation is on the
// path of every sandbox start, see MaybeRunInit.)
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// reservedTargets cannot be ExtraMounts: the jail builds them itself.
var reservedTargets = []string{"/", "/proc", "/dev", "/tmp", "/etc", "/usr", sandbox.TaskRoot, sandbox.RuntimeRoot, sandbox.OptRoot}

func validate(s *sandbox.Spec) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", sandbox.ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	if !validID(s.ID) {
		return bad("id %q: want 1-64 of [a-z0-9-]", s.ID)
	}
	if s.MemoryMB <= 0 || s.CPUMillis < 0 || s.PidsLimit < 0 || s.TmpMB < 0 {
		return bad("negative or zero limit (memory %d MB, cpu %d, pids %d, tmp %d MB)", s.MemoryMB, s.CPUMillis, s.PidsLimit, s.TmpMB)
	}
	if s.PidsLimit == 0 {
		s.PidsLimit = 1024
	}
	if s.TmpMB == 0 {
		s.TmpMB = 512
	}
	checkPath := func(what, p string, dir bool) error {
		if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return bad("%s %q: want a clean absolute path", what, p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return bad("%s: %v", what, err)
		}
		if dir && !fi.IsDir() {
			return bad("%s %s is not a directory", what, p)
		}
		if !dir && !fi.Mode().IsRegular() {
			return bad("%s %s is not a regular file", what, p)
		}
		return nil
	}
	if err := checkPath("agent binary", s.AgentBinary, false); err != nil {
		return err
	}
	if err := checkPath("code dir", s.CodeDir, true); err != nil {
		return err
	}
	if s.RuntimeDir != "" {
		if err := checkPath("runtime dir", s.RuntimeDir, true); err != nil {
			return err
		}
	}
	for _, l := range s.LayerDirs {
		if err := checkPath("layer dir", l, true); err != nil {
			return err
		}
	}
	for _, m := range s.ExtraMounts {
		if m == "" || !filepath.IsAbs(m) || filepath.Clean(m) != m {
			return bad("extra mount %q: want a clean absolute path", m)
		}
		if _, err := os.Stat(m); err != nil {
			return bad("extra mount: %v", err)
		}
		for _, r := range reservedTargets {
			if m == r || (r != "/" && strings.HasPrefix(m, r+"/") && r != "/usr") {
				return bad("extra mount %s overlaps %s", m, r)
			}
		}
	}
	return nil
}

// Create builds and starts a sandbox; see sandbox.Driver.
//
// It takes a prepared setup stage (prestarted: namespaces, Go runtime and
// the shared part of the root are ready; see stage), clones every mount
// source of the Spec into a detached mount tree (open_tree), sends the
// stage the rest of its config, makes the stage's cgroup the sandbox's
// while the stage adds the sandbox's mounts, and then tells it to start:
// the stage drops privileges and execs the agent. Create returns when that
// execve succeeded (the close-on-exec error pipe reads EOF) or with the
// stage's error.
func (d *Driver) Create(ctx context.Context, spec sandbox.Spec) (_ sandbox.Sandbox, err error) {
	if err := validate(&spec); err != nil {
		return nil, err
	}
	t0 := time.Now()
	cgPath := path.Join("/", d.cfg.CgroupParent, spec.ID)
	// The CPU quota is applied once the agent runs: the jail's own setup
	// stage is the platform's work, not the function's, and under a small
	// quota (128 MB → 7% of a CPU) it would be throttled for tens of ms.
	lim := limits{memoryBytes: memoryLimit(spec.MemoryMB), pids: int64(spec.PidsLimit)}
	var (
		st   *stage
		cg   cgroup
		link *sandboxnet.Link
	)
	defer func() {
		if err == nil {
			return
		}
		if st != nil {
			st.kill()
		}
		if lerr := link.Close(); lerr != nil {
			d.log.Error("removing network link of failed sandbox", "id", spec.ID, "err", lerr)
		}
		if cg != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if rerr := removeCgroup(cctx, cg); rerr != nil {
				d.log.Error("removing cgroup of failed sandbox", "id", spec.ID, "err", rerr)
			}
		}
	}()

	cfg, srcs, err := d.sandboxSources(spec)
	defer closeAll(srcs)
	if err != nil {
		return nil, fmt.Errorf("creating sandbox %s: %w", spec.ID, err)
	}
	cfg.Path = sandbox.AgentPath
	cfg.Argv = append([]string{sandbox.AgentPath}, spec.AgentArgs...)
	cfg.Env = spec.Env
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	msg, err := encodeConfig(cfg, len(srcs))
	if err != nil {
		return nil, fmt.Errorf("creating sandbox %s: %w", spec.ID, err)
	}

	// The control channel both ways, and the agent's stderr.
	ctlInR, ctlInW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating sandbox %s: %w", spec.ID, err)
	}
	ctlOutR, ctlOutW, err := os.Pipe()
	if err != nil {
		closeAll([]*os.File{ctlInR, ctlInW})
		return nil, fmt.Errorf("creating sandbox %s: %w", spec.ID, err)
	}
	defer closeAll([]*os.File{ctlInR, ctlOutW})
	defer func() {
		if err != nil {
			closeAll([]*os.File{ctlInW, ctlOutR})
		}
	}()
	stderr, err := stderrFile(spec.Stderr)
	if err != nil {
		return nil, fmt.Errorf("creating sandbox %s: %w", spec.ID, err)
	}
	defer stderr.Close()

	tMounts := time.Since(t0)
	st, fromPool, err := d.takeStage(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	if fromPool {
		defer d.refillLater()
	}
	pid := st.cmd.Process.Pid
	tStage := time.Since(t0)
	// The stage builds the sandbox's part of its root while the cgroup is
	// set up; it execs the agent only on jailinit.Start, so nothing of the
	// sandbox runs outside the cgroup's limits.
	if err := sendConfig(st.sock, msg, []*os.File{ctlInR, ctlOutW, stderr}, srcs); err != nil {
		return nil, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	if cg, err = d.sandboxCgroup(st, cgPath, lim); err != nil {
		return nil, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	// The stage was cloned into its network namespace and attached while
	// it waited; the link follows the function's policy before the agent
	// (and the function's init) runs.
	if d.cfg.Network != nil {
		if link, err = d.cfg.Network.Apply(ctx, st.netns(), st.link, spec.Network); err != nil {
			return nil, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
		}
		st.link = nil // the sandbox's now (link), or released
	}
	tNet := time.Since(t0)
	if err := sendStart(st.sock); err != nil {
		// The stage failed first: what it reported says more.
		if serr := awaitExec(ctx, st.errR); serr != nil {
			err = serr
		}
		return nil, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	st.sock.Close()
	tConfig := time.Since(t0)
	if err := awaitExec(ctx, st.errR); err != nil {
		return nil, fmt.Errorf("starting sandbox %s: %w", spec.ID, err)
	}
	cmd := st.cmd
	if !spec.DeferCPU {
		if err := cg.limitCPU(spec.CPU()); err != nil {
			return nil, fmt.Errorf("starting sandbox %s: limiting CPU: %w", spec.ID, err)
		}
	}
	d.log.Debug("sandbox created", "id", spec.ID, "prestarted", fromPool, "mounts", tMounts, "stage", tStage, "network", tNet, "config", tConfig, "exec", time.Since(t0))
	start, _ := procStartTime(pid)
	hd := handleData{CgroupMode: d.mode, Cgroup: cgPath, PID: pid, StartTime: start}
	if link != nil {
		hd.Link = link.Name()
	}
	data, _ := json.Marshal(hd)
	s := &jailSandbox{
		peakPath: peakMemoryFile(d.mode, cgPath),
		log:      d.log.With("sandbox", spec.ID),
		handle:   sandbox.Handle{Driver: Name, ID: spec.ID, Created: time.Now().UTC(), Data: data},
		cmd:      cmd,
		cg:       cg,
		ctlIn:    ctlInW,
		ctlOut:   ctlOutR,
		ctl:      rawio.Pair(ctlOutR, ctlInW),
		done:     make(chan struct{}),
		link:     link,
	}
	go s.wait()
	st.errR.Close()
	return s, nil
}

// sandboxCgroup puts the stage in the sandbox's cgroup at cgPath with the
// limits: a prestarted stage's own cgroup is renamed and limited (v1);
// otherwise a new cgroup is made and the stage moved in.
func (d *Driver) sandboxCgroup(st *stage, cgPath string, lim limits) (cgroup, error) {
	if st.cgPath != "" {
		if err := d.cgroups.renameV1(st.cgPath, cgPath); err != nil {
			return nil, err
		}
		st.cg, st.cgPath = nil, ""
		cg, err := d.cgroups.load(cgroupV1, cgPath)
		if err != nil {
			return nil, err
		}
		if err := cg.setLimits(lim); err != nil {
			return cg, fmt.Errorf("limiting cgroup: %w", err)
		}
		return cg, nil
	}
	cg, err := d.cgroups.create(cgPath, lim)
	if err != nil {
		return nil, err
	}
	if err := cg.add(st.cmd.Process.Pid); err != nil {
		return cg, fmt.Errorf("joining cgroup: %w", err)
	}
	return cg, nil
}

// awaitExec waits until the setup stage's execve closed its end of the
// error pipe, and returns what the stage reported if it failed instead.
func awaitExec(ctx context.Context, errR *os.File) error {
	res := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(errR, 4096))
		res <- b
	}()
	select {
	case b := <-res:
		if len(b) > 0 {
			return errors.New(string(b))
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rootSources prepares the detached mount trees every sandbox shares, in
// attach order, and the config listing where each goes: the host's runtime
// base, the minimal /etc and the devices. The files are the worker's
// copies; the caller closes them.
func (d *Driver) rootSources() (jailinit.RootConfig, []*os.File, error) {
	cfg := jailinit.RootConfig{Version: jailinit.Version, Hostname: "localhost", Links: d.links}
	var files []*os.File
	add := func(src, target string, attr uint64) error {
		f, err := detach(src, attr)
		if err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, jailinit.Mount{FD: len(files), Target: target, File: !isDir(src)})
		files = append(files, f)
		return nil
	}
	for _, p := range d.baseMounts {
		if err := add(p, strings.TrimPrefix(p, "/"), attrRO); err != nil {
			return cfg, files, err
		}
	}
	if err := add(d.etcDir, "etc", attrRO); err != nil {
		return cfg, files, err
	}
	for _, dev := range devices {
		if err := add("/dev/"+dev, "dev/"+dev, attrDev&^unix.MOUNT_ATTR_RDONLY); err != nil {
			return cfg, files, err
		}
	}
	return cfg, files, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// sandboxSources prepares the detached mount trees of spec, in attach
// order, and the config listing where each goes: everything of the root
// that depends on the Spec. The files are the worker's copies; the caller
// closes them.
func (d *Driver) sandboxSources(spec sandbox.Spec) (jailinit.SandboxConfig, []*os.File, error) {
	cfg := jailinit.SandboxConfig{TmpMB: spec.TmpMB}
	var files []*os.File
	add := func(src, target string, attr uint64, file bool) error {
		f, err := detach(src, attr)
		if err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, jailinit.Mount{FD: len(files), Target: target, File: file})
		files = append(files, f)
		return nil
	}
	if err := add(spec.CodeDir, strings.TrimPrefix(sandbox.TaskRoot, "/"), attrRO, false); err != nil {
		return cfg, files, err
	}
	// /var/runtime is a directory of the root tmpfs holding the runtime
	// dir's entries and the agent, so the agent need not be in RuntimeDir.
	if spec.RuntimeDir != "" {
		ents, err := os.ReadDir(spec.RuntimeDir)
		if err != nil {
			return cfg, files, fmt.Errorf("reading runtime dir: %w", err)
		}
		for _, e := range ents {
			if e.Name() == path.Base(sandbox.AgentPath) {
				continue
			}
			target := strings.TrimPrefix(sandbox.RuntimeRoot, "/") + "/" + e.Name()
			if err := add(filepath.Join(spec.RuntimeDir, e.Name()), target, attrRO, !e.IsDir()); err != nil {
				return cfg, files, err
			}
		}
	}
	if err := add(spec.AgentBinary, strings.TrimPrefix(sandbox.AgentPath, "/"), attrRO, true); err != nil {
		return cfg, files, err
	}
	switch len(spec.LayerDirs) {
	case 0:
	case 1:
		if err := add(spec.LayerDirs[0], strings.TrimPrefix(sandbox.OptRoot, "/"), attrRO, false); err != nil {
			return cfg, files, err
		}
	default:
		f, err := overlay(spec.LayerDirs)
		if err != nil {
			return cfg, files, err
		}
		cfg.Mounts = append(cfg.Mounts, jailinit.Mount{FD: len(files), Target: strings.TrimPrefix(sandbox.OptRoot, "/")})
		files = append(files, f)
	}
	for _, m := range spec.ExtraMounts {
		fi, err := os.Stat(m)
		if err != nil {
			return cfg, files, err
		}
		if err := add(m, strings.TrimPrefix(m, "/"), attrRO, !fi.IsDir()); err != nil {
			return cfg, files, err
		}
	}
	return cfg, files, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// procStartTime reads a process's start time in clock ticks since boot.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised comm, which may contain spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 overall
}

// Recover removes whatever is left of a sandbox from a previous worker
// process (the jail cannot reattach: its control channel died with that
// process) and returns ErrGone. Idempotent.
func (d *Driver) Recover(ctx context.Context, h sandbox.Handle) (sandbox.Sandbox, error) {
	if h.Driver != Name {
		return nil, fmt.Errorf("recovering %s: handle of driver %q: %w", h.ID, h.Driver, sandbox.ErrInvalidSpec)
	}
	var hd handleData
	if err := json.Unmarshal(h.Data, &hd); err != nil {
		return nil, fmt.Errorf("recovering %s: decoding handle: %w", h.ID, sandbox.ErrInvalidSpec)
	}
	// PID 1 of the sandbox, if it is still that process: killing it takes
	// the whole pid namespace down.
	if st, err := procStartTime(hd.PID); err == nil && hd.PID > 0 && st == hd.StartTime {
		syscall.Kill(hd.PID, syscall.SIGKILL)
	}
	// Its network link (hd.Link) died with its namespace, and its rules
	// are sandboxnet.Sweep's: releasing them by name here could hit a new
	// sandbox that took the name since.
	cg, err := d.cgroups.load(hd.CgroupMode, hd.Cgroup)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("recovering %s: %w", h.ID, err)
	default:
		if err := removeCgroup(ctx, cg); err != nil {
			return nil, fmt.Errorf("recovering %s: %w", h.ID, err)
		}
	}
	d.log.Info("recovered sandbox removed", "id", h.ID)
	return nil, fmt.Errorf("recovering %s: %w", h.ID, sandbox.ErrGone)
}
