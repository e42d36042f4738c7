package bench

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// selfCPU is the CPU time (user+system, all threads) of this process, from
// getrusage(RUSAGE_SELF): the same counters as /proc/self/stat, in
// microseconds rather than clock ticks.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// proc is one process below this one.
type proc struct {
	pid, ppid int
	comm      string
	cpu       time.Duration // on-CPU time of all its threads (schedstat)
}

// Process roles inside and around a sandbox.
const (
	roleAgent    = "agent"    // ignis-agent, the platform's in-sandbox half
	roleFunction = "function" // the runtime and whatever it started
	roleHelper   = "helper"   // other descendants: setup stages, runsc
)

// descendants lists the processes below pid (children, grandchildren…)
// with their role: an ignis-agent, something below an agent (the function),
// or another helper.
func descendants(pid int) map[int]procRole {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	all := map[int]proc{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readStat(n); ok {
			all[n] = p
		}
	}
	out := map[int]procRole{}
	var role func(n int, depth int) (string, bool)
	role = func(n int, depth int) (string, bool) {
		p, ok := all[n]
		if !ok || depth > 64 || n <= 1 {
			return "", false
		}
		if p.ppid == pid {
			if isAgent(p.comm) {
				return roleAgent, true
			}
			return roleHelper, true
		}
		parent, ok := role(p.ppid, depth+1)
		if !ok {
			return "", false
		}
		switch {
		case isAgent(p.comm):
			return roleAgent, true
		case parent == roleAgent || parent == roleFunction:
			return roleFunction, true
		}
		return roleHelper, true
	}
	for n, p := range all {
		if r, ok := role(n, 0); ok {
			out[n] = procRole{proc: p, role: r}
		}
	}
	return out
}

type procRole struct {
	proc
	role string
}

func isAgent(comm string) bool { return strings.HasPrefix(comm, "ignis-agent") }

// readStat reads pid's parent and name from /proc/pid/stat and its CPU time
// from the schedstat of each thread (nanoseconds, unlike stat's ticks).
func readStat(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	// pid (comm) state ppid …; comm may contain spaces and parentheses.
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return proc{}, false
	}
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 2 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	p := proc{pid: pid, ppid: ppid, comm: string(b[open+1 : close])}
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	for _, t := range tasks {
		s, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if i := bytes.IndexByte(s, ' '); i > 0 {
			ns, _ := strconv.ParseInt(string(s[:i]), 10, 64)
			p.cpu += time.Duration(ns)
		}
	}
	return p, true
}

// cpuByRole sums the CPU time of procs per role.
func cpuByRole(procs map[int]procRole) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range procs {
		out[p.role] += p.cpu
	}
	return out
}

// cpuDelta is after−before per role, counting processes that appeared in
// between from zero (processes that vanished are lost: their time went to
// their parent's reaped-children counters).
func cpuDelta(before, after map[int]procRole) map[string]time.Duration {
	out := map[string]time.Duration{}
	for pid, a := range after {
		d := a.cpu
		if b, ok := before[pid]; ok && b.comm == a.comm {
			d -= b.cpu
		}
		if d > 0 {
			out[a.role] += d
		}
	}
	return out
}

// pss is a process's proportional set size in bytes (shared pages divided
// among their users), from /proc/pid/smaps_rollup; 0 if unreadable.
func pss(pid int) uint64 {
	return procKB("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", "Pss:")
}

// selfRSS is this process's resident set size in bytes.
func selfRSS() uint64 { return procKB("/proc/self/status", "VmRSS:") }

// memAvailable is the kernel's estimate of memory available for new work.
func memAvailable() uint64 { return procKB("/proc/meminfo", "MemAvailable:") }

// procKB reads the "key N kB" line of a /proc file, in bytes.
func procKB(path, key string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}
