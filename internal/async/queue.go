package async

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/registry"
)

// Defaults of Config.
const (
	DefaultMaxPollers   = 16
	DefaultAckWait      = 30 * time.Second
	DefaultScanInterval = 500 * time.Millisecond
	// consumerIdle is how long an unused per-function consumer lives.
	consumerIdle = 24 * time.Hour
)

// Config configures a Service.
type Config struct {
	// JetStream holds the queues. Required.
	JetStream jetstream.JetStream
	// Registry resolves functions, their event invoke configs and DLQs.
	// Required.
	Registry *registry.Registry
	// Invoker runs one attempt synchronously (InvocationType
	// RequestResponse), with the sync path's limits and logs. Required.
	Invoker Invoker
	// Logs, when set, is flushed before an event is acked, so the log
	// lines of an attempt are stored before the attempt counts as done
	// (a SIGKILL then loses neither the event nor the proof it ran).
	Logs interface {
		Flush(ctx context.Context) error
	}
	// Replicas of the streams; 0 means 1.
	Replicas int
	// MaxPollers bounds how many events run at once; 0 means
	// DefaultMaxPollers.
	MaxPollers int
	// Policy sets retry timing; zero fields take DefaultPolicy's.
	Policy Policy
	// AckWait is how long a delivered event stays invisible to other
	// pollers without a heartbeat (a crashed poller's events reappear after
	// it); 0 means DefaultAckWait.
	AckWait time.Duration
	// ScanInterval is how often the stream is scanned for functions with
	// queued events (events enqueued through this Service are noticed at
	// once); 0 means DefaultScanInterval.
	ScanInterval time.Duration
	Clock        clock.Clock
	Logger       *slog.Logger
}

// Invoker runs one invocation through the sync invoke path
// (invoke.Service): Invoke blocks until the result is known and honours ctx.
// Errors are errdefs classes (ErrThrottled is retried later); a function's
// own failure is a Result with FunctionError, not an error.
type Invoker interface {
	Invoke(ctx context.Context, req *invoke.Request) (*invoke.Result, error)
}

// Service is the event queue and its pollers. Enqueue, Metrics and
// ReceiveQueue are safe for concurrent use; Run is called once.
type Service struct {
	cfg    Config
	js     jetstream.JetStream
	reg    *registry.Registry
	arns   registry.ARNs
	events jetstream.Stream
	queues jetstream.Stream
	clk    clock.Clock
	log    *slog.Logger
	pol    Policy

	stats counters

	// wake is signalled when a function becomes ready or a poller ends.
	wake chan struct{}

	mu sync.Mutex
	// fns is the dispatcher's per-function state. Guarded by mu.
	fns map[string]*fnState
	// ring lists ready functions in round-robin order; next is the
	// position the next pick starts at. Guarded by mu.
	ring []string
	next int
	// inflight is the number of running pollers. Guarded by mu.
	inflight int
	// qcons caches Ignis queue consumers by queue name. Guarded by mu.
	qcons map[string]jetstream.Consumer
}

// fnState is one function's dispatch state.
type fnState struct {
	cons     jetstream.Consumer // nil until first used
	ready    bool               // in ring
	inflight int
	// notified counts Enqueue notifications, so an empty fetch that raced
	// with an enqueue does not park the function.
	notified uint64
}

// Open creates or updates the streams.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.JetStream == nil || cfg.Registry == nil || cfg.Invoker == nil {
		return nil, errors.New("async: JetStream, Registry and Invoker are required")
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxPollers <= 0 {
		cfg.MaxPollers = DefaultMaxPollers
	}
	def := DefaultPolicy()
	if cfg.Policy.RetryDelay <= 0 {
		cfg.Policy.RetryDelay = def.RetryDelay
	}
	if cfg.Policy.BackoffMin <= 0 {
		cfg.Policy.BackoffMin = def.BackoffMin
	}
	if cfg.Policy.BackoffMax <= 0 {
		cfg.Policy.BackoffMax = def.BackoffMax
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:   cfg,
		js:    cfg.JetStream,
		reg:   cfg.Registry,
		arns:  cfg.Registry.ARNs(),
		clk:   cfg.Clock,
		log:   cfg.Logger.With("component", "async"),
		pol:   cfg.Policy,
		wake:  make(chan struct{}, 1),
		fns:   make(map[string]*fnState),
		qcons: make(map[string]jetstream.Consumer),
	}
	var err error
	s.events, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        eventStream,
		Description: "Ignis asynchronous invocations, one subject per function",
		Subjects:    []string{eventSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", eventStream, err)
	}
	s.queues, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        queueStream,
		Description: "Ignis queues (async destinations and dead-letter queues), one subject per queue",
		Subjects:    []string{queueSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      14 * 24 * time.Hour, // SQS's longest retention
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", queueStream, err)
	}
	return s, nil
}

// Enqueue durably queues an Event invocation of req.Function at its
// qualifier and returns once JetStream acknowledged it. Errors:
// errdefs.ErrTooLarge for a payload over MaxEventBytes, else
// errdefs.ErrUnavailable-wrapped storage errors.
func (s *Service) Enqueue(ctx context.Context, req *invoke.Request) error {
	if len(req.Payload) > MaxEventBytes {
		return userErr(errdefs.ErrTooLarge, "Request must be smaller than %d bytes for the InvokeFunction operation", MaxEventBytes)
	}
	id := req.RequestID
	if id == "" {
		id = uuid.NewString()
	}
	name := req.Function.Primary.Name
	q := req.Function.Qualifier
	if q == "" {
		q = registry.Latest
	}
	ev := Event{RequestID: id, Function: name, Qualifier: q, TraceID: req.TraceID, Payload: req.Payload, Enqueued: s.clk.Now()}
	return s.publish(ctx, &ev)
}

// publish stores ev and tells the dispatcher.
func (s *Service) publish(ctx context.Context, ev *Event) error {
	if _, err := s.js.PublishMsg(ctx, ev.msg(), jetstream.WithMsgID(ev.msgID()), jetstream.WithExpectStream(eventStream)); err != nil {
		return fmt.Errorf("queueing event %s for %s: %w: %w", ev.RequestID, ev.Function, errdefs.ErrUnavailable, err)
	}
	s.stats.enqueued.Add(1)
	s.notify(ev.Function)
	return nil
}

// notify marks function ready.
func (s *Service) notify(function string) {
	s.mu.Lock()
	st := s.state(function)
	st.notified++
	s.markReady(function, st)
	s.mu.Unlock()
	s.signal()
}

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// state returns function's state, creating it.
//
// Preconditions: s.mu is held.
func (s *Service) state(function string) *fnState {
	st := s.fns[function]
	if st == nil {
		st = &fnState{}
		s.fns[function] = st
	}
	return st
}

// markReady puts function in the ring.
//
// Preconditions: s.mu is held.
func (s *Service) markReady(function string, st *fnState) {
	if !st.ready {
		st.ready = true
		s.ring = append(s.ring, function)
	}
}

// park takes function out of the ring.
//
// Preconditions: s.mu is held.
func (s *Service) park(function string, st *fnState) {
	if !st.ready {
		return
	}
	st.ready = false
	for i, f := range s.ring {
		if f == function {
			s.ring = append(s.ring[:i], s.ring[i+1:]...)
			if s.next > i {
				s.next--
			}
			break
		}
	}
}

// pick chooses the next function to poll, round-robin over the ready ones,
// skipping a function already holding its fair share of pollers (so one
// function's flood never takes every poller while others wait).
//
// Preconditions: s.mu is held.
func (s *Service) pick() (string, *fnState, bool) {
	if s.inflight >= s.cfg.MaxPollers || len(s.ring) == 0 {
		return "", nil, false
	}
	share := max(1, (s.cfg.MaxPollers+len(s.ring)-1)/len(s.ring))
	for i := range s.ring {
		j := (s.next + i) % len(s.ring)
		fn := s.ring[j]
		st := s.fns[fn]
		if st.inflight >= share {
			continue
		}
		s.next = (j + 1) % len(s.ring)
		return fn, st, true
	}
	return "", nil, false
}

// Run dispatches queued events to pollers until ctx is done, then waits
// for running pollers to end. Call it once.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	scan := s.clk.NewTimer(0)
	defer scan.Stop()
	for {
		s.mu.Lock()
		fn, st, ok := s.pick()
		if ok {
			s.inflight++
			st.inflight++
			seen := st.notified
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.poll(ctx, fn, seen)
			}()
			continue
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-scan.C():
			if err := s.scan(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "scanning the event queue", "err", err)
			}
			scan.Reset(s.cfg.ScanInterval)
		}
	}
}

// scan marks every function with stored events ready: events queued by
// other processes, before a restart, or scheduled retries coming due.
func (s *Service) scan(ctx context.Context) error {
	info, err := s.events.Info(ctx, jetstream.WithSubjectFilter(eventSubjects))
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", eventStream, err)
	}
	s.mu.Lock()
	for subj, n := range info.State.Subjects {
		if fn, ok := functionOfSubject(subj); ok && n > 0 {
			s.markReady(fn, s.state(fn))
		}
	}
	s.mu.Unlock()
	s.signal()
	return nil
}

// consumer returns function's durable consumer, creating it.
func (s *Service) consumer(ctx context.Context, function string, st *fnState) (jetstream.Consumer, error) {
	s.mu.Lock()
	c := st.cons
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := s.events.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:           consumerPrefix + function,
		Description:       "Ignis pollers of " + function,
		FilterSubject:     eventSubject(function),
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           s.cfg.AckWait,
		MaxDeliver:        -1,
		MaxAckPending:     1000,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, fmt.Errorf("opening consumer of %s: %w", function, err)
	}
	s.mu.Lock()
	st.cons = c
	s.mu.Unlock()
	return c, nil
}

// poll takes one event of function and handles it. seen is the
// notification count when the poll was dispatched.
func (s *Service) poll(ctx context.Context, function string, seen uint64) {
	s.mu.Lock()
	st := s.fns[function]
	s.mu.Unlock()
	got := false
	defer func() {
		s.mu.Lock()
		s.inflight--
		st.inflight--
		if !got && st.notified == seen {
			s.park(function, st)
		}
		s.mu.Unlock()
		s.signal()
	}()
	cons, err := s.consumer(ctx, function, st)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "polling events", "function", function, "err", err)
		}
		return
	}
	batch, err := cons.FetchNoWait(1)
	if err == nil {
		for m := range batch.Messages() {
			got = true
			s.handle(ctx, m)
		}
		err = batch.Error()
	}
	if err != nil && ctx.Err() == nil {
		// The consumer may have been removed for inactivity: recreate it
		// on the next poll.
		s.mu.Lock()
		st.cons = nil
		s.mu.Unlock()
		s.log.WarnContext(ctx, "fetching events", "function", function, "err", err)
	}
}

// counters are the Service's running totals since it started.
type counters struct {
	enqueued, succeeded, retries, throttled, platformErrors atomic.Uint64
	exhausted, expired, dropped, destinationErrors          atomic.Uint64
}
