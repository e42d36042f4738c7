package gvisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Memory and process limits under gVisor.
//
// The host cgroup holds the Sentry and the gofer, not the function: the
// Sentry's own heap, its ptrace stubs and the gofer cost tens of MB, and the
// host OOM killer, should the cgroup's limit be hit, kills the whole Sentry
// (no RuntimeExit, no reusable sandbox). So the host cgroup only gets a
// safety limit (hostMemory, hostPids) and the function's limits are enforced
// inside:
//
//   - processes: RLIMIT_NPROC in the OCI process spec, which the Sentry
//     enforces on clone/fork (EAGAIN), counted over the sandbox;
//   - memory: this runsc has no in-Sentry enforcement (its memory cgroup
//     only accounts), so memWatch does it. All application memory (anonymous
//     pages, the Sentry's page cache of files, tmpfs) lives in one memfd of
//     the Sentry, "runsc-memory"; its allocated size is what the function
//     costs. memWatch samples it every memPoll and, above Spec.MemoryMB,
//     SIGKILLs every process but the agent (PID 1) through the Sentry's
//     control server (sentryctl.go), as a cgroup's OOM killer would kill
//     the runtime: the agent survives and reports the runtime killed, and
//     Stats.OOMKills counts it.

const (
	// memPoll is how often memWatch samples the function's memory: a
	// single fstat, cheap enough to run often, and at the ~200 MB/s a
	// function can fault pages in under ptrace it bounds the overshoot
	// before a kill is decided to a few MB.
	memPoll = 20 * time.Millisecond
	// sentryMemMB is what the host cgroup allows beyond the function's
	// memory and /tmp: the Sentry's own heap and stacks, the ptrace stubs'
	// page tables, the gofer, and the growth while a kill is under way.
	sentryMemMB = 256
)

// hostMemory is the host cgroup's memory limit in bytes for a sandbox whose
// function may use memoryMB and whose /tmp (in Sentry memory) holds tmpMB.
func hostMemory(memoryMB, tmpMB int) int64 {
	return int64(memoryMB+tmpMB+sentryMemMB) << 20
}

// hostPids is the host cgroup's pids limit for a function limited to pids
// processes and threads: the Sentry and gofer start with about a hundred
// threads, and under ptrace every application process has a stub process
// on the host with a few threads of its own.
func hostPids(pids int) int64 {
	return int64(4*pids + 256)
}

// memWatch enforces the function's memory limit and keeps the function's
// own readings (memory, peak, OOM kills, processes) for Stats.
type memWatch struct {
	s     *Sandbox
	limit uint64
	// stopped is closed when run has returned and closed the Sentry's
	// memory file (which, held open, would keep its memory alive).
	stopped chan struct{}

	mu      sync.Mutex
	found   bool   // guarded by mu; the Sentry's memory file is being read
	cur     uint64 // guarded by mu
	peak    uint64 // guarded by mu
	kills   uint64 // guarded by mu
	killing bool   // guarded by mu; a kill is under way
	// In-sandbox processes and threads, from the last reading.
	pids   uint64 // guarded by mu
	pidsOK bool   // guarded by mu
}

func newMemWatch(s *Sandbox, memoryMB int) *memWatch {
	return &memWatch{s: s, limit: uint64(memoryMB) << 20, stopped: make(chan struct{})}
}

// readings returns the function's memory, peak and OOM kills; ok is false
// until the Sentry's memory file has been found.
func (w *memWatch) readings() (cur, peak, kills uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.peak, w.kills, w.found
}

// run samples the function's memory until done is closed.
func (w *memWatch) run(done <-chan struct{}) {
	defer close(w.stopped)
	f := w.open(done)
	if f == nil {
		return
	}
	defer f.Close()
	t := time.NewTicker(memPoll)
	defer t.Stop()
	for {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			w.s.log.Warn("reading sandbox memory", "err", err)
			return
		}
		used := uint64(st.Blocks) * 512
		w.mu.Lock()
		w.cur = used
		if used > w.peak {
			w.peak = used
		}
		kill := used > w.limit && !w.killing
		if kill {
			w.killing = true
		}
		w.mu.Unlock()
		if kill {
			go w.oomKill(used)
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// open finds the Sentry among the cgroup's processes and opens its memory
// file, retrying while the sandbox boots. It returns nil once done is
// closed or when the file cannot be found (then Stats falls back to the
// host cgroup's readings).
func (w *memWatch) open(done <-chan struct{}) *os.File {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if f := w.find(); f != nil {
			w.mu.Lock()
			w.found = true
			w.mu.Unlock()
			return f
		}
		select {
		case <-done:
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	w.s.log.Warn("sentry memory file not found: memory limit enforced by the host cgroup only")
	return nil
}

// sentryMemFile is the name (in /proc/<pid>/fd) of the Sentry's memfd
// holding all application memory.
const sentryMemFile = "/memfd:runsc-memory"

func (w *memWatch) find() *os.File {
	if w.s.cg == nil {
		return nil
	}
	pids, err := w.s.cg.procs()
	if err != nil {
		return nil
	}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if l, err := os.Readlink(p); err != nil || !strings.HasPrefix(l, sentryMemFile) {
				continue
			}
			// Our own open file of the memfd: fstat on it is the
			// cheapest reading there is.
			if f, err := os.Open(p); err == nil {
				return f
			}
		}
	}
	return nil
}

// oomKill kills every process of the sandbox but the agent, then re-arms
// once usage is back under the limit (or after a second, should what
// holds the memory not be a process, e.g. /tmp).
func (w *memWatch) oomKill(used uint64) {
	defer func() {
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			w.mu.Lock()
			below := w.cur <= w.limit
			w.mu.Unlock()
			if below {
				break
			}
			time.Sleep(memPoll)
		}
		w.mu.Lock()
		w.killing = false
		w.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		// Nothing to kill once the sandbox has stopped.
		select {
		case <-w.s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	pids, viaCLI, err := w.listPids(ctx)
	if err != nil {
		w.s.log.Warn("out of memory: listing processes", "err", err)
		return
	}
	var victims []int
	for _, p := range pids {
		if p != 1 {
			victims = append(victims, p)
		}
	}
	if len(victims) == 0 {
		return
	}
	// Counted before the kill, so that Stats says out of memory by the
	// time the agent reports the runtime's death.
	w.mu.Lock()
	w.kills++
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if viaCLI || sentryKill(ctx, w.s.id, p) != nil {
				w.s.runsc(ctx, "kill", "--pid", strconv.Itoa(p), w.s.id, "KILL")
			}
		}()
	}
	wg.Wait()
	w.s.log.Info("out of memory: killed the runtime", "used", used, "limit", w.limit, "pids", victims)
}

// listPids lists the sandbox's processes through its control server, or
// through `runsc ps` (viaCLI) when that fails.
func (w *memWatch) listPids(ctx context.Context) (pids []int, viaCLI bool, err error) {
	if ps, err := sentryProcesses(ctx, w.s.id); err == nil {
		for _, p := range ps {
			pids = append(pids, p.PID)
		}
		return pids, false, nil
	}
	out, err := w.s.runsc(ctx, "ps", "--format=json", w.s.id)
	if err != nil {
		return nil, true, err
	}
	if err := json.Unmarshal([]byte(out), &pids); err != nil {
		return nil, true, fmt.Errorf("runsc ps: %w: %q", err, out)
	}
	return pids, true, nil
}

// tasks returns the number of processes and threads in the sandbox, or the
// last count once it has stopped.
func (w *memWatch) tasks(ctx context.Context) (uint64, bool) {
	select {
	case <-w.s.done:
	default:
		if ps, err := sentryProcesses(ctx, w.s.id); err == nil {
			var n uint64
			for _, p := range ps {
				n += uint64(max(len(p.Threads), 1))
			}
			w.mu.Lock()
			w.pids, w.pidsOK = n, true
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pids, w.pidsOK
}
