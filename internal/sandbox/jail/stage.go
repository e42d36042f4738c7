package jail

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/jail/jailinit"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// stage is a setup stage with its root prepared, waiting for a sandbox:
// the process is in its fresh namespaces with root mapped to HostUID, its
// Go runtime is initialised, and it has built and pivoted into the part of
// the root that every sandbox shares (prepareRoot). Getting there (clone,
// id maps, execve, Go runtime start, a dozen mounts, pivot_root, and on
// cgroup v1 a migration into a cgroup) is most of a sandbox start, so the
// driver keeps Config.Prestart stages ready and a Create only finishes one.
type stage struct {
	cmd  *exec.Cmd
	sock *os.File // worker's end of the config socket, non-blocking
	errR *os.File // the stage's error report; EOF once it execs the agent
	// cg, at cgPath, is the cgroup a stage waits in on cgroup v1 hosts,
	// without limits, renamed to the sandbox's at Create: moving a process
	// between v1 cgroups waits for an RCU grace period per hierarchy, tens
	// of ms on a busy host. Nil otherwise.
	cg     cgroup
	cgPath string
	// link is the stage's network link, attached with the default policy
	// while it waits (Config.Network), so that a Create only adjusts it.
	link *sandboxnet.Link
}

// startStage starts a setup stage. It does not wait for it: the stage
// blocks on its config socket until prepareStage sends the first message.
func (d *Driver) startStage() (*stage, error) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating config socket: %w", err)
	}
	// The worker's end goes through Go's poller, so that waiting on it can
	// be cancelled; the stage's end stays blocking.
	if err := unix.SetNonblock(sp[0], true); err != nil {
		unix.Close(sp[0])
		unix.Close(sp[1])
		return nil, fmt.Errorf("creating config socket: %w", err)
	}
	sock, child := os.NewFile(uintptr(sp[0]), "config"), os.NewFile(uintptr(sp[1]), "config")
	defer child.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		sock.Close()
		return nil, err
	}
	defer errW.Close()
	cmd := &exec.Cmd{
		// The stage's binary by descriptor, not by path: the path lookup
		// happens after the credential change, as the unprivileged host
		// uid, which may not reach the binary's directory (see
		// openInitBinary).
		Path:       "/proc/self/fd/" + strconv.Itoa(jailinit.FDExe),
		Args:       []string{jailinit.Arg0},
		Env:        []string{},
		ExtraFiles: []*os.File{child, errW, d.initExe}, // FDSock, FDErr, FDExe
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS |
				syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(d.cfg.HostUID), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(d.cfg.HostGID), Size: 1}},
			// Become the namespace's root (HostUID on the host): unmapped,
			// the worker's uid would show as the overflow uid with no
			// capabilities in the new namespace after execve.
			Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
			// The worker's death takes the sandbox down (PID 1 dying kills
			// the whole pid namespace). Linux sends it when the forking
			// thread exits; Go keeps its threads for the process's life.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		sock.Close()
		errR.Close()
		return nil, fmt.Errorf("starting setup stage: %w", err)
	}
	return &stage{cmd: cmd, sock: sock, errR: errR}, nil
}

// netns is the path of the stage's network namespace.
func (st *stage) netns() string { return "/proc/" + strconv.Itoa(st.cmd.Process.Pid) + "/ns/net" }

// kill stops a stage that will not be used, reaps it and removes its
// cgroup.
func (st *stage) kill() {
	st.link.Close() // rules first, while the name is surely this stage's (see jailSandbox.Destroy)
	st.cmd.Process.Kill()
	st.cmd.Wait()
	st.sock.Close()
	st.errR.Close()
	if st.cg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		removeCgroup(ctx, st.cg)
	}
}

// prepareStage starts a stage and has it prepare the shared part of the
// root; it returns once the stage reported ready. On cgroup v1 the stage
// waits in a cgroup of its own (see stage.cg).
func (d *Driver) prepareStage(ctx context.Context) (_ *stage, err error) {
	st, err := d.startStage()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.kill()
		}
	}()
	if d.mode == cgroupV1 {
		cgPath := path.Join("/", d.cfg.CgroupParent, fmt.Sprintf("%s%d-%s-%d", stagePrefix, os.Getpid(), d.token, d.stageSeq.Add(1)))
		if st.cg, err = d.cgroups.create(cgPath, limits{}); err != nil {
			return nil, err
		}
		st.cgPath = cgPath
		if err := st.cg.add(st.cmd.Process.Pid); err != nil {
			return nil, fmt.Errorf("moving setup stage into its cgroup: %w", err)
		}
	}
	cfg, srcs, err := d.rootSources()
	defer closeAll(srcs)
	if err != nil {
		return nil, fmt.Errorf("preparing setup stage: %w", err)
	}
	msg, err := encodeConfig(cfg, len(srcs))
	if err != nil {
		return nil, fmt.Errorf("preparing setup stage: %w", err)
	}
	if err := sendConfig(st.sock, msg, nil, srcs); err != nil {
		return nil, fmt.Errorf("preparing setup stage: %w", err)
	}
	if err := st.awaitReady(ctx); err != nil {
		return nil, fmt.Errorf("preparing setup stage: %w", err)
	}
	if d.cfg.Network != nil {
		if st.link, err = d.cfg.Network.Attach(ctx, st.netns(), fnspec.Network{}); err != nil {
			return nil, fmt.Errorf("preparing setup stage: %w", err)
		}
	}
	return st, nil
}

// encodeConfig encodes a config message for mounts trees, within the
// stage's limits.
func encodeConfig(cfg any, mounts int) ([]byte, error) {
	msg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if len(msg) > jailinit.MaxConfig || mounts > jailinit.MaxMounts {
		return nil, fmt.Errorf("%w: %d mounts and %d bytes of config exceed the jail's limits", sandbox.ErrInvalidSpec, mounts, len(msg))
	}
	return msg, nil
}

// sendConfig sends one config message with stdio and then mounts attached.
func sendConfig(sock *os.File, msg []byte, stdio, mounts []*os.File) error {
	fds := make([]int, 0, len(stdio)+len(mounts))
	for _, f := range append(stdio, mounts...) {
		fds = append(fds, int(f.Fd()))
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), msg, unix.UnixRights(fds...), nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return fmt.Errorf("sending config: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("sending config: %w", serr)
	}
	return nil
}

// sendStart sends jailinit.Start.
func sendStart(sock *os.File) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), []byte{jailinit.Start}, nil, nil, unix.MSG_NOSIGNAL)
		return serr != unix.EAGAIN
	}); err != nil {
		return fmt.Errorf("sending start: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("sending start: %w", serr)
	}
	return nil
}

// awaitReady waits for the stage's jailinit.Ready, or returns what the stage
// reported if it failed instead. The caller kills the stage on error (which
// also ends the read when ctx ended first).
func (st *stage) awaitReady(ctx context.Context) error {
	res := make(chan error, 1)
	go func() {
		var b [1]byte
		n, err := st.sock.Read(b[:])
		if n == 1 && b[0] == jailinit.Ready {
			res <- nil
			return
		}
		// The stage exited: its error pipe says why.
		if msg, _ := io.ReadAll(io.LimitReader(st.errR, 4096)); len(msg) > 0 {
			res <- errors.New(string(msg))
			return
		}
		res <- fmt.Errorf("setup stage exited before it was ready (%v)", err)
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stagePrefix names the cgroups of prestarted stages:
// <parent>/<stagePrefix><worker pid>-<driver token>-<seq>.
const stagePrefix = "stage-"

// removeStaleStageCgroups removes the cgroups of prestarted stages left by
// dead worker processes (their stages died with them: Pdeathsig) under any
// top-level cgroup, not only this driver's parent: a process that never
// called Close leaves them wherever its parent was.
func (d *Driver) removeStaleStageCgroups(ctx context.Context) {
	if d.mode != cgroupV1 {
		return
	}
	root := d.cgroups.v1Root()
	if root == "" {
		return
	}
	parents, _ := os.ReadDir(root)
	for _, parent := range parents {
		if !parent.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(root, parent.Name()))
		for _, e := range ents {
			pid, ok := stageOwner(e.Name())
			if !ok || !e.IsDir() || pid == os.Getpid() || unix.Kill(pid, 0) == nil {
				continue
			}
			cgPath := path.Join("/", parent.Name(), e.Name())
			if cg, err := d.cgroups.load(cgroupV1, cgPath); err == nil {
				if err := removeCgroup(ctx, cg); err != nil {
					d.log.Warn("removing stale stage cgroup", "cgroup", cgPath, "err", err)
				}
			}
		}
	}
}

// removeEmptySandboxCgroups removes the empty cgroups under the driver's
// parent: those of sandboxes a previous worker process created but had not
// recorded when it died (between the cgroup's rename and the handle file),
// whose processes died with it, so that no later Recover is asked for
// them. On v1 a live sandbox's cgroup always holds its processes (the
// stage moves in before its cgroup is renamed), and rmdir(2) refuses a
// cgroup with a process or a child: only the dead ones go.
func (d *Driver) removeEmptySandboxCgroups() {
	if d.mode != cgroupV1 {
		return
	}
	for _, s := range d.cgroups.v1Cleanup {
		p, ok := s.(interface{ Path(string) string })
		if !ok {
			continue
		}
		dir := p.Path(d.cfg.CgroupParent)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && !strings.HasPrefix(e.Name(), stagePrefix) {
				unix.Rmdir(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// stageOwner parses a stage cgroup's name, stage-<pid>-<8 hex>-<seq>, and
// returns the pid of the worker that made it.
func stageOwner(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, stagePrefix)
	if !ok {
		return 0, false
	}
	f := strings.Split(rest, "-")
	switch {
	case len(f) == 3 && len(f[1]) == 8:
		if _, err := hex.DecodeString(f[1]); err != nil {
			return 0, false
		}
	case len(f) == 2: // stage-<pid>-<seq>, made by the first versions
	default:
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, false
	}
	if _, err := strconv.Atoi(f[len(f)-1]); err != nil {
		return 0, false
	}
	return pid, true
}

// takeStage returns a prestarted stage, or prepares one when there is no
// pool; fromPool tells which.
//
// An empty pool means its stages are all being refilled: then the refill
// is told to start at once and one Create at a time waits for it, which is
// sooner than a stage started from scratch beside it. Other Creates of a
// burst, and any while the prestart loop fails, prepare their own stage
// in parallel (the loop prepares one at a time).
func (d *Driver) takeStage(ctx context.Context) (st *stage, fromPool bool, err error) {
	select {
	case st := <-d.stages:
		return st, true, nil
	default:
	}
	if d.stages != nil && !d.prestartFailing.Load() && d.waiting.CompareAndSwap(false, true) {
		st, err := d.awaitRefill(ctx)
		d.waiting.Store(false)
		if st != nil || err != nil {
			return st, st != nil, err
		}
	}
	st, err = d.prepareStage(ctx)
	return st, false, err
}

// awaitRefill starts the pending refill at once and waits for a stage from
// the pool. It returns nil and no error when the prestart loop failed or
// the driver is closing.
func (d *Driver) awaitRefill(ctx context.Context) (*stage, error) {
	select {
	case d.hurry <- struct{}{}:
	default:
	}
	select {
	case st := <-d.stages:
		return st, nil
	case <-d.prestartFailed:
		return nil, nil
	case <-d.closing:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refillLater asks for a stage to replace one a Create took from the pool.
// The Create calls it on return; the replacement starts Config.RefillDelay
// later (or when a Create finds the pool empty), so that it does not slow
// the start it is part of.
func (d *Driver) refillLater() {
	d.requestStage(time.Now().Add(d.cfg.RefillDelay))
}

// requestStage asks the prestart loop for a stage, started not before
// notBefore.
func (d *Driver) requestStage(notBefore time.Time) {
	select {
	case d.refill <- notBefore:
	default:
	}
}

// prestart prepares a stage for each refill token and puts it in d.stages,
// until d.closing is closed.
func (d *Driver) prestart() {
	defer close(d.prestartDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		var notBefore time.Time
		select {
		case notBefore = <-d.refill:
		case <-d.closing:
			return
		}
		if wait := time.Until(notBefore); wait > 0 {
			select {
			case <-time.After(wait):
			case <-d.hurry:
			case <-d.closing:
				return
			}
		}
		st, err := d.prepareStage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Error("prestarting setup stage", "err", err)
			// A Create waiting for this stage prepares its own instead.
			d.prestartFailing.Store(true)
			select {
			case d.prestartFailed <- struct{}{}:
			default:
			}
			d.requestStage(time.Time{})
			select {
			case <-d.closing:
				return
			case <-time.After(time.Second):
				continue
			}
		}
		d.prestartFailing.Store(false)
		select {
		case d.stages <- st:
		case <-d.closing:
			st.kill()
			return
		}
	}
}

// stderrFile returns a file the agent can write its stderr to: w itself
// when it is a file, /dev/null when nil, else a pipe copied into w until
// every process of the sandbox has exited.
func stderrFile(w io.Writer) (*os.File, error) {
	switch w := w.(type) {
	case nil:
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	case *os.File:
		// A duplicate, so the caller may close it like the other cases.
		fd, err := unix.FcntlInt(w.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), w.Name()), nil
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func() {
		io.Copy(w, r)
		r.Close()
	}()
	return pw, nil
}
