// Package placement chooses the worker on which a new sandbox starts.
//
// It is pure logic: no IO, no goroutines, no wall clock. The caller hands Pick
// a snapshot of the workers (capacity, what is already allocated on them,
// their load, health and last heartbeat), the request and the current time,
// and gets a worker ID back. The same inputs always give the same answer, so
// the policy is tested with data-driven scripts in testdata/ (see
// placement_test.go for the format). A test (purity_test.go) fails if this
// package imports IO or reads the wall clock.
//
// Policy, in order:
//
//  1. Filter. A worker is a candidate when it is Ready (not Draining, not
//     Unhealthy), its last heartbeat is no older than Config.StaleAfter, it
//     is not in Request.Exclude, and its free memory (capacity minus
//     allocated) holds the request.
//  2. Score (lower wins), in per-mille points so that the weights compare:
//     - pack:   free memory left after placing, as a fraction of capacity.
//     Best fit: fill busy workers first, keep whole workers free for
//     large sandboxes and for scaling down.
//     - load:   in-flight invokes per CPU, relative to Config.SaturationPerCPU
//     (capped at 1000). Balances bin-packing against hot workers.
//     - spread: Config.SpreadPenalty per sandbox of the same function already
//     on the worker (capped at 1000). Small on purpose: a function's
//     sandboxes spread across workers when the packing cost is small,
//     and still pack when the alternative wastes a lot of memory.
//  3. Tie-break: fewer sandboxes, then the smaller ID. Deterministic.
//
// The worker registry (registrations and heartbeats in a JetStream KV bucket)
// lives in the subpackage fleet, which is the IO half of placement.
package placement

import (
	"fmt"
	"time"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// State is a worker's health as far as placement is concerned.
type State uint8

const (
	// Ready workers accept new sandboxes.
	Ready State = iota
	// Draining workers keep their sandboxes but accept no new ones.
	Draining
	// Unhealthy workers accept nothing.
	Unhealthy
)

func (s State) String() string {
	switch s {
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Worker is one worker as placement sees it at the moment of a Pick.
type Worker struct {
	// ID names the worker uniquely in the fleet.
	ID string
	// MemoryMB is the memory the worker offers to sandboxes.
	MemoryMB int
	// CPUMillis is the worker's CPU capacity in thousandths of a CPU.
	CPUMillis int
	// AllocatedMB is the memory already promised to sandboxes (live and
	// being created).
	AllocatedMB int
	// Sandboxes counts sandboxes on the worker (live and being created).
	Sandboxes int
	// InFlight counts invokes running on the worker now.
	InFlight int
	// SameFunction counts sandboxes of the request's function on this
	// worker. The caller fills it per request (it depends on the request).
	SameFunction int
	// State is the worker's health.
	State State
	// LastHeartbeat is when the worker last reported in.
	LastHeartbeat time.Time
}

// FreeMB is the memory not yet promised to a sandbox.
func (w *Worker) FreeMB() int { return w.MemoryMB - w.AllocatedMB }

// Request describes the sandbox to place.
type Request struct {
	// MemoryMB is the sandbox's memory (the function's MemorySize).
	MemoryMB int
	// Function identifies the function, for spread. Informational here:
	// the caller turns it into Worker.SameFunction.
	Function string
	// Exclude lists workers not to use (e.g. one that just failed to create
	// this sandbox). Short; searched linearly.
	Exclude []string
}

// Config tunes the policy. The zero value is not useful; start from
// DefaultConfig.
type Config struct {
	// StaleAfter: a worker whose last heartbeat is older is skipped.
	StaleAfter time.Duration
	// SaturationPerCPU is the number of in-flight invokes per CPU at which
	// the load score reaches its maximum (1000).
	SaturationPerCPU int
	// SpreadPenalty is the score added per sandbox of the same function
	// already on a worker.
	SpreadPenalty int
	// PackWeight, LoadWeight and SpreadWeight multiply the three scores.
	PackWeight, LoadWeight, SpreadWeight int
}

// DefaultConfig returns the production policy.
func DefaultConfig() Config {
	return Config{
		StaleAfter:       15 * time.Second,
		SaturationPerCPU: 4,
		SpreadPenalty:    100,
		PackWeight:       1,
		LoadWeight:       1,
		SpreadWeight:     1,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.StaleAfter <= 0:
		return fmt.Errorf("placement: StaleAfter must be positive: %w", errdefs.ErrInvalidArgument)
	case c.SaturationPerCPU <= 0:
		return fmt.Errorf("placement: SaturationPerCPU must be positive: %w", errdefs.ErrInvalidArgument)
	case c.SpreadPenalty < 0 || c.PackWeight < 0 || c.LoadWeight < 0 || c.SpreadWeight < 0:
		return fmt.Errorf("placement: weights must not be negative: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// ErrNoWorker is the class of NoWorkerError: no worker can take the sandbox
// now. It is an errdefs.ErrUnavailable.
var ErrNoWorker = fmt.Errorf("no worker can take the sandbox: %w", errdefs.ErrUnavailable)

// NoWorkerError explains why no worker was chosen: how many workers each
// filter removed. errors.Is(err, ErrNoWorker) and errdefs.ErrUnavailable hold.
type NoWorkerError struct {
	MemoryMB  int // requested memory
	Workers   int // workers considered
	Unhealthy int
	Draining  int
	Stale     int
	Excluded  int
	NoMemory  int
}

func (e *NoWorkerError) Error() string {
	return fmt.Sprintf("no worker with %d MB free among %d (unhealthy %d, draining %d, stale %d, excluded %d, full %d)",
		e.MemoryMB, e.Workers, e.Unhealthy, e.Draining, e.Stale, e.Excluded, e.NoMemory)
}

// Unwrap returns ErrNoWorker.
func (e *NoWorkerError) Unwrap() error { return ErrNoWorker }

// Scored is a candidate's score, returned by Score for explanations and tests.
type Scored struct {
	ID                 string
	Pack, Load, Spread int
	Total              int
	Sandboxes          int
}

// Pick returns the index in workers of the worker to use, or a
// *NoWorkerError. It does not modify workers and does not allocate on
// success.
func Pick(cfg *Config, workers []Worker, req Request, now time.Time) (int, error) {
	best := -1
	var bestScore Scored
	var why NoWorkerError
	for i := range workers {
		w := &workers[i]
		if !eligible(cfg, w, req, now, &why) {
			continue
		}
		s := score(cfg, w, req)
		if best < 0 || better(&s, &bestScore) {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		e := why // copy: only the failure path allocates
		e.MemoryMB = req.MemoryMB
		e.Workers = len(workers)
		return -1, &e
	}
	return best, nil
}

// Explain scores every eligible worker, best first. It is for logs and
// tests; it allocates.
func Explain(cfg *Config, workers []Worker, req Request, now time.Time) []Scored {
	var out []Scored
	var why NoWorkerError
	for i := range workers {
		if eligible(cfg, &workers[i], req, now, &why) {
			out = append(out, score(cfg, &workers[i], req))
		}
	}
	// insertion sort: short lists, no sort import needed for determinism.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && better(&out[j], &out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func eligible(cfg *Config, w *Worker, req Request, now time.Time, why *NoWorkerError) bool {
	switch {
	case w.State == Unhealthy:
		why.Unhealthy++
	case w.State == Draining:
		why.Draining++
	case w.State != Ready:
		why.Unhealthy++
	case now.Sub(w.LastHeartbeat) > cfg.StaleAfter:
		why.Stale++
	case excluded(req.Exclude, w.ID):
		why.Excluded++
	case w.FreeMB() < req.MemoryMB || w.MemoryMB <= 0:
		why.NoMemory++
	default:
		return true
	}
	return false
}

func excluded(list []string, id string) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

func score(cfg *Config, w *Worker, req Request) Scored {
	s := Scored{ID: w.ID, Sandboxes: w.Sandboxes}
	s.Pack = (w.FreeMB() - req.MemoryMB) * 1000 / w.MemoryMB
	if w.CPUMillis > 0 {
		s.Load = w.InFlight * 1000 * 1000 / (w.CPUMillis * cfg.SaturationPerCPU)
	} else if w.InFlight > 0 {
		s.Load = 1000
	}
	s.Load = min(s.Load, 1000)
	s.Spread = min(w.SameFunction*cfg.SpreadPenalty, 1000)
	s.Total = cfg.PackWeight*s.Pack + cfg.LoadWeight*s.Load + cfg.SpreadWeight*s.Spread
	return s
}

// better reports whether a beats b: lower total, then fewer sandboxes, then
// the smaller ID.
func better(a, b *Scored) bool {
	if a.Total != b.Total {
		return a.Total < b.Total
	}
	if a.Sandboxes != b.Sandboxes {
		return a.Sandboxes < b.Sandboxes
	}
	return a.ID < b.ID
}

var _ error = (*NoWorkerError)(nil)
