package jailinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Main runs the setup stage and never returns: it builds the sandbox's
// root, drops privileges and execs the agent, or reports why it could not
// on FDErr and exits 1. The driver starts it in fresh namespaces with the
// descriptors above; ignis-jail-init's main is this call, and a binary that
// doubles as the stage calls it when argv[0] is Arg0.
func Main() {
	// Capabilities, rlimits and the final execve are per thread: do them all
	// on this one.
	runtime.LockOSThread()
	// The driver's handle on our binary is of no further use, and must not
	// linger in the sandbox.
	unix.Close(FDExe)
	err := run()
	msg := "jail init: unknown failure"
	if err != nil {
		msg = "jail init: " + err.Error()
	}
	if _, werr := unix.Write(FDErr, []byte(msg)); werr != nil {
		// Not started by the driver (run by hand?): say so on stderr.
		unix.Write(2, []byte(msg+" (ignis-jail-init is started by the jail sandbox driver)\n"))
	}
	os.Exit(1)
}

// run builds the root and execs the agent; it returns only on failure.
// It runs as root of a fresh user namespace (an unprivileged uid on the
// host), as PID 1 of a fresh pid namespace, in fresh mount, net, ipc and uts
// namespaces. Everything up to Ready happens ahead of Create (the stage
// is prestarted) and depends on no Spec; the rest of the root is built
// while the worker sets up the sandbox's cgroup, and the agent is exec'd
// only once the worker has (Start).
func run() error {
	buf := make([]byte, MaxConfig)
	var rc RootConfig
	fds, err := receive(buf, &rc)
	if err != nil {
		return err
	}
	if rc.Version != Version {
		return fmt.Errorf("driver speaks protocol version %d, this stage binary %d: ignis-jail-init is not from the same build as the worker", rc.Version, Version)
	}
	if err := mountFDs(rc.Mounts, fds); err != nil {
		return err
	}
	if err := prepareRoot(rc); err != nil {
		return err
	}
	filter := warmUp()
	if _, err := unix.Write(FDSock, []byte{Ready}); err != nil {
		return fmt.Errorf("reporting ready: %w", err)
	}

	var sc SandboxConfig
	if fds, err = receive(buf, &sc); err != nil {
		return err
	}
	if !strings.HasPrefix(sc.Path, "/") {
		return fmt.Errorf("agent path %q is not absolute", sc.Path)
	}
	if len(fds) < FirstMountFD {
		return fmt.Errorf("got %d descriptors, want stdio and mounts", len(fds))
	}
	if err := mountFDs(sc.Mounts, fds[FirstMountFD:]); err != nil {
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
	// Nothing of the worker's may reach the agent but its stdio; FDErr must
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
	unix.Close(FDSock)
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
	if err := unix.Exec(sc.Path, sc.Argv, sc.Env); err != nil {
		return fmt.Errorf("executing agent: %w", err)
	}
	return errors.New("execve returned")
}

// awaitStart waits for the worker's Start on FDSock.
func awaitStart() error {
	var b [1]byte
	n, err := unix.Read(FDSock, b[:])
	switch {
	case err != nil:
		return fmt.Errorf("waiting for start: %w", err)
	case n != 1 || b[0] != Start:
		return errors.New("worker closed the config socket before start")
	}
	return nil
}

// warmUp does ahead of Create what the rest of runInit would otherwise do
// on its clock: it builds the seccomp filter (about 0.2 ms in a stage),
// and decodes a SandboxConfig once, so that encoding/json has its decoder
// cached and its code paged in.
func warmUp() []unix.SockFilter {
	filter := seccompProgram()
	var sc SandboxConfig
	json.Unmarshal([]byte(`{"tmpMB":1,"mounts":[{"fd":0,"target":"var/task","file":true}],"path":"/a","argv":["a"],"env":["b"]}`), &sc)
	return filter
}

// receive waits for the worker's next message on FDSock, decodes it into v
// and returns the descriptors that came with it.
func receive(buf []byte, v any) ([]int, error) {
	oob := make([]byte, unix.CmsgSpace(4*(FirstMountFD+MaxMounts)))
	n, oobn, flags, _, err := unix.Recvmsg(FDSock, buf, oob, unix.MSG_CMSG_CLOEXEC)
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
func mountFDs(mounts []Mount, fds []int) error {
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
func prepareRoot(cfg RootConfig) error {
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
func finishRoot(cfg SandboxConfig) error {
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
func attach(m Mount) error {
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
