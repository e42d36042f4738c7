package gvisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Memory and process limits under gVisor.
//
// The host cgroup holds the Sentry and the gofer as well as the function:
// all application memory (anonymous pages, the Sentry's page cache of
// files, tmpfs) lives in one memfd of the Sentry, "runsc-memory", next to
// the Sentry's own heap, its stacks, the ptrace stubs' page tables and the
// gofer. This runsc has no in-Sentry enforcement (its memory cgroup only
// accounts; no --total-memory), so the only hard boundary is the host
// cgroup's, and it is the one used:
//
//   - processes: RLIMIT_NPROC in the OCI process spec, which the Sentry
//     enforces on clone/fork (EAGAIN), counted over the sandbox; the host
//     cgroup gets a safety pids limit (hostPids).
//   - memory: while the Sentry boots the host cgroup has a safety limit
//     (hostMemory). On the agent's first message, before Init, the
//     sandbox's own footprint is measured, R = usage - memfd - file cache,
//     and the limit becomes Spec.MemoryMB + R (arm). From then on the
//     kernel refuses the sandbox more than that, whatever the speed at
//     which the function allocates. Hitting the limit kills the whole
//     sandbox, as Lambda replaces an environment that ran out of memory:
//     on cgroup v1 the kernel's OOM event (an eventfd on
//     memory.oom_control) wakes onOOM, which SIGKILLs every process in
//     the cgroup; on v2 memory.oom.group makes the kernel do that itself.
//     The driver's ExitErr then wraps ErrOutOfMemory and Stats.OOMKills
//     counts the kill; the worker answers Runtime.OutOfMemory and the
//     next invoke cold-starts.
//
// Why the whole sandbox: the kernel's OOM killer picks the process with
// the most resident memory, often a ptrace stub (the pages the function
// touched), not the Sentry, and killing a stub frees nothing (the memfd
// holds the pages). Killing only the runtime inside, as the previous 20 ms
// poll of the memfd did, cannot be hard: the function outran the poll by
// up to 30% (a 128 MB function reached 167 MB).
//
// What the function gets: memfd <= MemoryMB + R - R(t), where R(t) is the
// footprint at time t. R(t) grows with the function (page tables, the
// Sentry's bookkeeping), which leaves the function slightly less than
// MemoryMB (about 1%: a 128 MB function is killed near 127 MB). R(t) could
// shrink only if the Sentry handed heap back to the host: memWatch
// re-measures it every footprintPoll and lowers the limit (never raises
// it) when it did, so a shrink is the function's for at most that long.
// What R leaves out, to err on the function's side of less: file cache,
// which the kernel reclaims before it declares an OOM, and the kernel's
// per-CPU charge stocks (at most 64 pages a CPU), which it drains then.
//
// Stats reports the memfd's size as the function's memory (sampled every
// memPoll, and once more when the limit is hit), not the cgroup's usage,
// which includes the Sentry.

const (
	// memPoll is how often memWatch samples the function's memory for
	// Stats: a single fstat.
	memPoll = 20 * time.Millisecond
	// footprintPoll is how often, in memPolls, memWatch re-measures the
	// sandbox's own footprint (two small cgroup files).
	footprintPoll = 10
	// sentryMemMB is what the host cgroup allows beyond the function's
	// memory and /tmp while the Sentry boots, before arm.
	sentryMemMB = 256
)

// hostMemory is the host cgroup's memory limit in bytes, until arm, for a
// sandbox whose function may use memoryMB and whose /tmp (in Sentry memory)
// holds tmpMB.
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

// memWatch holds the function's memory limit to the host cgroup (see
// above) and keeps the function's own readings (memory, peak, OOM kills,
// processes) for Stats.
type memWatch struct {
	s      *Sandbox
	limit  uint64 // the function's memory, Spec.MemoryMB
	safety int64  // the host cgroup's limit before arm (hostMemory)
	// stopped is closed when run has returned and closed the Sentry's
	// memory file (which, held open, would keep its memory alive).
	stopped chan struct{}

	mu sync.Mutex
	f  *os.File // guarded by mu; the Sentry's memory file, nil until found
	// footprint is the sandbox's own memory (R above) the host limit
	// allows beyond limit; 0 until arm.
	footprint uint64 // guarded by mu
	cur       uint64 // guarded by mu
	peak      uint64 // guarded by mu
	kills     uint64 // guarded by mu
	// In-sandbox processes and threads, from the last reading.
	pids   uint64 // guarded by mu
	pidsOK bool   // guarded by mu
}

func newMemWatch(s *Sandbox, memoryMB int, safety int64) *memWatch {
	return &memWatch{s: s, limit: uint64(memoryMB) << 20, safety: safety, stopped: make(chan struct{})}
}

// readings returns the function's memory, peak and OOM kills; ok is false
// until the Sentry's memory file has been found.
func (w *memWatch) readings() (cur, peak, kills uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.peak, w.kills, w.f != nil
}

// oomKills returns the number of times the limit killed the sandbox.
func (w *memWatch) oomKills() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kills
}

// run samples the function's memory until done is closed, then calls
// stopOOM (the stop of the cgroup's watchOOM).
func (w *memWatch) run(done <-chan struct{}, stopOOM func()) {
	defer close(w.stopped)
	defer stopOOM()
	defer func() {
		w.mu.Lock()
		if w.f != nil {
			w.f.Close()
		}
		w.mu.Unlock()
	}()
	if !w.open(done) {
		return
	}
	t := time.NewTicker(memPoll)
	defer t.Stop()
	for i := 1; ; i++ {
		if _, err := w.sample(); err != nil {
			w.s.log.Warn("reading sandbox memory", "err", err)
			return
		}
		if i%footprintPoll == 0 {
			w.retighten()
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// sample reads the function's memory and records it.
func (w *memWatch) sample() (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	used, err := memfdSize(w.f)
	if err != nil {
		return 0, err
	}
	w.cur = used
	w.peak = max(w.peak, used)
	return used, nil
}

func memfdSize(f *os.File) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return uint64(st.Blocks) * 512, nil
}

// open finds the Sentry among the cgroup's processes and opens its memory
// file, retrying while the sandbox boots. It returns false once done is
// closed or when the file cannot be found (then Stats falls back to the
// host cgroup's readings).
func (w *memWatch) open(done <-chan struct{}) bool {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if w.found() {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	w.s.log.Warn("sentry memory file not found: the host cgroup's safety limit is the only memory limit")
	return false
}

// found reports whether the Sentry's memory file is open, looking for it
// if not.
func (w *memWatch) found() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		w.f = w.find()
	}
	return w.f != nil
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

// measureFootprint returns the sandbox's own memory: the host cgroup's
// usage less the function's memory and file cache. ok is false when the
// function's memory changed while the cgroup was read (the reading would
// then be off by what it allocated).
//
// Preconditions: w.mu held, w.f not nil.
func (w *memWatch) measureFootprint() (footprint uint64, ok bool, err error) {
	before, err := memfdSize(w.f)
	if err != nil {
		return 0, false, err
	}
	usage, file, err := w.s.cg.memory()
	if err != nil {
		return 0, false, err
	}
	after, err := memfdSize(w.f)
	if err != nil {
		return 0, false, err
	}
	if before != after {
		return 0, false, nil
	}
	// The usage includes the pages the kernel charged ahead into its
	// per-CPU stocks, which it drains (only) when the limit is hit:
	// counting them as the footprint would hand them to the function.
	stock := uint64(memcgChargeBatch * os.Getpagesize() * runtime.NumCPU())
	if usage < after+file+stock {
		return 0, true, nil
	}
	return usage - after - file - stock, true, nil
}

// memcgChargeBatch is the kernel's MEMCG_CHARGE_BATCH: the pages a memory
// cgroup charge takes at a time, the rest kept in a per-CPU stock.
const memcgChargeBatch = 64

// arm sets the host cgroup's limit to the function's memory plus the
// sandbox's own footprint, measured now. It runs on the agent's first
// message: the Sentry has booted and no function code has run yet (for a
// restored sandbox, the function is idle). On failure the safety limit
// stays and the sandbox is killed: there would be no limit to speak of.
func (w *memWatch) arm() {
	err := func() error {
		if w.s.cg == nil || !w.found() {
			return errors.New("sentry memory file not found")
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		var fp uint64
		for i := 0; ; i++ {
			var ok bool
			var err error
			if fp, ok, err = w.measureFootprint(); err != nil {
				return err
			}
			if ok {
				break
			}
			if i == 10 {
				return errors.New("memory does not settle")
			}
		}
		if err := w.s.cg.limitMemory(int64(w.limit + fp)); err != nil {
			return err
		}
		w.footprint = fp
		w.s.log.Debug("memory limit armed", "function", w.limit, "footprint", fp)
		return nil
	}()
	if err != nil {
		w.s.log.Error("arming the memory limit; killing the sandbox", "err", err)
		if w.s.cg != nil {
			w.s.cg.kill()
		}
	}
}

// retighten re-measures the sandbox's footprint and lowers the limit
// when it shrank, so that memory the Sentry handed back does not become
// the function's.
func (w *memWatch) retighten() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.footprint == 0 || w.kills > 0 {
		return // not armed, relaxed for a checkpoint, or being killed
	}
	fp, ok, err := w.measureFootprint()
	if err != nil || !ok || fp >= w.footprint {
		return
	}
	if err := w.s.cg.limitMemory(int64(w.limit + fp)); err != nil {
		// The function already holds more than it may: what it holds is
		// beyond the lowered limit.
		w.s.log.Warn("lowering the memory limit", "footprint", fp, "err", err)
		return
	}
	w.s.log.Debug("memory limit lowered", "footprint", fp, "was", w.footprint)
	w.footprint = fp
}

// relax puts the safety limit back, for work of the Sentry's own that is
// not the function's (a checkpoint), and stops retighten.
func (w *memWatch) relax() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.footprint = 0
	return w.s.cg.limitMemory(w.safety)
}

// onOOM runs when the host cgroup hit its limit: it records the
// function's memory at that moment and kills the whole sandbox.
func (w *memWatch) onOOM() {
	w.mu.Lock()
	if w.kills > 0 {
		// One limit hit signals more than once (every charge that
		// fails until the sandbox is gone); it dies once.
		w.mu.Unlock()
		return
	}
	var used uint64
	if w.f != nil {
		if n, err := memfdSize(w.f); err == nil {
			used = n
			w.cur, w.peak = n, max(w.peak, n)
		}
	}
	// Counted before the kill, so that Stats says out of memory by the
	// time the sandbox's death is seen.
	w.kills++
	w.mu.Unlock()
	// Every process the cgroup holds, until none is left: a Sentry
	// thread that did not hit the limit may be starting a stub.
	var err error
	for i := 0; i < 100; i++ {
		if err = w.s.cg.kill(); err != nil {
			break
		}
		if pids, perr := w.s.cg.procs(); perr != nil || len(pids) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.s.log.Info("out of memory: killed the sandbox", "used", used, "limit", w.limit, "err", err)
}

// tasks returns the number of processes and threads in the sandbox, or the
// last count once it has stopped.
func (w *memWatch) tasks(ctx context.Context) (uint64, bool) {
	select {
	case <-w.s.done:
	default:
		if ps, err := sentryProcesses(ctx, w.s.id, w.s.data.Root, w.s.data.NetNS); err == nil {
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
