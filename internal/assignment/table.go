package assignment

import (
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ignis-run/ignis/internal/journal"
)

// State is a sandbox's state in the table (see the diagram in doc.go).
type State uint8

const (
	// Initializing: the worker is creating it for the invoke that asked.
	Initializing State = iota + 1
	// Idle: warm, leasable.
	Idle
	// Busy: leased to exactly one invoke.
	Busy
	// Dead: never leased again; being destroyed (or waiting to retry).
	Dead
)

func (s State) String() string {
	switch s {
	case Initializing:
		return "initializing"
	case Idle:
		return "idle"
	case Busy:
		return "busy"
	case Dead:
		return "dead"
	}
	return "invalid"
}

// Outcome is how an invoke left its sandbox, given to Release.
type Outcome uint8

const (
	// OutcomeOK: the sandbox is healthy (the function may still have
	// returned an error); it goes back to idle.
	OutcomeOK Outcome = iota
	// OutcomeTimeout: the invoke timed out; the sandbox is replaced.
	OutcomeTimeout
	// OutcomeCrash: the runtime or agent exited.
	OutcomeCrash
	// OutcomeOutOfMemory: the memory limit killed the runtime.
	OutcomeOutOfMemory
	// OutcomeDiscard: the sandbox must go for another reason (the worker
	// could not reach it, it answered garbage).
	OutcomeDiscard
)

func (o Outcome) reason() string {
	switch o {
	case OutcomeTimeout:
		return journal.ReasonTimeout
	case OutcomeCrash:
		return journal.ReasonCrash
	case OutcomeOutOfMemory:
		return journal.ReasonOutOfMemory
	}
	return journal.ReasonEvicted
}

// sandbox is one table row. The identity fields are immutable after
// creation; the rest is guarded by the owning partition's mu.
type sandbox struct {
	id, fn, key, worker string
	memMB               int
	w                   *workerState // capacity accounting of its worker

	handle    json.RawMessage // set once at ready
	state     State
	gen       uint64    // incremented by each lease; a Lease carries it
	idleSince time.Time // when it last became idle
	retry     bool      // dead, and its last destroy failed
}

type pool struct {
	// idle is ordered by idleSince, oldest first. Leasing takes the last
	// (most recently used: warmest caches); reaping trims the front.
	idle  []*sandbox
	total int // sandboxes of this key in any state
}

// table is a partition's sandbox table: the deterministic core of
// assignment. It does no IO, reads no clock (times are passed in) and takes
// no locks: its partition holds mu around every call.
type table struct {
	maxIdle int
	pools   map[string]*pool
	byID    map[string]*sandbox
}

func newTable(maxIdle int) *table {
	return &table{maxIdle: maxIdle, pools: map[string]*pool{}, byID: map[string]*sandbox{}}
}

func (t *table) pool(key string) *pool {
	p := t.pools[key]
	if p == nil {
		p = &pool{}
		t.pools[key] = p
	}
	return p
}

// add inserts a new sandbox in state st (Initializing, or Idle at recovery).
func (t *table) add(sb *sandbox, st State, now time.Time) {
	sb.state = st
	t.byID[sb.id] = sb
	p := t.pool(sb.key)
	p.total++
	if st == Idle {
		sb.idleSince = now
		p.idle = append(p.idle, sb)
	}
}

// ready turns an initializing sandbox into a busy one leased by its creator,
// returning the lease generation. False if it died meanwhile.
func (t *table) ready(sb *sandbox, handle json.RawMessage) (uint64, bool) {
	if sb.state != Initializing {
		return 0, false
	}
	sb.handle = handle
	sb.state = Busy
	sb.gen++
	return sb.gen, true
}

// takeIdle leases the most recently used idle sandbox of key, or nil.
func (t *table) takeIdle(key string) *sandbox {
	p := t.pools[key]
	if p == nil || len(p.idle) == 0 {
		return nil
	}
	n := len(p.idle) - 1
	sb := p.idle[n]
	p.idle[n] = nil
	p.idle = p.idle[:n]
	sb.state = Busy
	sb.gen++
	return sb
}

// release ends lease gen of sb. OutcomeOK puts it back to idle (possibly
// evicting the oldest idle sandbox over the cap: returned as victim, now
// Dead); other outcomes make sb Dead. ok is false for a stale lease.
func (t *table) release(sb *sandbox, gen uint64, out Outcome, now time.Time) (victim *sandbox, ok bool) {
	if sb.state != Busy || sb.gen != gen {
		return nil, false
	}
	if out != OutcomeOK {
		sb.state = Dead
		return nil, true
	}
	p := t.pool(sb.key)
	sb.state = Idle
	sb.idleSince = now
	p.idle = append(p.idle, sb)
	if len(p.idle) > t.maxIdle {
		victim = p.idle[0]
		copy(p.idle, p.idle[1:])
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		victim.state = Dead
	}
	return victim, true
}

// kill makes sb Dead whatever its state. It reports whether it changed.
func (t *table) kill(sb *sandbox) bool {
	switch sb.state {
	case Dead:
		return false
	case Idle:
		p := t.pools[sb.key]
		if i := slices.Index(p.idle, sb); i >= 0 {
			p.idle = slices.Delete(p.idle, i, i+1)
		}
	}
	sb.state = Dead
	return true
}

// killIdleOn makes Dead every idle sandbox on worker and returns them
// appended to out, together with, when retries, its dead sandboxes whose
// destroy must be retried (their retry is taken).
func (t *table) killIdleOn(worker string, retries bool, out []*sandbox) []*sandbox {
	for _, p := range t.pools {
		kept := p.idle[:0]
		for _, sb := range p.idle {
			if sb.worker == worker {
				sb.state = Dead
				out = append(out, sb)
				continue
			}
			kept = append(kept, sb)
		}
		clear(p.idle[len(kept):])
		p.idle = kept
	}
	if retries {
		for _, sb := range t.byID {
			if sb.worker == worker && sb.state == Dead && sb.retry {
				sb.retry = false
				out = append(out, sb)
			}
		}
	}
	return out
}

// reap makes Dead every idle sandbox idle for keepAlive or longer, and
// returns them appended to out together with dead sandboxes whose destroy
// must be retried.
func (t *table) reap(now time.Time, keepAlive time.Duration, out []*sandbox) []*sandbox {
	for _, p := range t.pools {
		n := 0
		for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= keepAlive {
			p.idle[n].state = Dead
			out = append(out, p.idle[n])
			n++
		}
		if n > 0 {
			p.idle = slices.Delete(p.idle, 0, n)
		}
	}
	for _, sb := range t.byID {
		if sb.state == Dead && sb.retry {
			sb.retry = false
			out = append(out, sb)
		}
	}
	return out
}

// remove forgets a dead sandbox once it is destroyed.
func (t *table) remove(sb *sandbox) {
	if t.byID[sb.id] != sb {
		return
	}
	delete(t.byID, sb.id)
	if p := t.pools[sb.key]; p != nil {
		p.total--
		if p.total <= 0 {
			delete(t.pools, sb.key)
		}
	}
}

// checkpoint describes the table for the journal: initializing sandboxes as
// Creating, idle and busy ones as Ready, dead ones as Ready too (they still
// exist on their worker until destroyed; recovery finds out).
func (t *table) checkpoint(now time.Time) *journal.Checkpoint {
	cp := &journal.Checkpoint{At: now}
	for _, sb := range t.byID {
		if sb.state == Initializing {
			cp.Creating = append(cp.Creating, journal.SandboxCreating{SandboxID: sb.id, Function: sb.fn, Key: sb.key, WorkerID: sb.worker, MemoryMB: sb.memMB, At: now})
			continue
		}
		cp.Ready = append(cp.Ready, journal.SandboxReady{SandboxID: sb.id, Function: sb.fn, Key: sb.key, WorkerID: sb.worker, MemoryMB: sb.memMB, Handle: sb.handle, At: now})
	}
	slices.SortFunc(cp.Creating, func(a, b journal.SandboxCreating) int { return strings.Compare(a.SandboxID, b.SandboxID) })
	slices.SortFunc(cp.Ready, func(a, b journal.SandboxReady) int { return strings.Compare(a.SandboxID, b.SandboxID) })
	return cp
}

// SandboxStatus is one row of Service.Snapshot.
type SandboxStatus struct {
	ID, Function, Key, WorkerID string
	MemoryMB                    int
	State                       State
}

func (t *table) snapshot(out []SandboxStatus) []SandboxStatus {
	for _, sb := range t.byID {
		out = append(out, SandboxStatus{ID: sb.id, Function: sb.fn, Key: sb.key, WorkerID: sb.worker, MemoryMB: sb.memMB, State: sb.state})
	}
	return out
}

// workerState is assignment's view of one worker: the registration from the
// fleet plus its own accounting of what it placed there. Shared by every
// partition; guarded by capacity.mu except inFlight (atomic, hot path).
type workerState struct {
	id string
	// reg fields copied from the fleet. Guarded by capacity.mu.
	memMB, cpuMillis int
	draining         bool
	registered       bool
	heartbeat        time.Time
	// Local accounting. Guarded by capacity.mu.
	allocMB, sandboxes int
	fns                map[string]int
	// inFlight counts leases on this worker; atomic so that the warm path
	// takes no shared lock.
	inFlight atomic.Int32
	// leaving is set while the worker drains or after it left the fleet:
	// a sandbox released there is retired, not pooled. gone is set once it
	// left: its sandboxes are forgotten without asking it (it destroys them
	// itself when it finds its registration lapsed, or at its restart).
	// Atomic: read on the warm path.
	leaving, gone atomic.Bool
}
