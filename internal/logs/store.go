package logs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/errdefs"
)

// Limits of one event and one batch.
const (
	// MaxEventBytes is the longest message kept; longer messages are
	// truncated, as Lambda truncates log lines (CloudWatch's event limit).
	MaxEventBytes = 256 << 10
	// maxBatchEvents caps the events of one JetStream message
	// (PutLogEvents' own limit); Append splits larger slices.
	maxBatchEvents = 10000
	// maxBatchBytes caps the encoded size of one JetStream message.
	maxBatchBytes = 1 << 20
)

// Default configuration values.
const (
	DefaultStreamName        = "IGNIS_LOGS"
	DefaultMetaBucket        = "IGNIS_LOGS_META"
	DefaultMaxAge            = 7 * 24 * time.Hour
	DefaultMaxBytes          = 1 << 30
	DefaultMaxBufferedBytes  = 32 << 20
	DefaultMaxPending        = 4096
	DefaultMetaFlushInterval = time.Second
	DefaultMaxEventSkew      = 2 * time.Hour
	DefaultLinger            = 20 * time.Millisecond
)

// Config configures a Store.
type Config struct {
	// Stream and MetaBucket name the JetStream stream holding events and
	// the KV bucket holding group/stream metadata.
	Stream, MetaBucket string
	// SubjectPrefix is the first subject token ("logs"); events of group G,
	// stream S go to "<prefix>.<token(G)>.<token(S)>".
	SubjectPrefix string
	// MaxAge drops events (and idle streams' metadata) older than this.
	MaxAge time.Duration
	// MaxBytes caps the stream's size; the oldest events go first. -1: none.
	MaxBytes int64
	// Replicas is the stream and bucket replication factor (1 single node).
	Replicas int
	// MaxBufferedBytes and MaxPending bound the events published but not yet
	// acknowledged by JetStream; Append blocks (honouring ctx) when full.
	MaxBufferedBytes int64
	MaxPending       int
	// MetaFlushInterval is how often stream metadata (last event time,
	// stored bytes) is written behind to the KV bucket.
	MetaFlushInterval time.Duration
	// MaxEventSkew is how far an event's timestamp may lie from its
	// ingestion time, either way. Reads use it to start scanning at
	// startTime-MaxEventSkew instead of the beginning of the stream.
	MaxEventSkew time.Duration
	// Linger is how long appended events may wait for later appends to the
	// same stream, so that one JetStream message carries them all; 0
	// publishes each Append at once. Flush (and Close) publish at once.
	Linger time.Duration
}

// DefaultConfig returns the defaults: 7 days, 1 GiB, single replica.
func DefaultConfig() Config {
	return Config{
		Stream:            DefaultStreamName,
		MetaBucket:        DefaultMetaBucket,
		SubjectPrefix:     "logs",
		MaxAge:            DefaultMaxAge,
		MaxBytes:          DefaultMaxBytes,
		Replicas:          1,
		MaxBufferedBytes:  DefaultMaxBufferedBytes,
		MaxPending:        DefaultMaxPending,
		MetaFlushInterval: DefaultMetaFlushInterval,
		MaxEventSkew:      DefaultMaxEventSkew,
		Linger:            DefaultLinger,
	}
}

// Validate reports a configuration error of class errdefs.ErrInvalidArgument.
func (c Config) Validate() error {
	switch {
	case c.Stream == "" || c.MetaBucket == "" || c.SubjectPrefix == "":
		return fmt.Errorf("logs config: Stream, MetaBucket and SubjectPrefix are required: %w", errdefs.ErrInvalidArgument)
	case c.MaxAge <= 0:
		return fmt.Errorf("logs config: MaxAge must be positive: %w", errdefs.ErrInvalidArgument)
	case c.MaxBytes == 0 || c.MaxBytes < -1:
		return fmt.Errorf("logs config: MaxBytes must be positive or -1: %w", errdefs.ErrInvalidArgument)
	case c.Replicas < 1:
		return fmt.Errorf("logs config: Replicas must be >= 1: %w", errdefs.ErrInvalidArgument)
	case c.MaxBufferedBytes < maxBatchBytes || c.MaxPending < 1:
		return fmt.Errorf("logs config: MaxBufferedBytes must be >= %d and MaxPending >= 1: %w", maxBatchBytes, errdefs.ErrInvalidArgument)
	case c.MetaFlushInterval <= 0 || c.MaxEventSkew <= 0:
		return fmt.Errorf("logs config: MetaFlushInterval and MaxEventSkew must be positive: %w", errdefs.ErrInvalidArgument)
	case c.Linger < 0:
		return fmt.Errorf("logs config: Linger must not be negative: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// Event is one log line as the writer produced it.
type Event struct {
	Timestamp time.Time
	Message   string
}

// StoredEvent is an event as read back, with where and when it was stored.
type StoredEvent struct {
	Event
	// Stream is the log stream the event belongs to.
	Stream string
	// Ingestion is when JetStream stored the event.
	Ingestion time.Time
	// Pos locates the event; Pos.String() is its event ID.
	Pos Position
}

// Store keeps log events in a JetStream stream and group/stream metadata
// in a KV bucket. It is safe for concurrent use.
//
// Lifecycle: Open → Append/read … → Close. Append publishes asynchronously;
// Flush waits for everything appended so far to be stored; Close flushes
// and stops the background goroutines (it does not close the NATS
// connection, which belongs to the caller).
type Store struct {
	cfg    Config
	log    *slog.Logger
	clk    clock.Clock
	js     jetstream.JetStream // private context: its async-publish callbacks are ours
	stream jetstream.Stream
	kv     jetstream.KeyValue

	budget budget

	// enqueued counts batches handed to PublishAsync; done counts those
	// acknowledged or failed. Flush waits for done to catch up.
	enqueued atomic.Uint64
	done     atomic.Uint64
	failed   atomic.Uint64
	// retries counts the publishes of a batch the stream did not answer
	// (its leader was being elected), by message. Guarded by retryMu.
	retryMu sync.Mutex
	retries map[*nats.Msg]retry
	// idPrefix makes the message ids of this store's batches unique.
	idPrefix string
	doneMu   sync.Mutex
	doneCh   chan struct{} // guarded by doneMu; closed and replaced on each completion

	mu      sync.Mutex
	streams map[streamKey]*streamState // guarded by mu
	closed  bool                       // guarded by mu

	// Appended events wait in batches, at most one open (being filled) per
	// subject, until the linger timer, a full batch or Flush publishes
	// them. Batches are published in the order they were started and
	// pubMu serialises publishers, so a stream's events are stored in
	// append order, and different streams' in the order they began.
	pubMu   sync.Mutex
	pendMu  sync.Mutex
	open    map[string]*batch // guarded by pendMu: subject → open batch
	queue   []*batch          // guarded by pendMu: unpublished, oldest first
	full    bool              // guarded by pendMu: a queued batch is full
	lingers *time.Timer       // guarded by pendMu; armed while batches wait
	armed   bool              // guarded by pendMu

	flushMu sync.Mutex           // serialises metadata flushes
	groups  map[string]time.Time // guarded by flushMu: group → last KV refresh

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open creates or updates the stream and bucket (applying cfg's retention)
// and starts the metadata flusher. nc is the caller's connection; logger
// and clk may be nil (discard, wall clock).
func Open(ctx context.Context, nc *nats.Conn, cfg Config, logger *slog.Logger, clk clock.Clock) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	s := &Store{
		cfg:      cfg,
		log:      logger.With("component", "logs"),
		clk:      clk,
		budget:   newBudget(cfg.MaxBufferedBytes, cfg.MaxPending),
		doneCh:   make(chan struct{}),
		streams:  make(map[streamKey]*streamState),
		open:     make(map[string]*batch),
		groups:   make(map[string]time.Time),
		stop:     make(chan struct{}),
		retries:  make(map[*nats.Msg]retry),
		idPrefix: strconv.FormatUint(rand.Uint64(), 36) + "-",
	}
	// The linger is real time whatever clk says: it paces publishing, it
	// is not an event time.
	s.lingers = time.AfterFunc(time.Hour, s.publishLingering)
	s.lingers.Stop()
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending+1),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			s.forgetRetries(m)
			s.complete(m.Data, nil)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrAsyncPublishTimeout)) && s.retryLater(m) {
				return
			}
			s.complete(m.Data, fmt.Errorf("storing log batch on %s: %w", m.Subject, err))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("opening logs jetstream context: %w", err)
	}
	s.js = js
	// Nodes of a cluster starting at once create these together.
	create := embednats.ForCluster(js)
	s.stream, err = create.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "Ignis function logs",
		Subjects:    []string{cfg.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Replicas:    cfg.Replicas,
		Duplicates:  min(time.Minute, cfg.MaxAge),
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating log stream %s: %w", cfg.Stream, err)
	}
	s.kv, err = create.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.MetaBucket,
		Description: "Ignis log groups and streams",
		History:     1,
		TTL:         cfg.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("creating log metadata bucket %s: %w", cfg.MetaBucket, err)
	}
	s.wg.Add(1)
	go s.flushLoop()
	return s, nil
}

// Config returns the configuration the store was opened with.
func (s *Store) Config() Config { return s.cfg }

// Append stores events of one log stream, creating the group and stream on
// first use. It returns once the events are queued for JetStream, without
// waiting for them to reach disk: they are published within Linger, and a
// later Flush waits until they are stored. It blocks only while more than
// MaxBufferedBytes are appended but not stored, until ctx is done. Events
// keep their order; messages longer than MaxEventBytes are truncated.
// Storage failures after return are logged and counted (Failed), not
// returned.
//
// Errors: errdefs.ErrInvalidArgument for bad names or timestamps further
// than MaxEventSkew from now; errdefs.ErrUnavailable after Close; ctx's
// error while waiting for buffer space.
func (s *Store) Append(ctx context.Context, group, stream string, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	st, err := s.state(group, stream)
	if err != nil {
		return err
	}
	now := s.clk.Now()
	lo, hi := now.Add(-s.cfg.MaxEventSkew).UnixMilli(), now.Add(s.cfg.MaxEventSkew).UnixMilli()
	first, last := int64(1<<63-1), int64(-1<<63)
	size := 0
	for _, e := range events {
		ms := e.Timestamp.UnixMilli()
		if ms < lo || ms > hi {
			return fmt.Errorf("appending to %s %s: event timestamp %s outside ±%s of now: %w",
				group, stream, e.Timestamp.UTC().Format(time.RFC3339), s.cfg.MaxEventSkew, errdefs.ErrInvalidArgument)
		}
		first, last = min(first, ms), max(last, ms)
		size += encodedSize(e)
	}
	// The budget is taken for an upper bound of the encoded size and
	// settled below, so that memory stays bounded before encoding.
	if err := s.budget.acquire(ctx, size); err != nil {
		return fmt.Errorf("appending to %s %s: waiting for log buffer: %w", group, stream, err)
	}
	s.pendMu.Lock()
	stored := 0
	for _, e := range events {
		b := s.open[st.subject]
		if b != nil && (b.n == maxBatchEvents || len(b.body)+encodedSize(e) > maxBatchBytes) {
			s.full = true
			b = nil
		}
		if b == nil {
			b = &batch{subject: st.subject}
			s.open[st.subject] = b
			s.queue = append(s.queue, b)
		}
		before := len(b.body)
		b.body = appendEvent(b.body, e)
		b.n++
		stored += len(b.body) - before
	}
	publishNow := s.cfg.Linger == 0 || s.full
	if !publishNow && !s.armed {
		s.armed = true
		s.lingers.Reset(s.cfg.Linger)
	}
	s.pendMu.Unlock()
	s.budget.settle(size, stored)

	s.mu.Lock()
	// The flusher may have forgotten an idle state meanwhile; note on the live one.
	k := streamKey{group, stream}
	if cur := s.streams[k]; cur != nil {
		st = cur
	} else {
		s.streams[k] = st
	}
	st.note(first, last, now.UnixMilli(), int64(stored))
	s.mu.Unlock()
	if publishNow {
		s.publishPending()
	}
	return nil
}

// batch is the encoded events of one future JetStream message.
type batch struct {
	subject string
	body    []byte // appendEvent encodings, without the batch header
	n       int
}

// publishLingering is the linger timer's callback.
func (s *Store) publishLingering() { s.publishPending() }

// publishPending hands every waiting batch to JetStream. Publish failures
// are counted as lost batches, as failed acks are.
func (s *Store) publishPending() {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.pendMu.Lock()
	batches := s.queue
	s.queue = nil
	clear(s.open)
	s.full, s.armed = false, false
	s.lingers.Stop()
	s.pendMu.Unlock()
	for _, b := range batches {
		data := appendBatchHeader(make([]byte, 0, len(b.body)+1+binary.MaxVarintLen64), b.n)
		data = append(data, b.body...)
		// Waits (bounded by the publish timeout) only while MaxPending
		// messages are unacknowledged.
		s.budget.acquireMsg()
		s.enqueued.Add(1)
		// The id lets the stream drop a second copy of a batch published
		// again after an ack that never came (retryLater).
		id := s.idPrefix + strconv.FormatUint(s.enqueued.Load(), 36)
		msg := &nats.Msg{Subject: b.subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
		if _, err := s.js.PublishMsgAsync(msg); err != nil {
			s.complete(data, fmt.Errorf("publishing log batch on %s: %w: %w", b.subject, errdefs.ErrUnavailable, err))
		}
	}
}

// Publishing again a batch the stream did not answer or acknowledge: in a
// cluster, the few seconds the stream's new leader takes to be elected.
// Each batch carries a message id, so a copy that was stored after all is
// dropped by the stream's duplicate window (a minute: the publish timeout
// is 30 s). The batch then lands after batches appended later.
const (
	retryDelay = 250 * time.Millisecond
	// retryWindow is how long after its first publish a batch is
	// published again: well inside the stream's duplicate window, which
	// must catch a copy stored after all.
	retryWindow = 45 * time.Second
)

// retry is the state of a batch being published again.
type retry struct {
	n     int
	first time.Time
}

// retryLater publishes m again after retryDelay, unless it was first
// published retryWindow ago or the store is closing (then it reports
// false: the batch is lost).
func (s *Store) retryLater(m *nats.Msg) bool {
	s.retryMu.Lock()
	r, ok := s.retries[m]
	if !ok {
		// Its first publish was an async timeout ago at most.
		r.first = time.Now().Add(-30 * time.Second)
	}
	closing := false
	select {
	case <-s.stop:
		closing = true
	default:
	}
	if closing || time.Since(r.first) >= retryWindow {
		delete(s.retries, m)
		s.retryMu.Unlock()
		return false
	}
	r.n++
	s.retries[m] = r
	s.retryMu.Unlock()
	time.AfterFunc(retryDelay, func() {
		if _, err := s.js.PublishMsgAsync(m); err != nil {
			s.forgetRetries(m)
			s.complete(m.Data, fmt.Errorf("publishing log batch on %s again: %w: %w", m.Subject, errdefs.ErrUnavailable, err))
		}
	})
	return true
}

func (s *Store) forgetRetries(m *nats.Msg) {
	s.retryMu.Lock()
	delete(s.retries, m)
	s.retryMu.Unlock()
}

// complete records the outcome of one async publish of a batch.
func (s *Store) complete(data []byte, err error) {
	if err != nil {
		s.failed.Add(1)
		s.log.Error("log batch lost", "err", err)
	}
	s.budget.release(len(data) - batchHeaderLen(data))
	s.done.Add(1)
	s.doneMu.Lock()
	close(s.doneCh)
	s.doneCh = make(chan struct{})
	s.doneMu.Unlock()
}

// Failed reports how many appended batches JetStream failed to store.
func (s *Store) Failed() uint64 { return s.failed.Load() }

// Flush publishes what lingers and waits until every event appended before
// the call is stored, then writes pending metadata to the KV bucket. It
// honours ctx.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.settle(ctx); err != nil {
		return fmt.Errorf("flushing logs: %w", err)
	}
	return s.flushMeta(ctx)
}

// settle publishes what lingers and waits until every event appended
// before the call is stored (or failed to be).
func (s *Store) settle(ctx context.Context) error {
	s.publishPending()
	target := s.enqueued.Load()
	for {
		s.doneMu.Lock()
		ch := s.doneCh
		s.doneMu.Unlock()
		if s.done.Load() >= target {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close flushes (bounded by ctx) and stops the store. Append fails after.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.Flush(ctx)
	close(s.stop)
	s.wg.Wait()
	return err
}

func (s *Store) flushLoop() {
	defer s.wg.Done()
	t := s.clk.NewTimer(s.cfg.MetaFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C():
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.flushMeta(ctx); err != nil {
			s.log.Warn("writing log metadata", "err", err)
		}
		cancel()
		t.Reset(s.cfg.MetaFlushInterval)
	}
}

// budget bounds the bytes appended but not yet stored (acquire honours
// ctx) and the messages published but not yet acknowledged.
type budget struct {
	maxBytes int64
	maxMsgs  int

	mu    sync.Mutex
	bytes int64         // guarded by mu
	msgs  int           // guarded by mu
	freed chan struct{} // guarded by mu; closed and replaced on release
}

func newBudget(maxBytes int64, maxMsgs int) budget {
	return budget{maxBytes: maxBytes, maxMsgs: maxMsgs, freed: make(chan struct{})}
}

// acquire takes n bytes. One Append may always proceed when nothing is
// buffered, however large.
func (b *budget) acquire(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		if b.bytes+int64(n) <= b.maxBytes || b.bytes == 0 {
			b.bytes += int64(n)
			b.mu.Unlock()
			return nil
		}
		ch := b.freed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// settle replaces an acquired estimate by the exact size.
func (b *budget) settle(estimate, exact int) {
	b.mu.Lock()
	b.bytes += int64(exact - estimate)
	b.mu.Unlock()
}

// acquireMsg takes a message slot. It does not take a context: slots come
// back with every ack, and unacknowledged publishes fail after the
// publish timeout.
func (b *budget) acquireMsg() {
	for {
		b.mu.Lock()
		if b.msgs < b.maxMsgs {
			b.msgs++
			b.mu.Unlock()
			return
		}
		ch := b.freed
		b.mu.Unlock()
		<-ch
	}
}

// release returns one message slot and its n bytes.
func (b *budget) release(n int) {
	b.mu.Lock()
	b.msgs--
	b.bytes -= int64(n)
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

var errClosed = errors.New("log store closed")
