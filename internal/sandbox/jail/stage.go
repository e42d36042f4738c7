package jail

import (
	"context"
	"encoding/hex"
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

	"github.com/containerd/cgroups/v3/cgroup1"

	"golang.org/x/sys/unix"
)

// stage is a started setup stage waiting for its config: the process is
// already in its fresh namespaces with root mapped to HostUID and its Go
// runtime initialised, but belongs to no sandbox yet. Starting one (clone,
// id maps, netns, execve, runtime start) is the slowest part of a sandbox
// start, so the driver keeps a few ready (Config.Prestart) and a Create only
// hands one its config.
type stage struct {
	cmd  *exec.Cmd
	sock *os.File // worker's end of the config socket
	errR *os.File // the stage's error report; EOF once it execs the agent
	// cg, at cgPath, is the unlimited cgroup a prestarted stage waits in
	// on cgroup v1 hosts, renamed to the sandbox's at Create: moving a
	// process between v1 cgroups waits for an RCU grace period per
	// hierarchy, tens of ms on a busy host. Nil otherwise.
	cg     cgroup
	cgPath string
}

// startStage starts a setup stage. It does not wait for it to be ready:
// the stage blocks on its config socket until a Create sends one.
func (d *Driver) startStage() (*stage, error) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
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
		Path:       d.cfg.InitBinary,
		Args:       []string{initArg0},
		Env:        []string{},
		ExtraFiles: []*os.File{child, errW}, // fdSock, fdErr
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

// kill stops a stage that will not be used, reaps it and removes its
// cgroup.
func (st *stage) kill() {
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

// prestartStage starts a stage for the pool; on cgroup v1 it waits in a
// cgroup of its own (see stage.cg).
func (d *Driver) prestartStage(seq int) (*stage, error) {
	st, err := d.startStage()
	if err != nil || d.mode != cgroupV1 {
		return st, err
	}
	st.cgPath = path.Join("/", d.cfg.CgroupParent, fmt.Sprintf("%s%d-%s-%d", stagePrefix, os.Getpid(), d.token, seq))
	if st.cg, err = newCgroup(cgroupV1, st.cgPath, limits{}, d.noSwapFile); err != nil {
		st.cgPath = ""
		st.kill()
		return nil, err
	}
	if err := st.cg.add(st.cmd.Process.Pid); err != nil {
		st.kill()
		return nil, fmt.Errorf("moving setup stage into its cgroup: %w", err)
	}
	return st, nil
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
	subs, err := v1Hierarchy()
	if err != nil {
		return
	}
	var root string
	for _, s := range subs {
		if p, ok := s.(interface{ Path(string) string }); ok && s.Name() == cgroup1.Pids {
			root = p.Path("/")
		}
	}
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
			if cg, err := loadCgroup(cgroupV1, cgPath); err == nil {
				if err := removeCgroup(ctx, cg); err != nil {
					d.log.Warn("removing stale stage cgroup", "cgroup", cgPath, "err", err)
				}
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

// takeStage returns a prestarted stage, or starts one when none is ready.
func (d *Driver) takeStage() (*stage, error) {
	select {
	case st := <-d.stages:
		return st, nil
	default:
		return d.startStage()
	}
}

// refillLater asks for a stage to replace one a Create took. The Create
// calls it on return, so that the replacement does not compete for CPU
// with the start it is part of.
func (d *Driver) refillLater() {
	select {
	case d.refill <- struct{}{}:
	default: // the stage was not from the pool
	}
}

// prestart starts a stage for each refill token and puts it in d.stages,
// until d.closing is closed.
func (d *Driver) prestart() {
	defer close(d.prestartDone)
	for seq := 0; ; seq++ {
		select {
		case <-d.refill:
		case <-d.closing:
			return
		}
		st, err := d.prestartStage(seq)
		if err != nil {
			d.log.Error("prestarting setup stage", "err", err)
			d.refillLater()
			select {
			case <-d.closing:
				return
			case <-time.After(time.Second):
				continue
			}
		}
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
