package testcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cfsPeriod is the CFS period of a host's CPU quota, in µs: the kernel's
// default.
const cfsPeriod = 100_000

// cgroups is the machine's cgroup layout as the cluster uses it: where a
// host's cgroup is made, and where leftovers are looked for. Immutable
// after loadCgroups; safe for concurrent use.
type cgroups struct {
	v2 bool
	// dirs are the hierarchies (mount points) a host's cgroup is made in:
	// on v1 those of the jail's controllers, deduplicated; on v2 the root.
	dirs []string
	// cpuDir holds the cpu controller; procsDir lists a host's processes
	// (the pids hierarchy on v1).
	cpuDir, procsDir string
	// byController maps each v1 controller to its hierarchy's mount point.
	byController map[string]string
	// all is every cgroup mount point, v1 and v2: a cluster's cgroups are
	// removed from all of them (the jail may have used any).
	all []string
}

// loadCgroups reads the cgroup mounts of the machine from mountinfo.
func loadCgroups() (*cgroups, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	cg := &cgroups{byController: map[string]string{}}
	var v2root string
	for line := range strings.Lines(string(data)) {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		switch mp := f[4]; g[0] {
		case "cgroup":
			cg.all = append(cg.all, mp)
			for _, opt := range strings.Split(g[2], ",") {
				cg.byController[opt] = mp
			}
		case "cgroup2":
			cg.all = append(cg.all, mp)
			v2root = mp
		}
	}
	switch {
	case cg.byController["cpu"] != "":
		// v1 or hybrid: the jail's controllers (see jail.v1Subsystems).
		for _, c := range []string{"cpu", "cpuacct", "memory", "pids"} {
			if mp := cg.byController[c]; mp != "" && !slices.Contains(cg.dirs, mp) {
				cg.dirs = append(cg.dirs, mp)
			}
		}
		cg.cpuDir, cg.procsDir = cg.byController["cpu"], cg.byController["pids"]
		if cg.procsDir == "" {
			cg.procsDir = cg.cpuDir
		}
	case v2root == "/sys/fs/cgroup":
		ctrl, err := os.ReadFile(filepath.Join(v2root, "cgroup.controllers"))
		if err != nil || !slices.Contains(strings.Fields(string(ctrl)), "cpu") {
			return nil, fmt.Errorf("no cpu controller in the cgroup v2 root (%q, %v)", ctrl, err)
		}
		cg.v2, cg.dirs, cg.cpuDir, cg.procsDir = true, []string{v2root}, v2root, v2root
	default:
		return nil, errors.New("no cgroup hierarchy with the cpu controller is mounted")
	}
	return cg, nil
}

// create makes the host cgroup rel (<cluster id>/hN) with a quota of
// millis thousandths of a CPU, and its server child.
func (cg *cgroups) create(rel string, millis int) error {
	for _, d := range cg.dirs {
		if err := os.MkdirAll(filepath.Join(d, rel, "server"), 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", rel, err)
		}
	}
	dir := filepath.Join(cg.cpuDir, rel)
	quota := strconv.Itoa(millis * cfsPeriod / 1000)
	if cg.v2 {
		// Controllers reach a cgroup through its parent's subtree_control;
		// hN itself holds no process (its server and sandboxes are its
		// children), as v2 requires of a cgroup that enables controllers.
		for _, p := range []string{filepath.Dir(dir), dir} {
			if err := os.WriteFile(filepath.Join(p, "cgroup.subtree_control"), []byte("+cpu +memory +pids"), 0); err != nil {
				return fmt.Errorf("enabling controllers in %s: %w", p, err)
			}
		}
		return os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(quota+" "+strconv.Itoa(cfsPeriod)), 0)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(cfsPeriod)), 0); err != nil {
		return fmt.Errorf("setting the CPU period of %s: %w", rel, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte(quota), 0); err != nil {
		return fmt.Errorf("setting the CPU quota of %s: %w", rel, err)
	}
	return nil
}

// cpuQuota reads the CPU quota of cgroup rel back from the kernel, in
// thousandths of a CPU; 0 when unlimited.
func (cg *cgroups) cpuQuota(rel string) (int, error) {
	dir := filepath.Join(cg.cpuDir, rel)
	var quota, period string
	if cg.v2 {
		b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
		if err != nil {
			return 0, err
		}
		if f := strings.Fields(string(b)); len(f) == 2 {
			quota, period = f[0], f[1]
		}
	} else {
		q, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
		if err != nil {
			return 0, err
		}
		p, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
		if err != nil {
			return 0, err
		}
		quota, period = strings.TrimSpace(string(q)), strings.TrimSpace(string(p))
	}
	if quota == "max" || quota == "-1" {
		return 0, nil
	}
	q, err1 := strconv.Atoi(quota)
	p, err2 := strconv.Atoi(period)
	if err1 != nil || err2 != nil || p <= 0 {
		return 0, fmt.Errorf("reading the CPU quota of %s: %q / %q", rel, quota, period)
	}
	return q * 1000 / p, nil
}

// enter arranges for cmd to start inside cgroup rel. On v1 it moves the
// calling thread, which must be locked to its goroutine and forks cmd
// next, into rel in each hierarchy; v2 forks straight into the cgroup
// (CLONE_INTO_CGROUP) and moves nothing. leave undoes what enter did and
// is to be called, even when enter failed, once cmd has started.
func (cg *cgroups) enter(cmd *exec.Cmd, rel string) (leave func() error, err error) {
	if cg.v2 {
		dir, err := os.Open(filepath.Join(cg.dirs[0], rel))
		if err != nil {
			return func() error { return nil }, err
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
		return dir.Close, nil
	}
	tid := []byte(strconv.Itoa(unix.Gettid()))
	back, err := cg.threadCgroups()
	if err != nil {
		return func() error { return nil }, err
	}
	var moved []string
	leave = func() error {
		var errs []error
		for _, d := range moved {
			if err := os.WriteFile(filepath.Join(d, back[d], "tasks"), tid, 0); err != nil {
				errs = append(errs, fmt.Errorf("moving the test's thread back to its cgroup: %w", err))
			}
		}
		return errors.Join(errs...)
	}
	for _, d := range cg.dirs {
		if err := os.WriteFile(filepath.Join(d, rel, "tasks"), tid, 0); err != nil {
			return leave, fmt.Errorf("moving into cgroup %s: %w", rel, err)
		}
		moved = append(moved, d)
	}
	return leave, nil
}

// threadCgroups maps each v1 hierarchy (mount point) to the calling
// thread's cgroup in it.
func (cg *cgroups) threadCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for line := range strings.Lines(string(data)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if mp := cg.byController[c]; mp != "" {
				m[mp] = f[2]
			}
		}
	}
	for _, d := range cg.dirs {
		if _, ok := m[d]; !ok {
			return nil, fmt.Errorf("finding the test's cgroup in %s", d)
		}
	}
	return m, nil
}

// procs lists the processes in cgroup rel and its descendants, except the
// test process (its spawning thread passes through a host's cgroup).
func (cg *cgroups) procs(rel string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(filepath.Join(cg.procsDir, rel), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil || !d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, _ := strconv.Atoi(f); pid > 0 && pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// kill sends SIGKILL to every process in cgroup rel and its descendants
// until none is left: a process forked between listing and killing is
// found on the next round.
func (cg *cgroups) kill(rel string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := cg.procs(rel)
		if err != nil {
			return fmt.Errorf("listing the processes of %s: %w", rel, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of %s survive SIGKILL", pids, rel)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// remove kills every process in cgroup rel and removes it, with its
// descendants, from every hierarchy.
func (cg *cgroups) remove(rel string) error {
	if err := cg.kill(rel); err != nil {
		return err
	}
	var errs []error
	for _, mp := range cg.all {
		if err := rmdirTree(filepath.Join(mp, rel)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rmdirTree removes the cgroup directory dir and those below it, deepest
// first, retrying while the kernel still counts exiting processes.
func rmdirTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := unix.Rmdir(dirs[i])
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}
