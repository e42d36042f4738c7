package gvisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/sandbox"
)

// cgroupPath is the sandbox's cgroup below each hierarchy's root. It is flat
// (no shared parent) so that removing it leaves nothing behind.
func cgroupPath(id string) string { return "/ignis-gvisor-" + id }

// cgroup is the sandbox's cgroup on whichever hierarchy the host has:
// cgroup v1 on legacy and hybrid hosts (runsc uses v1 there too), v2 on
// unified ones.
type cgroup interface {
	stats() (sandbox.Stats, error)
	// limitCPU applies a CPU quota (shares, quota and period of res.CPU).
	limitCPU(res *specs.LinuxResources) error
	// kill SIGKILLs every process left in the cgroup.
	kill() error
	// procs lists the host processes (thread group leaders) in the cgroup.
	procs() ([]int, error)
	// memory returns the cgroup's memory usage (what its limit applies
	// to) and how much of it is reclaimable file cache.
	memory() (usage, file uint64, err error)
	// limitMemory sets the hard memory limit (swap included: none is
	// allowed). A limit below the usage fails once reclaim cannot get
	// there.
	limitMemory(bytes int64) error
	// watchOOM calls onOOM whenever the limit is hit, until stop is
	// called. Where the kernel kills the whole cgroup by itself (v2's
	// memory.oom.group) it never calls onOOM.
	watchOOM(onOOM func()) (stop func(), err error)
	delete() error
}

func newCgroup(path string, res *specs.LinuxResources) (cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager("/sys/fs/cgroup", path, cgroup2.ToResources(res))
		if err != nil {
			return nil, err
		}
		c := v2{m, path}
		// An OOM kill takes the whole sandbox (see memwatch.go).
		if err := os.WriteFile(filepath.Join(c.dir(), "memory.oom.group"), []byte("1"), 0); err != nil {
			m.Delete()
			return nil, err
		}
		return c, nil
	}
	c, err := cgroup1.New(cgroup1.StaticPath(path), res)
	if err != nil {
		return nil, err
	}
	return v1{c, v1MemoryDir(path)}, nil
}

func loadCgroup(path string) (cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, err
		}
		return v2{m, path}, nil
	}
	c, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return nil, err
	}
	return v1{c, v1MemoryDir(path)}, nil
}

// v1MemoryDir is the directory of cgroup path in the v1 memory hierarchy,
// or "" when the host has none.
func v1MemoryDir(path string) string {
	subs, err := cgroup1.Default()
	if err != nil {
		return ""
	}
	for _, s := range subs {
		if p, ok := s.(interface{ Path(string) string }); ok && s.Name() == cgroup1.Memory {
			return p.Path(path)
		}
	}
	return ""
}

type v1 struct {
	c   cgroup1.Cgroup
	mem string // the cgroup's directory in the memory hierarchy
}

func (c v1) stats() (sandbox.Stats, error) {
	m, err := c.c.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return sandbox.Stats{}, err
	}
	var s sandbox.Stats
	if m.Memory != nil && m.Memory.Usage != nil {
		s.MemoryBytes = m.Memory.Usage.Usage
		s.MaxMemoryBytes = m.Memory.Usage.Max
	}
	if m.MemoryOomControl != nil {
		s.OOMKills = m.MemoryOomControl.OomKill
	}
	if m.CPU != nil && m.CPU.Usage != nil {
		s.CPUUsage = time.Duration(m.CPU.Usage.Total)
	}
	if m.Pids != nil {
		s.PidsCurrent = m.Pids.Current
	}
	return s, nil
}

func (c v1) kill() error {
	procs, err := c.c.Processes(cgroup1.Pids, true)
	if err != nil {
		procs, err = c.c.Processes(cgroup1.Memory, true)
	}
	if err != nil {
		return err
	}
	for _, p := range procs {
		syscall.Kill(p.Pid, syscall.SIGKILL)
	}
	return nil
}

func (c v1) procs() ([]int, error) {
	ps, err := c.c.Processes(cgroup1.Memory, false)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ps))
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	return pids, nil
}

func (c v1) limitCPU(res *specs.LinuxResources) error {
	return c.c.Update(&specs.LinuxResources{CPU: res.CPU})
}

func (c v1) delete() error { return deleteRetrying(c.c.Delete) }

func (c v1) memory() (usage, file uint64, err error) {
	if c.mem == "" {
		return 0, 0, errNoMemoryCgroup
	}
	return readMemory(filepath.Join(c.mem, "memory.usage_in_bytes"), filepath.Join(c.mem, "memory.stat"))
}

// limitMemory sets memory.limit_in_bytes and memory.memsw.limit_in_bytes
// (where the kernel accounts swap) to bytes, in the order the kernel
// accepts: the memory limit may never exceed the memory+swap one.
func (c v1) limitMemory(bytes int64) error {
	if c.mem == "" {
		return errNoMemoryCgroup
	}
	limit := filepath.Join(c.mem, "memory.limit_in_bytes")
	memsw := filepath.Join(c.mem, "memory.memsw.limit_in_bytes")
	order := []string{limit, memsw}
	if cur, err := readUint(limit); err == nil && uint64(bytes) > cur {
		order = []string{memsw, limit}
	}
	v := []byte(strconv.FormatInt(bytes, 10))
	for _, f := range order {
		if err := os.WriteFile(f, v, 0); err != nil && !(f == memsw && errors.Is(err, os.ErrNotExist)) {
			return err
		}
	}
	return nil
}

// watchOOM listens on memory.oom_control through cgroup.event_control,
// which the kernel signals whenever a charge hits the limit and its OOM
// killer runs. That killer kills one process, the one with the most
// resident memory; onOOM is there to kill the rest.
//
// Why not disable the OOM killer (oom_kill_disable), which makes a task
// that hits the limit wait instead: only page faults from user mode wait
// and notify; a charge from the kernel (the host copying a file read into
// the Sentry's memory) then fails with ENOMEM or EFAULT, unheard of.
func (c v1) watchOOM(onOOM func()) (func(), error) {
	if c.mem == "" {
		return nil, errNoMemoryCgroup
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	ev := os.NewFile(uintptr(efd), "oom eventfd") // non-blocking: Close ends a Read
	ctl, err := os.Open(filepath.Join(c.mem, "memory.oom_control"))
	if err != nil {
		ev.Close()
		return nil, err
	}
	err = os.WriteFile(filepath.Join(c.mem, "cgroup.event_control"), []byte(fmt.Sprintf("%d %d", efd, ctl.Fd())), 0)
	ctl.Close()
	if err != nil {
		ev.Close()
		return nil, err
	}
	oomControl := filepath.Join(c.mem, "memory.oom_control")
	go func() {
		var b [8]byte
		for {
			if _, err := ev.Read(b[:]); err != nil {
				return
			}
			// The eventfd also fires when the cgroup is removed.
			if ctl, err := os.ReadFile(oomControl); err == nil && oomHappened(string(ctl)) {
				onOOM()
			}
		}
	}()
	return func() { ev.Close() }, nil
}

type v2 struct {
	m    *cgroup2.Manager
	path string // below /sys/fs/cgroup
}

func (c v2) stats() (sandbox.Stats, error) {
	m, err := c.m.Stat()
	if err != nil {
		return sandbox.Stats{}, err
	}
	var s sandbox.Stats
	if m.Memory != nil {
		s.MemoryBytes = m.Memory.Usage
		s.MaxMemoryBytes = m.Memory.MaxUsage
	}
	if m.MemoryEvents != nil {
		s.OOMKills = m.MemoryEvents.OomKill
	}
	if m.CPU != nil {
		s.CPUUsage = time.Duration(m.CPU.UsageUsec) * time.Microsecond
	}
	if m.Pids != nil {
		s.PidsCurrent = m.Pids.Current
	}
	return s, nil
}

func (c v2) limitCPU(res *specs.LinuxResources) error {
	r := cgroup2.ToResources(&specs.LinuxResources{CPU: res.CPU})
	return c.m.Update(r)
}

func (c v2) procs() ([]int, error) {
	ps, err := c.m.Procs(false)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ps))
	for _, p := range ps {
		pids = append(pids, int(p))
	}
	return pids, nil
}

func (c v2) kill() error   { return c.m.Kill() }
func (c v2) delete() error { return deleteRetrying(c.m.Delete) }

func (c v2) dir() string { return filepath.Join("/sys/fs/cgroup", c.path) }

func (c v2) memory() (usage, file uint64, err error) {
	return readMemory(filepath.Join(c.dir(), "memory.current"), filepath.Join(c.dir(), "memory.stat"))
}

func (c v2) limitMemory(bytes int64) error {
	zero := int64(0)
	r := &cgroup2.Resources{Memory: &cgroup2.Memory{Max: &bytes}}
	if _, err := os.Stat(filepath.Join(c.dir(), "memory.swap.max")); err == nil {
		r.Memory.Swap = &zero
	}
	return c.m.Update(r)
}

// watchOOM needs no watching on v2: the cgroup is created with
// memory.oom.group set, so the kernel's OOM killer takes every process in
// it at once, and memory.events counts the kill.
func (c v2) watchOOM(func()) (func(), error) { return func() {}, nil }

// oomHappened reports whether a v1 memory.oom_control says the cgroup is
// or was out of memory: under_oom (while the OOM killer runs) or a kill.
func oomHappened(oomControl string) bool {
	for _, l := range strings.Split(oomControl, "\n") {
		k, v, _ := strings.Cut(l, " ")
		if (k == "under_oom" || k == "oom_kill") && v != "0" && v != "" {
			return true
		}
	}
	return false
}

// errNoMemoryCgroup: the host has no memory controller for this cgroup.
var errNoMemoryCgroup = errors.New("no memory cgroup")

// readMemory reads a cgroup's memory usage from usageFile and its file
// cache (active_file + inactive_file, both versions' name; shmem, which
// holds the Sentry's memory file, is not in it) from statFile.
func readMemory(usageFile, statFile string) (usage, file uint64, err error) {
	if usage, err = readUint(usageFile); err != nil {
		return 0, 0, err
	}
	b, err := os.ReadFile(statFile)
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, " ")
		if k == "active_file" || k == "inactive_file" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", statFile, err)
			}
			file += n
		}
	}
	return usage, file, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// deleteRetrying removes a cgroup, waiting briefly for killed processes to
// leave it (the kernel empties a cgroup only once they are reaped).
func deleteRetrying(del func() error) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = del(); err == nil || errors.Is(err, os.ErrNotExist) || errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("deleting cgroup: %w", err)
}
