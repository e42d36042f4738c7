package jail

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/sandbox"
)

// initArg0 is argv[0] of the setup stage. MaybeRunInit recognises it.
const initArg0 = "ignis-jail-init"

// File descriptors of the setup stage (ExtraFiles start at 3).
const (
	// fdSock is a SOCK_SEQPACKET socket on which the stage receives two
	// messages, each JSON with file descriptors attached (SCM_RIGHTS):
	// rootConfig and its mount trees as soon as it is started, answered
	// with stageReady once the shared part of the root is built; then
	// sandboxConfig, sent by Create, with the agent's stdin, stdout and
	// stderr and the sandbox's own mount trees; then stageStart, once the
	// stage is in the sandbox's cgroup.
	fdSock = 3
	fdErr  = 4 // write: setup error text; closed by a successful execve
)

// stageReady is the one byte a stage writes on fdSock when its root is
// built and it waits for a sandbox.
const stageReady = 'R'

// stageStart is the one-byte message the worker sends after sandboxConfig,
// once the stage is in the sandbox's cgroup with its limits: the stage
// builds the sandbox's part of the root meanwhile, and execs the agent only
// after it.
const stageStart = 'S'

// The descriptors sent with sandboxConfig are the agent's stdin, stdout and
// stderr, then the mount trees: mountPoint.FD is an index among the latter
// (with rootConfig, among all of them).
const (
	srcFirstMount = 3
	// maxMounts keeps the message within SCM_MAX_FD (253 descriptors).
	maxMounts = 250
)

// maxConfig bounds a config message.
const maxConfig = 256 << 10

// rootConfig is the stage's first message: what every sandbox's root
// shares (the host's runtime base, the minimal /etc, the devices), sent
// when the stage is started, before any sandbox is asked for.
type rootConfig struct {
	Hostname string       `json:"hostname"`
	Mounts   []mountPoint `json:"mounts"`
	Links    []link       `json:"links"`
}

// sandboxConfig is the stage's second message, sent by Create: the part
// of the sandbox that depends on its Spec.
type sandboxConfig struct {
	TmpMB  int          `json:"tmpMB"`
	Mounts []mountPoint `json:"mounts"`
	Argv   []string     `json:"argv"`
	Env    []string     `json:"env"`
}

// mountPoint attaches the detached mount tree at FD to Target (relative to
// the new root). File targets are created as empty files, others as
// directories.
type mountPoint struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
	File   bool   `json:"file,omitempty"`
}

// link is a symlink in the new root (Debian's /bin → usr/bin).
type link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// MaybeRunInit runs the jail's in-sandbox setup stage when the process was
// started as one, and never returns then; otherwise it returns at once.
// Every binary that uses the jail driver (cmd/ignis, and test binaries via
// TestMain) must call it first thing in main, before any other work: the
// driver re-executes its own binary (/proc/self/exe) inside the new
// namespaces to build the sandbox's root, drop privileges and exec the agent.
func MaybeRunInit() {
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	// Capabilities, rlimits and the final execve are per thread: do them all
	// on this one.
	runtime.LockOSThread()
	err := runInit()
	msg := "jail init: unknown failure"
	if err != nil {
		msg = "jail init: " + err.Error()
	}
	unix.Write(fdErr, []byte(msg))
	os.Exit(1)
}

// runInit builds the root and execs the agent; it returns only on failure.
// It runs as root of a fresh user namespace (an unprivileged uid on the
// host), as PID 1 of a fresh pid namespace, in fresh mount, net, ipc and uts
// namespaces. Everything up to stageReady happens ahead of Create (the stage
// is prestarted) and depends on no Spec; the rest of the root is built
// while the worker sets up the sandbox's cgroup, and the agent is exec'd
// only once the worker has (stageStart).
func runInit() error {
	buf := make([]byte, maxConfig)
	var rc rootConfig
	fds, err := receive(buf, &rc)
	if err != nil {
		return err
	}
	if err := mountFDs(rc.Mounts, fds); err != nil {
		return err
	}
	if err := prepareRoot(rc); err != nil {
		return err
	}
	filter := warmUp()
	if _, err := unix.Write(fdSock, []byte{stageReady}); err != nil {
		return fmt.Errorf("reporting ready: %w", err)
	}

	var sc sandboxConfig
	if fds, err = receive(buf, &sc); err != nil {
		return err
	}
	if len(fds) < srcFirstMount {
		return fmt.Errorf("got %d descriptors, want stdio and mounts", len(fds))
	}
	if err := mountFDs(sc.Mounts, fds[srcFirstMount:]); err != nil {
		return err
	}
	for i, target := range []int{0, 1, 2} {
		if err := unix.Dup3(fds[i], target, 0); err != nil {
			return fmt.Errorf("installing stdio: %w", err)
		}
		unix.Close(fds[i])
	}
	if err := finishRoot(sc); err != nil {
		return err
	}
	// Nothing of the worker's may reach the agent but its stdio; fdErr must
	// close on exec so the worker sees EOF there once the agent runs.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("marking descriptors close-on-exec: %w", err)
	}
	if err := dropBoundingCaps(); err != nil {
		return err
	}
	// The worker puts us in the sandbox's cgroup, with its limits, while
	// we build the root above; nothing of the sandbox runs before it says
	// so.
	if err := awaitStart(); err != nil {
		return err
	}
	unix.Close(fdSock)
	// The cgroup namespace is rooted where the worker put us, so the sandbox
	// sees "/" as its cgroup and learns nothing of the host's layout.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("unsharing cgroup namespace: %w", err)
	}
	if err := dropPrivileges(filter); err != nil {
		return err
	}
	// The worker thread that forked us may be gone by now only if the worker
	// died; arm the parent-death signal again in case a credential change
	// cleared it.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("setting parent-death signal: %w", err)
	}
	if err := unix.Exec(sandbox.AgentPath, sc.Argv, sc.Env); err != nil {
		return fmt.Errorf("executing agent: %w", err)
	}
	return errors.New("execve returned")
}

// awaitStart waits for the worker's stageStart on fdSock.
func awaitStart() error {
	var b [1]byte
	n, err := unix.Read(fdSock, b[:])
	switch {
	case err != nil:
		return fmt.Errorf("waiting for start: %w", err)
	case n != 1 || b[0] != stageStart:
		return errors.New("worker closed the config socket before start")
	}
	return nil
}

// warmUp does ahead of Create what the rest of runInit would otherwise do
// on its clock: it builds the seccomp filter (about 0.2 ms in a stage),
// and decodes a sandboxConfig once, so that encoding/json has its decoder
// cached and its code paged in.
func warmUp() []unix.SockFilter {
	filter := seccompProgram()
	var sc sandboxConfig
	json.Unmarshal([]byte(`{"tmpMB":1,"mounts":[{"fd":0,"target":"var/task","file":true}],"argv":["a"],"env":["b"]}`), &sc)
	return filter
}

// receive waits for the worker's next message on fdSock, decodes it into v
// and returns the descriptors that came with it.
func receive(buf []byte, v any) ([]int, error) {
	oob := make([]byte, unix.CmsgSpace(4*(srcFirstMount+maxMounts)))
	n, oobn, flags, _, err := unix.Recvmsg(fdSock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving config: %w", err)
	}
	if n == 0 {
		return nil, errors.New("worker closed the config socket")
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		return nil, errors.New("config message truncated")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("parsing config descriptors: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, fmt.Errorf("parsing config descriptors: %w", err)
		}
		fds = append(fds, got...)
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	return fds, nil
}

// mountFDs rewrites the FD indexes of mounts to the received descriptors.
func mountFDs(mounts []mountPoint, fds []int) error {
	if len(fds) != len(mounts) {
		return fmt.Errorf("got %d descriptors for %d mounts", len(fds), len(mounts))
	}
	for i := range mounts {
		if mounts[i].FD < 0 || mounts[i].FD >= len(fds) {
			return fmt.Errorf("mount %s: descriptor %d out of range", mounts[i].Target, mounts[i].FD)
		}
		mounts[i].FD = fds[mounts[i].FD]
	}
	return nil
}

// prepareRoot builds the part of the root every sandbox shares on a tmpfs
// and pivots into it, before any sandbox is asked for:
//
//	/            tmpfs, read-only once finishRoot is done
//	/usr /etc …  read-only bind mounts prepared by the worker (detached trees)
//	/proc        fresh, of the sandbox's pid namespace, host-wide files masked
//	/dev         tmpfs with null, zero, full, random, urandom, tty bound in;
//	             read-only
//
// It also sets the hostname, brings lo up and sets the rlimits. None of it
// depends on the Spec; finishRoot adds what does.
func prepareRoot(cfg rootConfig) error {
	// Nothing we mount may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	// Any directory serves as the new root's mount point: this mount
	// namespace is ours alone and is discarded below.
	if err := unix.Mount("tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m,nr_inodes=4096"); err != nil {
		return fmt.Errorf("mounting root tmpfs: %w", err)
	}
	if err := unix.Chdir("/tmp"); err != nil {
		return err
	}
	for _, dir := range []string{"proc", "dev", "tmp", "var/task", "var/runtime", "opt", "etc", "usr"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, l := range cfg.Links {
		if err := os.Symlink(l.Target, l.Path); err != nil {
			return fmt.Errorf("linking %s: %w", l.Path, err)
		}
	}
	devMounted := false
	for _, m := range cfg.Mounts {
		if !devMounted && filepath.Dir(m.Target) == "dev" {
			if err := mountDev(); err != nil {
				return err
			}
			devMounted = true
		}
		if err := attach(m); err != nil {
			return err
		}
	}
	if !devMounted {
		if err := mountDev(); err != nil {
			return err
		}
	}
	for _, l := range [][2]string{{"dev/fd", "/proc/self/fd"}, {"dev/stdin", "/proc/self/fd/0"}, {"dev/stdout", "/proc/self/fd/1"}, {"dev/stderr", "/proc/self/fd/2"}} {
		if err := os.Symlink(l[1], l[0]); err != nil {
			return err
		}
	}
	if err := unix.Mount("proc", "proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	// Host-wide kernel state readable through /proc that a function has no
	// business seeing: covered as container runtimes do.
	for _, p := range maskedProcFiles {
		if err := unix.Mount("dev/null", p, "", unix.MS_BIND, ""); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("masking /%s: %w", p, err)
		}
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// lazy unmount then drops it, and with it every host mount. From here
	// on the stage sees nothing of the host's file system; the sandbox's
	// own trees arrive as descriptors.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/dev", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("making /dev read-only: %w", err)
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("setting hostname: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	for _, rl := range []struct {
		res int
		max uint64
	}{{unix.RLIMIT_NOFILE, 1024}, {unix.RLIMIT_CORE, 0}} {
		if err := unix.Setrlimit(rl.res, &unix.Rlimit{Cur: rl.max, Max: rl.max}); err != nil {
			return fmt.Errorf("setting rlimit %d: %w", rl.res, err)
		}
	}
	return nil
}

// finishRoot adds the sandbox's own trees to the prepared root (already
// pivoted into; its tmpfs is still writable for their mount points):
//
//	/var/task     CodeDir
//	/var/runtime  the runtime dir's entries and the agent
//	/opt          layers
//	/tmp          tmpfs of TmpMB
//	ExtraMounts   at their host paths
//
// then makes / read-only.
func finishRoot(cfg sandboxConfig) error {
	for _, m := range cfg.Mounts {
		if err := attach(m); err != nil {
			return err
		}
	}
	tmpOpts := "mode=1777,size=" + strconv.Itoa(cfg.TmpMB) + "m,nr_inodes=" + strconv.Itoa(max(cfg.TmpMB*64, 4096))
	if err := unix.Mount("tmpfs", "tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, tmpOpts); err != nil {
		return fmt.Errorf("mounting /tmp: %w", err)
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("making / read-only: %w", err)
	}
	return nil
}

// maskedProcFiles are covered with /dev/null in the sandbox's /proc.
var maskedProcFiles = []string{"proc/kcore", "proc/keys", "proc/timer_list", "proc/sched_debug", "proc/latency_stats", "proc/sysrq-trigger"}

func mountDev() error {
	if err := unix.Mount("tmpfs", "dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	return nil
}

// attach moves a detached mount tree prepared by the worker into place.
func attach(m mountPoint) error {
	if err := os.MkdirAll(filepath.Dir(m.Target), 0o755); err != nil {
		return fmt.Errorf("creating parent of %s: %w", m.Target, err)
	}
	if m.File {
		// A bare open(2): an os.File would go through the runtime poller.
		fd, err := unix.Open(m.Target, unix.O_CREAT|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
		if err != nil && !errors.Is(err, unix.EROFS) {
			return fmt.Errorf("creating mount point %s: %w", m.Target, err)
		}
		if err == nil {
			unix.Close(fd)
		}
	} else if err := os.MkdirAll(m.Target, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
		return fmt.Errorf("creating mount point %s: %w", m.Target, err)
	}
	if err := unix.MoveMount(m.FD, "", unix.AT_FDCWD, m.Target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting /%s: %w", m.Target, err)
	}
	unix.Close(m.FD)
	return nil
}

// loopbackUp brings up lo, the only interface of the fresh net namespace:
// the agent's Runtime API listens there.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	return nil
}

// Securebits (linux/securebits.h): root gets no capabilities from execve
// and none can ever be raised again, locked so the agent cannot undo it.
const (
	secbitNoroot                = 1 << 0
	secbitNorootLocked          = 1 << 1
	secbitNoSetuidFixup         = 1 << 2
	secbitNoSetuidFixupLocked   = 1 << 3
	secbitKeepCapsLocked        = 1 << 5
	secbitNoCapAmbientRaise     = 1 << 6
	secbitNoCapAmbientRaiseLock = 1 << 7
	secbitsAll                  = secbitNoroot | secbitNorootLocked | secbitNoSetuidFixup |
		secbitNoSetuidFixupLocked | secbitKeepCapsLocked | secbitNoCapAmbientRaise | secbitNoCapAmbientRaiseLock
)

// dropBoundingCaps empties the capability bounding set and the ambient
// set of this thread (the one that will execve) and locks the securebits.
// The effective set is left alone: unshare still needs CAP_SYS_ADMIN.
func dropBoundingCaps() error {
	for c := 0; c <= 63; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past CAP_LAST_CAP
			}
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secbitsAll, 0, 0, 0); err != nil {
		return fmt.Errorf("setting securebits: %w", err)
	}
	return nil
}

// dropPrivileges empties the remaining capability sets of this thread
// (dropBoundingCaps did the bounding and ambient ones), sets no_new_privs
// and installs the seccomp filter.
func dropPrivileges(filter []unix.SockFilter) error {
	var data [2]unix.CapUserData
	if err := unix.Capset(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &data[0]); err != nil {
		return fmt.Errorf("clearing capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	return installSeccomp(filter)
}
