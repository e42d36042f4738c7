package jail

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/sandbox"
)

// cgroupMode says which cgroup API a sandbox's cgroup lives in. Hybrid hosts
// (v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified) use v1:
// that is where their memory, cpu and pids controllers are.
type cgroupMode string

const (
	cgroupV1 cgroupMode = "v1"
	cgroupV2 cgroupMode = "v2"
)

// hostCgroupMode detects the host's cgroup layout.
func hostCgroupMode() (cgroupMode, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return cgroupV2, nil
	case cgroups.Legacy, cgroups.Hybrid:
		return cgroupV1, nil
	}
	return "", fmt.Errorf("no cgroup hierarchy mounted: %w", sandbox.ErrUnsupported)
}

// limits are the resource limits of one sandbox.
type limits struct {
	memoryBytes int64
	cpuMillis   int
	pids        int64
}

// cgroup is one sandbox's cgroup, whichever API it lives in.
type cgroup interface {
	// add moves a process (all its threads) into the cgroup.
	add(pid int) error
	// kill sends SIGKILL to every process in the cgroup.
	kill() error
	// remove deletes the cgroup; it fails while processes remain.
	remove() error
	// limitCPU sets the CPU quota.
	limitCPU(millis int) error
	// setLimits applies memory and pids limits (v1 only: cgroups of
	// prestarted stages are created unlimited).
	setLimits(l limits) error
	// procs lists the processes in the cgroup.
	procs() ([]int, error)
	stats() (sandbox.Stats, error)
}

const cpuPeriod = 100_000 // µs, the kernel default CFS period

// v1Subsystems are the v1 controllers a sandbox uses: limits and
// accounting. Not the freezer: nothing in a sandbox can fork once its PID 1
// is dead (the kernel refuses forks in a dying pid namespace), so killing
// needs no freezing, and the library's Freeze polls without a bound. Each
// hierarchy left out is one cgroup migration fewer per start.
var v1Subsystems = map[cgroup1.Name]bool{
	cgroup1.Memory: true, cgroup1.Cpu: true, cgroup1.Cpuacct: true, cgroup1.Pids: true,
}

// hostCgroups is the host's cgroup layout as the driver uses it, read once
// by New: the v1 hierarchies stay mounted where they are while the host
// runs, and finding them (parsing /proc/self/mountinfo) on every operation
// cost about a millisecond of each Create. Immutable after
// newHostCgroups; safe for concurrent use.
type hostCgroups struct {
	mode       cgroupMode
	noSwapFile bool                // v1 without swap accounting (memory.memsw.*)
	v1         []cgroup1.Subsystem // the v1Subsystems hierarchies
	// v1Cleanup adds the freezer, which the first versions of the driver
	// used, so that their leftovers are removed too.
	v1Cleanup []cgroup1.Subsystem
}

func newHostCgroups(mode cgroupMode) (*hostCgroups, error) {
	h := &hostCgroups{mode: mode}
	if mode != cgroupV1 {
		return h, nil
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err != nil {
		h.noSwapFile = true
	}
	all, err := cgroup1.Default()
	if err != nil {
		return nil, fmt.Errorf("finding cgroup v1 hierarchies: %w", err)
	}
	for _, s := range all {
		if v1Subsystems[s.Name()] {
			h.v1 = append(h.v1, s)
			h.v1Cleanup = append(h.v1Cleanup, s)
		} else if s.Name() == cgroup1.Freezer {
			h.v1Cleanup = append(h.v1Cleanup, s)
		}
	}
	return h, nil
}

func (h *hostCgroups) hierarchy() cgroup1.Hierarchy {
	return func() ([]cgroup1.Subsystem, error) { return h.v1, nil }
}

func (h *hostCgroups) cleanupHierarchy() cgroup1.Hierarchy {
	return func() ([]cgroup1.Subsystem, error) { return h.v1Cleanup, nil }
}

// v1Root is the directory of the root cgroup of a v1 hierarchy the jail
// uses (the pids one), or "" when there is none.
func (h *hostCgroups) v1Root() string { return h.v1Dir(cgroup1.Pids, "/") }

// v1Dir is path's directory in the v1 hierarchy of the subsystem name, or
// "" when the jail does not use that subsystem.
func (h *hostCgroups) v1Dir(name cgroup1.Name, path string) string {
	for _, s := range h.v1 {
		if p, ok := s.(interface{ Path(string) string }); ok && s.Name() == name {
			return p.Path(path)
		}
	}
	return ""
}

// cpuMax converts thousandths of a CPU into a CFS quota per cpuPeriod.
func cpuMax(millis int) (quota int64, period uint64) {
	return int64(millis) * cpuPeriod / 1000, cpuPeriod
}

// create makes the cgroup at path (relative to the hierarchy roots) with
// the given limits. A zero cpuMillis leaves the CPU unlimited.
func (h *hostCgroups) create(path string, l limits) (cgroup, error) {
	mode := h.mode
	quota, period := cpuMax(l.cpuMillis)
	if l.cpuMillis == 0 {
		quota = -1
	}
	// Two sandboxes must never share a cgroup: an existing one is a
	// duplicate ID or the leftover of a sandbox nobody recovered.
	if _, err := h.load(mode, path); err == nil {
		return nil, fmt.Errorf("cgroup %s already exists: %w", path, fs.ErrExist)
	}
	switch mode {
	case cgroupV1:
		res := v1Resources(l, h.noSwapFile)
		cg, err := cgroup1.New(cgroup1.StaticPath(path), res,
			cgroup1.WithHierarchy(h.hierarchy()))
		if err != nil {
			// cgroup1.New leaves the directories it made behind on error.
			if c, lerr := cgroup1.Load(cgroup1.StaticPath(path), cgroup1.WithHierarchy(h.hierarchy())); lerr == nil {
				c.Delete()
			}
			return nil, fmt.Errorf("creating cgroup v1 %s: %w", path, err)
		}
		return &v1Cgroup{cg: cg, noSwapFile: h.noSwapFile, cpuDir: h.v1Dir(cgroup1.Cpu, path)}, nil
	case cgroupV2:
		zero := int64(0)
		res := &cgroup2.Resources{
			Memory: &cgroup2.Memory{Max: &l.memoryBytes, Swap: &zero},
			CPU:    &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)},
			Pids:   &cgroup2.Pids{Max: l.pids},
		}
		m, err := cgroup2.NewManager("/sys/fs/cgroup", path, res)
		if errors.Is(err, fs.ErrNotExist) {
			// No swap accounting on this kernel (no memory.swap.max): there
			// is then no swap to forbid either.
			res.Memory.Swap = nil
			m, err = cgroup2.NewManager("/sys/fs/cgroup", path, res)
		}
		if err != nil {
			return nil, fmt.Errorf("creating cgroup v2 %s: %w", path, err)
		}
		return &v2Cgroup{m: m}, nil
	}
	return nil, fmt.Errorf("unknown cgroup mode %q", mode)
}

// forcedChargeHeadroom is what the sandbox's memory limit keeps below
// Spec.MemoryMB for the kernel's forced charges. The kernel holds user
// memory (page faults, tmpfs) to the limit, but a kernel allocation that
// may not fail (__GFP_NOFAIL, __GFP_HIGH: while the OOM killer's victim
// exits, or the agent reads its death) is charged past it: 3 of 120 OOM
// kills in the conformance suite peaked one page above a limit of exactly
// MemoryMB. 64 pages (the kernel's MEMCG_CHARGE_BATCH) keep the peak, which
// Stats reports as the function's, at or under MemoryMB.
const forcedChargeHeadroom = 64 << 12

// memoryLimit is the memory cgroup limit, in bytes, of a sandbox whose
// function may use memoryMB (swap is never allowed: see v1Resources).
func memoryLimit(memoryMB int) int64 {
	return int64(memoryMB)<<20 - forcedChargeHeadroom
}

// v1Resources are l as cgroup v1 settings. Zero limits are left out.
func v1Resources(l limits, noSwapFile bool) *specs.LinuxResources {
	res := &specs.LinuxResources{}
	if l.memoryBytes > 0 {
		mem := &specs.LinuxMemory{Limit: &l.memoryBytes}
		if !noSwapFile {
			// memsw is memory+swap: equal to the memory limit means no swap.
			mem.Swap = &l.memoryBytes
		}
		swappiness := uint64(0)
		mem.Swappiness = &swappiness
		res.Memory = mem
	}
	if l.cpuMillis > 0 {
		quota, period := cpuMax(l.cpuMillis)
		res.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.pids > 0 {
		res.Pids = &specs.LinuxPids{Limit: &l.pids}
	}
	return res
}

// renameV1 renames a v1 cgroup in every hierarchy the jail uses. Renaming
// is how a prestarted setup stage's cgroup becomes the sandbox's: the
// stage's costly migration into a cgroup happened before Create. (cgroup v2
// cannot rename.)
func (h *hostCgroups) renameV1(from, to string) error {
	var done []interface{ Path(string) string }
	for _, s := range h.v1 {
		p, ok := s.(interface{ Path(string) string })
		if !ok {
			continue
		}
		if err := os.Rename(p.Path(from), p.Path(to)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// All or nothing: the caller still owns the cgroup at from.
			for _, p := range done {
				os.Rename(p.Path(to), p.Path(from))
			}
			return fmt.Errorf("renaming cgroup %s to %s: %w", from, to, err)
		}
		done = append(done, p)
	}
	return nil
}

// removeParentIfEmpty removes the parent cgroup the driver's cgroups were
// created under, if nothing is left in it. rmdir(2) is what makes this
// safe: the kernel refuses a cgroup with children or processes (the
// library's Delete would remove empty children).
func (h *hostCgroups) removeParentIfEmpty(parent string) {
	switch h.mode {
	case cgroupV1:
		for _, s := range h.v1Cleanup {
			if p, ok := s.(interface{ Path(string) string }); ok {
				unix.Rmdir(p.Path(parent))
			}
		}
	case cgroupV2:
		unix.Rmdir(filepath.Join("/sys/fs/cgroup", parent))
	}
}

// load opens an existing cgroup; fs.ErrNotExist when it is gone. mode is
// the handle's, normally the host's.
func (h *hostCgroups) load(mode cgroupMode, path string) (cgroup, error) {
	switch mode {
	case cgroupV1:
		if h.mode != cgroupV1 {
			return nil, fmt.Errorf("loading cgroup v1 %s: the host's cgroups are %s", path, h.mode)
		}
		cg, err := cgroup1.Load(cgroup1.StaticPath(path), cgroup1.WithHierarchy(h.cleanupHierarchy()))
		if err != nil {
			if errors.Is(err, cgroup1.ErrCgroupDeleted) {
				return nil, fs.ErrNotExist
			}
			return nil, fmt.Errorf("loading cgroup v1 %s: %w", path, err)
		}
		return &v1Cgroup{cg: cg, noSwapFile: h.noSwapFile, cpuDir: h.v1Dir(cgroup1.Cpu, path)}, nil
	case cgroupV2:
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", path)); err != nil {
			return nil, fs.ErrNotExist
		}
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("loading cgroup v2 %s: %w", path, err)
		}
		return &v2Cgroup{m: m}, nil
	}
	return nil, fmt.Errorf("unknown cgroup mode %q", mode)
}

// removeCgroup kills what is left in cg and deletes it, retrying while the
// kernel still counts exiting processes.
func removeCgroup(ctx context.Context, cg cgroup) error {
	var err error
	for attempt := 0; ; attempt++ {
		if attempt%10 == 0 {
			if kerr := cg.kill(); kerr != nil {
				err = kerr
			}
		}
		if err = cg.remove(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("removing cgroup: %w (%w)", err, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type v1Cgroup struct {
	cg         cgroup1.Cgroup
	noSwapFile bool   // see hostCgroups
	cpuDir     string // the cgroup's directory in the cpu hierarchy, if known
}

func (c *v1Cgroup) add(pid int) error { return c.cg.Add(cgroup1.Process{Pid: pid}) }

func (c *v1Cgroup) setLimits(l limits) error {
	return c.cg.Update(v1Resources(l, c.noSwapFile))
}

func (c *v1Cgroup) limitCPU(millis int) error {
	quota, period := cpuMax(millis)
	if c.cpuDir == "" {
		return c.cg.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}})
	}
	// One write instead of the library's Update, which visits every
	// subsystem of the hierarchy: on a cold start (the worker applies the
	// quota after init) medians of 330–360 µs against 230–300 µs. The
	// period is cpuPeriod already: the kernel's default, and what create
	// sets.
	f := filepath.Join(c.cpuDir, "cpu.cfs_quota_us")
	if err := os.WriteFile(f, strconv.AppendInt(nil, quota, 10), 0); err != nil {
		return fmt.Errorf("limiting CPU: %w", err)
	}
	return nil
}

// kill signals every process; removeCgroup repeats it until the cgroup is
// empty.
func (c *v1Cgroup) kill() error {
	pids, err := c.procs()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return err
}

func (c *v1Cgroup) remove() error {
	err := c.cg.Delete()
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil
	}
	return err
}

func (c *v1Cgroup) procs() ([]int, error) {
	ps, err := c.cg.Processes(cgroup1.Pids, true)
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) || errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	pids := make([]int, 0, len(ps))
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	return pids, nil
}

func (c *v1Cgroup) stats() (sandbox.Stats, error) {
	m, err := c.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return sandbox.Stats{}, sandbox.ErrGone
		}
		return sandbox.Stats{}, err
	}
	var st sandbox.Stats
	if m.Memory != nil && m.Memory.Usage != nil {
		st.MemoryBytes = m.Memory.Usage.Usage
		st.MaxMemoryBytes = m.Memory.Usage.Max
	}
	if m.MemoryOomControl != nil {
		st.OOMKills = m.MemoryOomControl.OomKill
	}
	if m.CPU != nil && m.CPU.Usage != nil {
		st.CPUUsage = time.Duration(m.CPU.Usage.Total)
	}
	if m.Pids != nil {
		st.PidsCurrent = m.Pids.Current
	}
	return st, nil
}

type v2Cgroup struct{ m *cgroup2.Manager }

func (c *v2Cgroup) add(pid int) error { return c.m.AddProc(uint64(pid)) }

func (c *v2Cgroup) setLimits(limits) error {
	return fmt.Errorf("setting limits after creation: %w", sandbox.ErrUnsupported)
}

func (c *v2Cgroup) limitCPU(millis int) error {
	quota, period := cpuMax(millis)
	return c.m.Update(&cgroup2.Resources{CPU: &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}})
}
func (c *v2Cgroup) kill() error {
	err := c.m.Kill()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (c *v2Cgroup) remove() error {
	err := c.m.Delete()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (c *v2Cgroup) procs() ([]int, error) {
	ps, err := c.m.Procs(true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	pids := make([]int, 0, len(ps))
	for _, p := range ps {
		pids = append(pids, int(p))
	}
	return pids, nil
}

func (c *v2Cgroup) stats() (sandbox.Stats, error) {
	m, err := c.m.Stat()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return sandbox.Stats{}, sandbox.ErrGone
		}
		return sandbox.Stats{}, err
	}
	var st sandbox.Stats
	if m.Memory != nil {
		st.MemoryBytes = m.Memory.Usage
		st.MaxMemoryBytes = m.Memory.MaxUsage
	}
	if m.MemoryEvents != nil {
		st.OOMKills = m.MemoryEvents.OomKill
	}
	if m.CPU != nil {
		st.CPUUsage = time.Duration(m.CPU.UsageUsec) * time.Microsecond
	}
	if m.Pids != nil {
		st.PidsCurrent = m.Pids.Current
	}
	return st, nil
}
