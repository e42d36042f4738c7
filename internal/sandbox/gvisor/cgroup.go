package gvisor

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

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
	delete() error
}

func newCgroup(path string, res *specs.LinuxResources) (cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager("/sys/fs/cgroup", path, cgroup2.ToResources(res))
		if err != nil {
			return nil, err
		}
		return v2{m}, nil
	}
	c, err := cgroup1.New(cgroup1.StaticPath(path), res)
	if err != nil {
		return nil, err
	}
	return v1{c}, nil
}

func loadCgroup(path string) (cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, err
		}
		return v2{m}, nil
	}
	c, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return nil, err
	}
	return v1{c}, nil
}

type v1 struct{ c cgroup1.Cgroup }

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

type v2 struct{ m *cgroup2.Manager }

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
