package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// StreamName is the JetStream stream holding every partition's journal.
const StreamName = "IGNIS_JOURNAL"

// SubjectPrefix prefixes the per-partition subject: journal.p.<n>.
const SubjectPrefix = "journal.p."

// Subject returns the subject of partition p.
func Subject(p int) string { return SubjectPrefix + strconv.Itoa(p) }

// Config configures the stream.
type Config struct {
	// Replicas of the stream: 1 on a single node, 3 in a cluster.
	Replicas int
	// MaxAge is a safety net against unbounded growth, not the
	// compaction mechanism (Compact is): it must be far longer than the
	// checkpoint interval of the writer, or live sandboxes' entries could
	// age out.
	MaxAge time.Duration
	// MaxBytes caps the stream; appends fail (rather than silently drop
	// history) when it is full.
	MaxBytes int64
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns one replica, 7 days max age, 1 GiB.
func DefaultConfig() Config {
	return Config{Replicas: 1, MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30}
}

// Journal appends and replays entries. Safe for concurrent use; callers
// serialise appends to one partition themselves when order matters (the
// partition leader does, see assignment).
type Journal struct {
	js     jetstream.JetStream
	async  jetstream.JetStream // private: Sync waits for its publishes only
	stream jetstream.Stream
	log    *slog.Logger
}

// asyncTimeout fails an AppendAsync whose acknowledgement never comes.
const asyncTimeout = 10 * time.Second

// Open creates or updates the stream and returns a Journal over it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Journal, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "ignis assignment journal: sandbox lifecycle per partition",
		Subjects:    []string{SubjectPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Discard:     jetstream.DiscardNew,
		DenyDelete:  true, // entries go only by Compact's purge
	})
	if err != nil {
		return nil, fmt.Errorf("journal: opening stream %s: %w", StreamName, err)
	}
	// Same connection, so AppendAsync and Append stay in one order.
	async, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncTimeout(asyncTimeout))
	if err != nil {
		return nil, fmt.Errorf("journal: opening async context: %w", err)
	}
	return &Journal{js: js, async: async, stream: st, log: cfg.Logger.With("component", "journal")}, nil
}

// Append writes e to partition p and waits for JetStream's acknowledgement
// (the entry is stored). It returns the entry's stream sequence. Append is
// for the cold path only: it waits on storage. Not idempotent: a retry
// after an ambiguous failure may write the entry twice, which replay
// tolerates (every entry is a statement of state, not a delta).
func (j *Journal) Append(ctx context.Context, p int, e Entry) (uint64, error) {
	b, err := Encode(e)
	if err != nil {
		return 0, err
	}
	ack, err := j.js.Publish(ctx, Subject(p), b)
	if err != nil {
		return 0, fmt.Errorf("journal: appending %s to partition %d: %w: %w", e.Type(), p, errdefs.ErrUnavailable, err)
	}
	return ack.Sequence, nil
}

// AppendAsync writes e to partition p without waiting for JetStream to
// store it: for entries whose loss in a crash recovery already handles
// (SandboxReady: a sandbox without one is destroyed as incomplete). It is
// ordered with every append made after it through the same connection.
// done, if not nil, is called once with the outcome, from another
// goroutine.
func (j *Journal) AppendAsync(p int, e Entry, done func(seq uint64, err error)) error {
	b, err := Encode(e)
	if err != nil {
		return err
	}
	fut, err := j.async.PublishAsync(Subject(p), b)
	if err != nil {
		return fmt.Errorf("journal: appending %s to partition %d: %w: %w", e.Type(), p, errdefs.ErrUnavailable, err)
	}
	go func() {
		select {
		case ack := <-fut.Ok():
			if done != nil {
				done(ack.Sequence, nil)
			}
		case err := <-fut.Err():
			err = fmt.Errorf("journal: appending %s to partition %d: %w: %w", e.Type(), p, errdefs.ErrUnavailable, err)
			if done != nil {
				done(0, err)
			}
		}
	}()
	return nil
}

// Sync waits until every AppendAsync made before it is stored or failed.
// On a closed connection it returns at once: nothing will be stored.
func (j *Journal) Sync(ctx context.Context) error {
	if j.async.Conn().IsClosed() {
		return fmt.Errorf("journal: waiting for appends: %w: connection closed", errdefs.ErrUnavailable)
	}
	select {
	case <-j.async.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("journal: waiting for appends: %w", ctx.Err())
	}
}

// Replay calls fn with every entry of partition p in order, up to the last
// entry present when Replay started. Entries of unknown type are passed as
// *Unknown (see doc.go for the policy). It stops at fn's first error and
// returns it; an undecodable entry is an ErrFormat error.
func (j *Journal) Replay(ctx context.Context, p int, fn func(seq uint64, e Entry) error) error {
	subj := Subject(p)
	last, err := j.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: finding end of partition %d: %w", p, err)
	}
	cons, err := j.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("journal: reading partition %d: %w", p, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("journal: reading partition %d: %w", p, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("journal: reading partition %d: %w", p, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("journal: reading partition %d: %w", p, err)
		}
		seq := md.Sequence.Stream
		e, err := Decode(msg.Data())
		if err != nil {
			return fmt.Errorf("journal: partition %d seq %d: %w", p, seq, err)
		}
		if err := fn(seq, e); err != nil {
			return err
		}
		if seq >= last.Sequence {
			return nil
		}
	}
}

// Compact appends cp to partition p and purges every earlier entry of p, so
// that replay starts at cp. The caller must guarantee that cp reflects every
// entry appended to p before it (hold the partition's append order).
// Returns cp's sequence. If the purge fails the checkpoint is still written
// and replay stays correct (it restarts from the checkpoint anyway).
func (j *Journal) Compact(ctx context.Context, p int, cp *Checkpoint) (uint64, error) {
	seq, err := j.Append(ctx, p, cp)
	if err != nil {
		return 0, err
	}
	if err := j.stream.Purge(ctx, jetstream.WithPurgeSubject(Subject(p)), jetstream.WithPurgeSequence(seq)); err != nil {
		return seq, fmt.Errorf("journal: purging partition %d before %d: %w", p, seq, err)
	}
	j.log.DebugContext(ctx, "partition compacted", "partition", p, "seq", seq, "ready", len(cp.Ready), "creating", len(cp.Creating))
	return seq, nil
}

// Load replays partition p into a Table and returns it with the number of
// entries read and of unknown entries skipped (logged).
func (j *Journal) Load(ctx context.Context, p int) (t *Table, entries, unknown int, err error) {
	t = NewTable()
	err = j.Replay(ctx, p, func(seq uint64, e Entry) error {
		entries++
		if !t.Apply(e) {
			unknown++
			j.log.WarnContext(ctx, "skipping unknown journal entry", "partition", p, "seq", seq, "type", e.Type())
		}
		return nil
	})
	return t, entries, unknown, err
}
