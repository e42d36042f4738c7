package assignment

import (
	"sort"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/placement"
	"github.com/ignis-run/ignis/internal/placement/fleet"
)

// capacity is the process-wide view of the workers used for placement:
// capacity and health from the fleet registry, allocation from assignment's
// own bookkeeping (exact on a single node, where this process places every
// sandbox; with several partition leaders, allocation must come from the
// workers' heartbeats plus local pending reservations — a later issue).
type capacity struct {
	cfg placement.Config

	mu sync.Mutex
	// workers by ID. Guarded by mu.
	workers map[string]*workerState
	// ids is the sorted list of worker IDs, for deterministic placement.
	// Guarded by mu.
	ids []string
	// buf is reused by place to build placement's input. Guarded by mu.
	buf []placement.Worker
}

func newCapacity(cfg placement.Config) *capacity {
	return &capacity{cfg: cfg, workers: map[string]*workerState{}}
}

// workerLocked returns the state of worker id, creating an unregistered one.
// Preconditions: c.mu is held.
func (c *capacity) workerLocked(id string) *workerState {
	w := c.workers[id]
	if w == nil {
		w = &workerState{id: id, fns: map[string]int{}}
		c.workers[id] = w
		c.ids = append(c.ids, id)
		sort.Strings(c.ids)
	}
	return w
}

// set applies a registration. It returns the worker's state when it just
// started draining (its idle sandboxes are to be retired), else nil.
func (c *capacity) set(reg fleet.Registration) *workerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workerLocked(reg.ID)
	started := reg.Draining && !w.draining
	w.memMB, w.cpuMillis, w.draining = reg.MemoryMB, reg.CPUMillis, reg.Draining
	w.heartbeat, w.registered = reg.Heartbeat, true
	w.leaving.Store(reg.Draining)
	w.gone.Store(false)
	if started {
		return w
	}
	return nil
}

// remove marks a worker gone and returns its state, nil if unknown.
func (c *capacity) remove(id string) *workerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workers[id]
	if w != nil {
		w.registered = false
		w.leaving.Store(true)
		w.gone.Store(true)
	}
	return w
}

func (c *capacity) registered() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range c.ids {
		if c.workers[id].registered {
			out = append(out, id)
		}
	}
	return out
}

// place picks a worker for req and reserves req.MemoryMB on it, atomically
// with respect to other placements.
func (c *capacity) place(req placement.Request, now time.Time) (*workerState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = c.buf[:0]
	for _, id := range c.ids {
		w := c.workers[id]
		st := placement.Ready
		switch {
		case !w.registered:
			st = placement.Unhealthy
		case w.draining:
			st = placement.Draining
		}
		c.buf = append(c.buf, placement.Worker{
			ID: w.id, MemoryMB: w.memMB, CPUMillis: w.cpuMillis,
			AllocatedMB: w.allocMB, Sandboxes: w.sandboxes, InFlight: int(w.inFlight.Load()),
			SameFunction: w.fns[req.Function], State: st, LastHeartbeat: w.heartbeat,
		})
	}
	i, err := placement.Pick(&c.cfg, c.buf, req, now)
	if err != nil {
		return nil, err
	}
	w := c.workers[c.buf[i].ID]
	c.reserveLocked(w, req.MemoryMB, req.Function)
	return w, nil
}

// Preconditions: c.mu is held.
func (c *capacity) reserveLocked(w *workerState, memMB int, fn string) {
	w.allocMB += memMB
	w.sandboxes++
	w.fns[fn]++
}

// adopt accounts a sandbox found at recovery.
func (c *capacity) adopt(workerID string, memMB int, fn string) *workerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workerLocked(workerID)
	c.reserveLocked(w, memMB, fn)
	return w
}

// free returns a destroyed sandbox's reservation.
func (c *capacity) free(w *workerState, memMB int, fn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.allocMB -= memMB
	w.sandboxes--
	if w.fns[fn]--; w.fns[fn] <= 0 {
		delete(w.fns, fn)
	}
}

// WorkerUsage is assignment's accounting of one worker, from Service.Workers.
type WorkerUsage struct {
	ID          string
	Registered  bool
	AllocatedMB int
	Sandboxes   int
	InFlight    int
}

func (c *capacity) usage() []WorkerUsage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]WorkerUsage, 0, len(c.ids))
	for _, id := range c.ids {
		w := c.workers[id]
		out = append(out, WorkerUsage{ID: id, Registered: w.registered, AllocatedMB: w.allocMB, Sandboxes: w.sandboxes, InFlight: int(w.inFlight.Load())})
	}
	return out
}
