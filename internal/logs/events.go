package logs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Read limits, CloudWatch's.
const (
	// MaxLimit is the most events one Events call returns.
	MaxLimit = 10000
	// maxPageBytes caps the message bytes of one forward page.
	maxPageBytes = 1 << 20
	fetchBatch   = 256
)

// Query selects events of one group. Zero fields do not filter.
type Query struct {
	Group string
	// Streams restricts to these streams; StreamPrefix to streams whose
	// name starts with it. At most one of them may be set.
	Streams      []string
	StreamPrefix string
	// Start is inclusive, End exclusive (event timestamps).
	Start, End time.Time
	Pattern    Pattern
	// Limit caps the events returned: 0 means MaxLimit.
	Limit int
	// From (inclusive) and To (exclusive) bound positions, for paging.
	From, To Position
	// Last returns the last Limit matching events (before To) instead of
	// the first ones (from From). Events are in ascending order either way.
	Last bool
}

// Page is one answer of Events.
type Page struct {
	// Events in ingestion order.
	Events []StoredEvent
	// More reports that further matching events exist: after the last
	// event (forward), or before the first one (Last). Resume a forward
	// read with From = Events[len-1].Pos.Next().
	More bool
}

// Next is the position right after p, where a following forward page starts.
func (p Position) Next() Position { return p.next() }

// Events reads a page of events in ingestion order. It includes every
// event appended through this Store before the call (it first publishes
// what lingers and waits for it to be stored); events stored while the
// call runs may or may not be included.
//
// Errors: errdefs.ErrNotFound if the group does not exist,
// errdefs.ErrInvalidArgument for a bad query.
func (s *Store) Events(ctx context.Context, q Query) (Page, error) {
	if _, err := s.Group(ctx, q.Group); err != nil {
		return Page{}, err
	}
	if len(q.Streams) > 0 && q.StreamPrefix != "" {
		return Page{}, fmt.Errorf("reading %s: streams and stream prefix are exclusive: %w", q.Group, errdefs.ErrInvalidArgument)
	}
	if err := s.settle(ctx); err != nil {
		return Page{}, fmt.Errorf("reading %s: waiting for appended events: %w", q.Group, err)
	}
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = MaxLimit
	}
	var p Page
	var size int
	err := s.scan(ctx, q, func(e StoredEvent) bool {
		if q.Last {
			if len(p.Events) == q.Limit {
				copy(p.Events, p.Events[1:])
				p.Events = p.Events[:q.Limit-1]
				p.More = true
			}
			p.Events = append(p.Events, e)
			return true
		}
		if len(p.Events) == q.Limit || len(p.Events) > 0 && size+len(e.Message) > maxPageBytes {
			p.More = true
			return false
		}
		size += len(e.Message)
		p.Events = append(p.Events, e)
		return true
	})
	return p, err
}

// scan calls fn with each matching event in ingestion order until fn
// returns false or the events present when the scan began are exhausted.
func (s *Store) scan(ctx context.Context, q Query, fn func(StoredEvent) bool) error {
	gt := encodeToken(q.Group)
	base := s.cfg.SubjectPrefix + "." + gt + "."
	cc := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	}
	if len(q.Streams) > 0 {
		for _, st := range q.Streams {
			if err := validateStream(st); err != nil {
				return err
			}
			cc.FilterSubjects = append(cc.FilterSubjects, base+encodeToken(st))
		}
	} else {
		cc.FilterSubject = base + "*"
	}
	switch {
	case !q.From.IsZero():
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, q.From.Seq
	case !q.Start.IsZero():
		t := q.Start.Add(-s.cfg.MaxEventSkew)
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	default:
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := s.stream.CreateConsumer(ctx, cc)
	if err != nil {
		return fmt.Errorf("reading %s: creating consumer: %w", q.Group, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Debug("deleting read consumer", "err", err)
		}
	}()
	pending := cons.CachedInfo().NumPending
	var startMS, endMS int64 = -1 << 63, 1<<63 - 1
	if !q.Start.IsZero() {
		startMS = q.Start.UnixMilli()
	}
	var storeLimit time.Time
	if !q.End.IsZero() {
		endMS = q.End.UnixMilli()
		storeLimit = q.End.Add(s.cfg.MaxEventSkew)
	}
	names := map[string]string{} // subject → stream name
	for pending > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", q.Group, err)
		}
		batch, err := cons.FetchNoWait(int(min(pending, fetchBatch)))
		if err != nil {
			return fmt.Errorf("reading %s: %w", q.Group, err)
		}
		got := 0
		stop := false
		for m := range batch.Messages() {
			got++
			pending--
			if stop {
				continue // drain the batch
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("reading %s: %w", q.Group, err)
			}
			seq := md.Sequence.Stream
			if !q.To.IsZero() && seq > q.To.Seq || !storeLimit.IsZero() && md.Timestamp.After(storeLimit) {
				stop = true
				continue
			}
			subj := m.Subject()
			name, ok := names[subj]
			if !ok {
				if name, err = decodeToken(strings.TrimPrefix(subj, base)); err != nil {
					s.log.Warn("skipping log batch with bad subject", "subject", subj, "err", err)
					continue
				}
				names[subj] = name
			}
			if q.StreamPrefix != "" && !strings.HasPrefix(name, q.StreamPrefix) {
				continue
			}
			if err := decodeBatch(m.Data(), func(i int, e rawEvent) bool {
				pos := Position{Seq: seq, Index: i}
				if pos.Less(q.From) {
					return true
				}
				if !q.To.IsZero() && !pos.Less(q.To) {
					stop = true
					return false
				}
				if e.ts < startMS || e.ts >= endMS {
					return true
				}
				msg := string(e.msg)
				if !q.Pattern.Match(msg) {
					return true
				}
				if !fn(StoredEvent{
					Event:     Event{Timestamp: time.UnixMilli(e.ts), Message: msg},
					Stream:    name,
					Ingestion: md.Timestamp,
					Pos:       pos,
				}) {
					stop = true
					return false
				}
				return true
			}); err != nil {
				s.log.Warn("skipping corrupt log batch", "seq", seq, "err", err)
			}
		}
		if stop {
			return nil
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("reading %s: %w", q.Group, err)
		}
		if got == 0 {
			return nil
		}
	}
	return nil
}

// Tail streams a group's events with timestamps at or after since, in
// ingestion order, on the returned channel. Without follow the channel is
// closed once the events stored at the call are delivered; with follow it
// stays open, delivering new events as they are stored, until ctx is done.
// Errors after the call returns are logged and close the channel.
func (s *Store) Tail(ctx context.Context, group string, since time.Time, follow bool) (<-chan StoredEvent, error) {
	if _, err := s.Group(ctx, group); err != nil {
		return nil, err
	}
	ch := make(chan StoredEvent, 64)
	go func() {
		defer close(ch)
		q := Query{Group: group, Start: since, Limit: 1000}
		var last Position
		for {
			p, err := s.Events(ctx, q)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("tailing logs", "group", group, "err", err)
				}
				return
			}
			for _, e := range p.Events {
				select {
				case ch <- e:
				case <-ctx.Done():
					return
				}
				last = e.Pos
			}
			if p.More {
				q.From = last.next()
				continue
			}
			if !follow {
				return
			}
			// Caught up: wait for the next batch on the group, then page again.
			if err := s.waitNew(ctx, group, q.From, last); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("tailing logs", "group", group, "err", err)
				}
				return
			}
			if !last.IsZero() {
				q.From = last.next()
			}
		}
	}()
	return ch, nil
}

// waitNew blocks until a batch of group newer than after (or than from,
// when nothing was read yet) is stored, or ctx is done.
func (s *Store) waitNew(ctx context.Context, group string, from, after Position) error {
	start := after.Seq + 1
	if after.IsZero() {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("waiting for logs of %s: %w", group, err)
		}
		start = max(from.Seq, info.State.LastSeq+1)
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.cfg.SubjectPrefix + "." + encodeToken(group) + ".*"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return fmt.Errorf("waiting for logs of %s: %w", group, err)
	}
	for {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("waiting for logs of %s: %w", group, err)
		}
		for range batch.Messages() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
