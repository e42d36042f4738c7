package assignment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/journal"
	"github.com/ignis-run/ignis/internal/placement"
	"github.com/ignis-run/ignis/internal/placement/fleet"
)

// Config configures a Service. Start from DefaultConfig.
type Config struct {
	// Partitions is the number of partitions functions hash to. Changing
	// it re-homes functions: their old sandboxes are reconciled away.
	Partitions int
	// KeepAlive is how long an idle sandbox is kept for reuse.
	KeepAlive time.Duration
	// MaxIdlePerKey caps idle sandboxes per function configuration; the
	// oldest beyond it is destroyed when another becomes idle.
	MaxIdlePerKey int
	// ReapInterval is how often Run reaps expired idle sandboxes.
	ReapInterval time.Duration
	// AccountConcurrency is the account limit of concurrent invokes.
	AccountConcurrency int
	// CreateAttempts is how many workers a cold start tries when workers
	// answer ErrUnavailable.
	CreateAttempts int
	// DestroyTimeout bounds one background destroy (worker call + journal).
	DestroyTimeout time.Duration
	// CheckpointEvery compacts a partition's journal after this many
	// appends; CheckpointInterval compacts one with any appends at least
	// this often (keeps the stream far below its MaxAge safety net).
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// Placement is the placement policy.
	Placement placement.Config
	// Clock; nil means clock.Real.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
	// NewSandboxID returns a fresh sandbox ID; nil means "sb-" + 16 random
	// hex digits.
	NewSandboxID func() string
}

// DefaultConfig returns 16 partitions, a 10 minute keep-alive, 1000
// account concurrency.
func DefaultConfig() Config {
	return Config{
		Partitions:         16,
		KeepAlive:          10 * time.Minute,
		MaxIdlePerKey:      32,
		ReapInterval:       10 * time.Second,
		AccountConcurrency: 1000,
		CreateAttempts:     2,
		DestroyTimeout:     30 * time.Second,
		CheckpointEvery:    1024,
		CheckpointInterval: time.Hour,
		Placement:          placement.DefaultConfig(),
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Partitions <= 0:
		return fmt.Errorf("assignment: Partitions must be positive: %w", errdefs.ErrInvalidArgument)
	case c.KeepAlive <= 0 || c.ReapInterval <= 0 || c.DestroyTimeout <= 0 || c.CheckpointInterval <= 0:
		return fmt.Errorf("assignment: durations must be positive: %w", errdefs.ErrInvalidArgument)
	case c.MaxIdlePerKey < 0 || c.CheckpointEvery <= 0 || c.CreateAttempts <= 0:
		return fmt.Errorf("assignment: counts must be positive: %w", errdefs.ErrInvalidArgument)
	case c.AccountConcurrency <= 0:
		return fmt.Errorf("assignment: AccountConcurrency must be positive: %w", errdefs.ErrInvalidArgument)
	}
	return c.Placement.Validate()
}

// Request asks for a sandbox for one invoke.
type Request struct {
	// Function is the function name: concurrency limits and partitioning.
	Function string
	// Key identifies one immutable function configuration; sandboxes are
	// shared only between invokes with equal Keys. Include whatever
	// changes the sandbox: version, and for $LATEST the code digest and a
	// config revision (e.g. "name:$LATEST#<revision>").
	Key string
	// MemoryMB is the function's memory size.
	MemoryMB int
	// Spec is what the worker builds the sandbox from; passed to
	// Workers.CreateSandbox on a cold start only. A value, so the warm
	// path neither allocates nor dereferences it.
	Spec fnspec.Spec
}

// Lease is the right to send exactly one invoke to one sandbox. Return it
// with Release exactly once.
type Lease struct {
	// SandboxID and WorkerID say where to send the invoke.
	SandboxID string
	WorkerID  string
	// Handle is the driver handle the worker returned at creation.
	Handle json.RawMessage
	// Cold is true when this invoke waited for the sandbox's creation
	// (log Init Duration in REPORT).
	Cold bool

	sb  *sandbox
	p   *partition
	gen uint64
}

// partition is one shard of the sandbox table with its journal subject.
type partition struct {
	id int

	// jmu orders journal appends with the table changes they record, so a
	// checkpoint covers every entry before it. Cold path only; never held
	// on the warm path. Lock order: jmu before mu.
	jmu sync.Mutex
	// appends counts entries since the last checkpoint. Guarded by jmu.
	appends int
	// lastCheckpoint is when the last checkpoint was written. Guarded by jmu.
	lastCheckpoint time.Time

	mu sync.Mutex
	// t is the sandbox table. Guarded by mu.
	t *table
}

// Service is the assignment service: the sandbox tables of every partition
// this process leads (all of them, on a single node). Safe for concurrent
// use. See doc.go for the lifecycle and the wiring.
type Service struct {
	cfg     Config
	clock   clock.Clock
	log     *slog.Logger
	journal *journal.Journal
	workers Workers
	newID   func() string

	limits *limiter
	cap    *capacity
	parts  []*partition

	// bg tracks background destroys (Wait).
	bg sync.WaitGroup
}

// New returns a Service with empty tables. Call Recover before serving.
func New(cfg Config, j *journal.Journal, w Workers) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NewSandboxID == nil {
		cfg.NewSandboxID = randomID
	}
	s := &Service{
		cfg: cfg, clock: cfg.Clock, log: cfg.Logger.With("component", "assignment"),
		journal: j, workers: w, newID: cfg.NewSandboxID,
		limits: newLimiter(cfg.AccountConcurrency),
		cap:    newCapacity(cfg.Placement),
	}
	now := s.clock.Now()
	for i := range cfg.Partitions {
		s.parts = append(s.parts, &partition{id: i, t: newTable(cfg.MaxIdlePerKey), lastCheckpoint: now})
	}
	return s, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "sb-" + hex.EncodeToString(b[:])
}

// PartitionOf returns the partition of a function name: FNV-1a modulo n.
func PartitionOf(function string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(function); i++ {
		h ^= uint32(function[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// --- fleet and limits -------------------------------------------------------

// SetWorker adds or updates a worker from its fleet registration.
// A worker that starts draining gets no new sandboxes and no new leases:
// its idle sandboxes are destroyed now, its busy ones when released.
func (s *Service) SetWorker(reg fleet.Registration) {
	if w := s.cap.set(reg); w != nil {
		s.retireIdleOn(w.id, false, journal.ReasonEvicted)
	}
}

// RemoveWorker takes a worker out of the fleet (it deregistered or its
// heartbeat lapsed): nothing is placed there any more, and its sandboxes
// leave the table and the journal without a call to it; a busy one when
// its invoke ends (the invoke service fails calls to a vanished worker).
// The worker destroys them itself: at its drain, when it finds its
// registration lapsed, or at its restart.
func (s *Service) RemoveWorker(id string) {
	if w := s.cap.remove(id); w != nil {
		// And the dead ones whose destroy failed before it was known
		// gone: there is nothing left to retry.
		s.retireIdleOn(id, true, journal.ReasonWorkerGone)
	}
}

// retireIdleOn retires every idle sandbox on worker id (and, with
// retries, the dead ones waiting for a destroy to be retried).
func (s *Service) retireIdleOn(id string, retries bool, reason string) {
	var victims []*sandbox
	for _, p := range s.parts {
		p.mu.Lock()
		victims = p.t.killIdleOn(id, retries, victims[:0])
		p.mu.Unlock()
		for _, sb := range victims {
			s.goRetire(p, sb, reason)
		}
	}
}

// ApplyFleetEvent applies one fleet.Registry.Watch event.
func (s *Service) ApplyFleetEvent(ev fleet.Event) {
	switch ev.Op {
	case fleet.OpPut:
		s.SetWorker(ev.Worker)
	case fleet.OpDelete:
		s.RemoveWorker(ev.ID)
	}
}

// Workers reports assignment's accounting per worker.
func (s *Service) Workers() []WorkerUsage { return s.cap.usage() }

// SetAccountConcurrency changes the account limit.
func (s *Service) SetAccountConcurrency(n int) error { return s.limits.setAccount(n) }

// SetReservedConcurrency sets a function's reserved concurrency (0 throttles
// every invoke). The control plane validates the sum against the account
// limit before storing it; here an over-committed sum just empties the
// unreserved pool.
func (s *Service) SetReservedConcurrency(function string, n int) error {
	if n < 0 {
		return fmt.Errorf("reserved concurrency %d: %w", n, errdefs.ErrInvalidArgument)
	}
	s.limits.setReserved(function, n)
	return nil
}

// DeleteReservedConcurrency puts a function back in the unreserved pool.
func (s *Service) DeleteReservedConcurrency(function string) { s.limits.setReserved(function, -1) }

// UnreservedConcurrency is the account limit minus all reservations
// (GetAccountSettings' UnreservedConcurrentExecutions).
func (s *Service) UnreservedConcurrency() int { return s.limits.unreserved() }

// InFlight is the number of a function's invokes holding or awaiting a lease.
func (s *Service) InFlight(function string) int { return s.limits.usage(function) }

// --- the invoke path --------------------------------------------------------

// Acquire leases a sandbox for one invoke of req.Key.
//
// Warm path: an idle sandbox of the key is leased in memory (no IO, no
// allocation). Cold path: capacity is reserved on a worker chosen by
// placement, the creation is journaled (SandboxCreating), the worker creates
// the sandbox, and SandboxReady is journaled; the new sandbox is leased to
// this caller only.
//
// The invoke counts against concurrency from Acquire until Release,
// including while it waits for a cold start. Errors: *ThrottleError
// (errdefs.ErrThrottled), placement.ErrNoWorker (errdefs.ErrUnavailable),
// journal or worker errors, ctx's error. On error there is nothing to
// release.
func (s *Service) Acquire(ctx context.Context, req Request) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	if err := s.limits.acquire(req.Function); err != nil {
		return Lease{}, err
	}
	p := s.parts[PartitionOf(req.Function, len(s.parts))]
	p.mu.Lock()
	sb := p.t.takeIdle(req.Key)
	for sb != nil && sb.w.leaving.Load() {
		// Pooled just as its worker started leaving (retireIdleOn ran
		// before the Release that pooled it).
		p.t.kill(sb)
		s.goRetire(p, sb, journal.ReasonEvicted)
		sb = p.t.takeIdle(req.Key)
	}
	var gen uint64
	if sb != nil {
		gen = sb.gen
	}
	p.mu.Unlock()
	if sb != nil {
		sb.w.inFlight.Add(1)
		return Lease{SandboxID: sb.id, WorkerID: sb.worker, Handle: sb.handle, sb: sb, p: p, gen: gen}, nil
	}
	l, err := s.coldStart(ctx, p, req)
	if err != nil {
		s.limits.release(req.Function)
		return Lease{}, err
	}
	return l, nil
}

// Release returns a lease. OutcomeOK makes the sandbox idle again (in
// memory only); any other outcome retires it: it is destroyed on its worker
// in the background, journaled as destroyed, and its capacity freed.
// Release never blocks on IO. A second Release of the same lease returns
// ErrLeaseReleased and changes nothing.
func (s *Service) Release(l Lease, out Outcome) error {
	sb, p := l.sb, l.p
	if sb == nil || p == nil || p.id >= len(s.parts) || s.parts[p.id] != p {
		return ErrInvalidLease // zero, or from another Service (before a restart)
	}
	if out == OutcomeOK && sb.w.leaving.Load() {
		// Pooled, it would be leased again on a worker that is leaving.
		out = OutcomeDiscard
	}
	now := s.clock.Now()
	p.mu.Lock()
	victim, ok := p.t.release(sb, l.gen, out, now)
	p.mu.Unlock()
	if !ok {
		return ErrLeaseReleased
	}
	sb.w.inFlight.Add(-1)
	s.limits.release(sb.fn)
	if out != OutcomeOK {
		s.goRetire(p, sb, out.reason())
	}
	if victim != nil {
		s.goRetire(p, victim, journal.ReasonIdleCap)
	}
	return nil
}

func (s *Service) coldStart(ctx context.Context, p *partition, req Request) (Lease, error) {
	preq := placement.Request{MemoryMB: req.MemoryMB, Function: req.Function}
	var lastErr error
	for attempt := 0; attempt < s.cfg.CreateAttempts; attempt++ {
		w, err := s.cap.place(preq, s.clock.Now())
		if err != nil {
			if lastErr != nil {
				return Lease{}, fmt.Errorf("cold start of %s: %w (after: %w)", req.Key, err, lastErr)
			}
			return Lease{}, fmt.Errorf("cold start of %s: %w", req.Key, err)
		}
		sb := &sandbox{id: s.newID(), fn: req.Function, key: req.Key, worker: w.id, memMB: req.MemoryMB, w: w}
		log := s.log.With("partition", p.id, "sandbox", sb.id, "worker", sb.worker, "key", sb.key)

		// Write-ahead: the sandbox is in the journal before it can exist.
		err = s.journaled(ctx, p, &journal.SandboxCreating{SandboxID: sb.id, Function: sb.fn, Key: sb.key, WorkerID: sb.worker, MemoryMB: sb.memMB, At: s.clock.Now()},
			func(t *table) { t.add(sb, Initializing, time.Time{}) })
		if err != nil {
			s.cap.free(w, sb.memMB, sb.fn)
			return Lease{}, fmt.Errorf("cold start of %s: %w", req.Key, err)
		}

		created, err := s.workers.CreateSandbox(ctx, sb.worker, CreateRequest{SandboxID: sb.id, Function: sb.fn, Key: sb.key, MemoryMB: sb.memMB, Spec: req.Spec})
		if err != nil {
			log.WarnContext(ctx, "creating sandbox failed", "error", err)
			s.retireNow(p, sb, journal.ReasonCreateFailed)
			lastErr = fmt.Errorf("creating sandbox %s on %s: %w", sb.id, sb.worker, err)
			if errors.Is(err, errdefs.ErrUnavailable) && ctx.Err() == nil {
				preq.Exclude = append(preq.Exclude, sb.worker)
				continue
			}
			return Lease{}, lastErr
		}

		var gen uint64
		ok := false
		// Not waited for: a sandbox whose Ready entry is lost is destroyed
		// by recovery, as if the crash came before it, and the wait was a
		// JetStream round trip on every cold start.
		err = s.journaledAsync(p, &journal.SandboxReady{SandboxID: sb.id, Function: sb.fn, Key: sb.key, WorkerID: sb.worker, MemoryMB: sb.memMB, Handle: created.Handle, At: s.clock.Now()},
			func(t *table) { gen, ok = t.ready(sb, created.Handle) })
		if err != nil || !ok {
			s.retireNow(p, sb, journal.ReasonCreateFailed)
			if err == nil {
				err = fmt.Errorf("sandbox %s died while starting: %w", sb.id, errdefs.ErrUnavailable)
			}
			return Lease{}, fmt.Errorf("cold start of %s: %w", req.Key, err)
		}
		w.inFlight.Add(1)
		log.DebugContext(ctx, "sandbox ready")
		return Lease{SandboxID: sb.id, WorkerID: sb.worker, Handle: created.Handle, Cold: true, sb: sb, p: p, gen: gen}, nil
	}
	return Lease{}, fmt.Errorf("cold start of %s: %w", req.Key, lastErr)
}

// journaled appends e to p's journal and, once it is stored, applies
// change to p's table, both under jmu so the journal order is the table's.
func (s *Service) journaled(ctx context.Context, p *partition, e journal.Entry, change func(*table)) error {
	p.jmu.Lock()
	defer p.jmu.Unlock()
	if _, err := s.journal.Append(ctx, p.id, e); err != nil {
		return err
	}
	p.applyJournaled(change)
	return nil
}

// applyJournaled applies the change of an entry just appended; jmu held.
func (p *partition) applyJournaled(change func(*table)) {
	p.appends++
	p.mu.Lock()
	change(p.t)
	p.mu.Unlock()
}

// journaledAsync is journaled for entries that need not be stored before
// the change takes effect (see journal.AppendAsync); a failure to store is
// logged.
func (s *Service) journaledAsync(p *partition, e journal.Entry, change func(*table)) error {
	p.jmu.Lock()
	defer p.jmu.Unlock()
	err := s.journal.AppendAsync(p.id, e, func(_ uint64, err error) {
		if err != nil {
			s.log.Warn("journal entry not stored; recovery will treat the sandbox as incomplete", "partition", p.id, "entry", e.Type(), "error", err)
		}
	})
	if err != nil {
		return err
	}
	p.applyJournaled(change)
	return nil
}

// goRetire destroys sb in the background. sb must already be Dead.
func (s *Service) goRetire(p *partition, sb *sandbox, reason string) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.retireNow(p, sb, reason)
	}()
}

// retireNow destroys sb on its worker, journals it destroyed, forgets it and
// frees its capacity. If the worker cannot be reached, sb stays Dead (and
// keeps its capacity) and the next Reap retries.
func (s *Service) retireNow(p *partition, sb *sandbox, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DestroyTimeout)
	defer cancel()
	p.mu.Lock()
	p.t.kill(sb)
	p.mu.Unlock()
	log := s.log.With("partition", p.id, "sandbox", sb.id, "worker", sb.worker, "reason", reason)
	if sb.w.gone.Load() {
		// Nobody to ask: the worker destroys it (see RemoveWorker).
	} else if err := s.workers.DestroySandbox(ctx, sb.worker, sb.id); err != nil && !errdefs.IsNotFound(err) {
		log.WarnContext(ctx, "destroying sandbox failed; will retry", "error", err)
		p.mu.Lock()
		sb.retry = true
		p.mu.Unlock()
		return
	}
	err := s.journaled(ctx, p, &journal.SandboxDestroyed{SandboxID: sb.id, Reason: reason, At: s.clock.Now()},
		func(t *table) { t.remove(sb) })
	if err != nil {
		// The sandbox is gone from its worker; recovery will drop the
		// stale Ready entry as lost. Forget it anyway.
		log.WarnContext(ctx, "journaling destroyed sandbox failed", "error", err)
		p.mu.Lock()
		p.t.remove(sb)
		p.mu.Unlock()
	}
	s.cap.free(sb.w, sb.memMB, sb.fn)
	log.DebugContext(ctx, "sandbox destroyed")
}

// Wait blocks until every background destroy started so far has finished.
func (s *Service) Wait() {
	s.bg.Wait()
	// And for the journal entries not waited for when written, so a clean
	// stop keeps them.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DestroyTimeout)
	defer cancel()
	if err := s.journal.Sync(ctx); err != nil {
		s.log.Warn("journal entries may be lost", "error", err)
	}
}

// --- keep-alive and compaction ------------------------------------------------

// Reap destroys every sandbox idle for KeepAlive or longer, retries failed
// destroys, and compacts partition journals that are due. It returns the
// number of sandboxes it retired. Run calls it every ReapInterval; tests
// call it after advancing a fake clock.
func (s *Service) Reap(ctx context.Context) int {
	n := 0
	var victims []*sandbox
	for _, p := range s.parts {
		now := s.clock.Now()
		p.mu.Lock()
		victims = p.t.reap(now, s.cfg.KeepAlive, victims[:0])
		p.mu.Unlock()
		for _, sb := range victims {
			if ctx.Err() != nil {
				return n
			}
			s.retireNow(p, sb, journal.ReasonIdleExpired)
			n++
		}
		if err := s.maybeCheckpoint(ctx, p, false); err != nil {
			s.log.WarnContext(ctx, "checkpointing partition failed", "partition", p.id, "error", err)
		}
	}
	return n
}

// maybeCheckpoint compacts p's journal if it is due (or force).
func (s *Service) maybeCheckpoint(ctx context.Context, p *partition, force bool) error {
	p.jmu.Lock()
	defer p.jmu.Unlock()
	now := s.clock.Now()
	due := p.appends >= s.cfg.CheckpointEvery || (p.appends > 0 && now.Sub(p.lastCheckpoint) >= s.cfg.CheckpointInterval)
	if !force && !due {
		return nil
	}
	p.mu.Lock()
	cp := p.t.checkpoint(now)
	p.mu.Unlock()
	if _, err := s.journal.Compact(ctx, p.id, cp); err != nil {
		return err
	}
	p.appends, p.lastCheckpoint = 0, now
	return nil
}

// Run reaps every ReapInterval until ctx ends, then waits for background
// destroys and returns ctx's error.
func (s *Service) Run(ctx context.Context) error {
	t := s.clock.NewTimer(s.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Wait()
			return ctx.Err()
		case <-t.C():
		}
		s.Reap(ctx)
		t.Reset(s.cfg.ReapInterval)
	}
}

// Snapshot lists every sandbox in every partition (for tests, metrics and
// debugging). It allocates; do not call it on the invoke path.
func (s *Service) Snapshot() []SandboxStatus {
	var out []SandboxStatus
	for _, p := range s.parts {
		p.mu.Lock()
		out = p.t.snapshot(out)
		p.mu.Unlock()
	}
	return out
}
