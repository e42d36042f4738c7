package logs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Metadata lives in the KV bucket under two kinds of key:
//
//	g.<token(group)>                 groupRecord
//	s.<token(group)>.<token(stream)> streamRecord
//
// Append never writes it: it marks the stream's in-memory streamState dirty
// and flushMeta merges the deltas into the records every MetaFlushInterval
// (get, merge, compare-and-set on the revision, so several writers — workers
// on different hosts — add up). The bucket's TTL equals the stream's MaxAge
// and each flush rewrites the records it touches, so a stream (or group)
// whose events have all expired disappears with them.

type groupRecord struct {
	Name    string `json:"name"`
	Created int64  `json:"created"`
	Bytes   int64  `json:"bytes"`
}

type streamRecord struct {
	Name     string `json:"name"`
	Created  int64  `json:"created"`
	First    int64  `json:"first,omitempty"`
	Last     int64  `json:"last,omitempty"`
	Ingested int64  `json:"ingested,omitempty"`
	Bytes    int64  `json:"bytes"`
}

// GroupInfo describes a log group.
type GroupInfo struct {
	Name    string
	Created time.Time
	// StoredBytes counts bytes appended (encoded) while the group's
	// metadata was alive; expiry of old events does not subtract.
	StoredBytes int64
}

// StreamInfo describes a log stream. Zero times mean "no event yet".
type StreamInfo struct {
	Name          string
	Created       time.Time
	FirstEvent    time.Time
	LastEvent     time.Time
	LastIngestion time.Time
	StoredBytes   int64
}

type streamKey struct{ group, stream string }

// streamState is the in-memory, not yet flushed part of a stream's
// metadata. Fields are guarded by Store.mu.
type streamState struct {
	group, stream string
	subject       string
	key           string // KV key of the stream record
	gkey          string // KV key of the group record

	dirty           bool
	created         int64
	first, last     int64
	ingested, bytes int64
	touched         time.Time
}

// Preconditions: Store.mu held.
func (st *streamState) note(first, last, ingested, bytes int64) {
	if !st.dirty || first < st.first {
		st.first = first
	}
	if !st.dirty || last > st.last {
		st.last = last
	}
	st.ingested = max(st.ingested, ingested)
	st.bytes += bytes
	st.dirty = true
}

// state returns (creating) the in-memory state of a stream.
func (s *Store) state(group, stream string) (*streamState, error) {
	k := streamKey{group, stream}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("appending to %s %s: %w: %w", group, stream, errdefs.ErrUnavailable, errClosed)
	}
	if st := s.streams[k]; st != nil {
		return st, nil
	}
	if err := validateGroup(group); err != nil {
		return nil, err
	}
	if err := validateStream(stream); err != nil {
		return nil, err
	}
	gt, stt := encodeToken(group), encodeToken(stream)
	st := &streamState{
		group:   group,
		stream:  stream,
		subject: s.cfg.SubjectPrefix + "." + gt + "." + stt,
		key:     "s." + gt + "." + stt,
		gkey:    "g." + gt,
		created: s.clk.Now().UnixMilli(),
		touched: s.clk.Now(),
	}
	s.streams[k] = st
	return st, nil
}

// flushMeta writes every dirty stream's deltas to the KV bucket.
func (s *Store) flushMeta(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	type job struct {
		st    *streamState
		delta streamState
	}
	var jobs []job
	now := s.clk.Now()
	s.mu.Lock()
	for k, st := range s.streams {
		if !st.dirty {
			if now.Sub(st.touched) > 10*s.cfg.MetaFlushInterval+time.Minute {
				delete(s.streams, k) // idle: forget it, the KV has it
			}
			continue
		}
		jobs = append(jobs, job{st, *st})
		st.dirty, st.bytes, st.touched = false, 0, now
	}
	s.mu.Unlock()
	var errs []error
	groupBytes := map[string]int64{}
	groupOf := map[string]*streamState{}
	for _, j := range jobs {
		if err := s.mergeStream(ctx, j.st, j.delta); err != nil {
			errs = append(errs, err)
			s.mu.Lock() // give the delta back for the next round
			j.st.note(j.delta.first, j.delta.last, j.delta.ingested, j.delta.bytes)
			s.mu.Unlock()
			continue
		}
		groupBytes[j.st.gkey] += j.delta.bytes
		groupOf[j.st.gkey] = j.st
	}
	for gkey, st := range groupOf {
		if err := s.mergeGroup(ctx, st.group, gkey, groupBytes[gkey], now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// update runs a get-modify-CAS loop on one KV key.
func (s *Store) update(ctx context.Context, key string, modify func(old []byte) ([]byte, error)) error {
	for attempt := 0; ; attempt++ {
		var rev uint64
		var old []byte
		e, err := s.kv.Get(ctx, key)
		switch {
		case err == nil:
			rev, old = e.Revision(), e.Value()
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return fmt.Errorf("reading log metadata %s: %w", key, err)
		}
		val, err := modify(old)
		if err != nil || val == nil {
			return err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, val)
		} else {
			_, err = s.kv.Update(ctx, key, val, rev)
		}
		if err == nil {
			return nil
		}
		if attempt >= 10 || !(errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")) {
			return fmt.Errorf("writing log metadata %s: %w", key, err)
		}
	}
}

func (s *Store) mergeStream(ctx context.Context, st *streamState, d streamState) error {
	return s.update(ctx, st.key, func(old []byte) ([]byte, error) {
		r := streamRecord{Name: st.stream, Created: d.created}
		if old != nil {
			if err := json.Unmarshal(old, &r); err != nil {
				s.log.Warn("replacing corrupt log stream record", "key", st.key, "err", err)
				r = streamRecord{Name: st.stream, Created: d.created}
			}
		}
		if d.first != 0 && (r.First == 0 || d.first < r.First) {
			r.First = d.first
		}
		r.Last = max(r.Last, d.last)
		r.Ingested = max(r.Ingested, d.ingested)
		r.Bytes += d.bytes
		return json.Marshal(r)
	})
}

// mergeGroup adds bytes to a group record, creating it if needed. An
// unchanged group is rewritten at most every MaxAge/4 to keep it alive.
func (s *Store) mergeGroup(ctx context.Context, group, key string, bytes int64, now time.Time) error {
	if last, ok := s.groups[key]; ok && bytes == 0 && now.Sub(last) < s.cfg.MaxAge/4 {
		return nil
	}
	err := s.update(ctx, key, func(old []byte) ([]byte, error) {
		r := groupRecord{Name: group, Created: now.UnixMilli()}
		if old != nil {
			if err := json.Unmarshal(old, &r); err != nil {
				s.log.Warn("replacing corrupt log group record", "key", key, "err", err)
				r = groupRecord{Name: group, Created: now.UnixMilli()}
			}
		}
		r.Bytes += bytes
		return json.Marshal(r)
	})
	if err == nil {
		s.groups[key] = now
	}
	return err
}

// CreateGroup creates an empty log group, synchronously.
// Errors: errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument.
func (s *Store) CreateGroup(ctx context.Context, group string) error {
	if err := validateGroup(group); err != nil {
		return err
	}
	v, _ := json.Marshal(groupRecord{Name: group, Created: s.clk.Now().UnixMilli()})
	if _, err := s.kv.Create(ctx, "g."+encodeToken(group), v); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("creating log group %s: %w", group, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("creating log group %s: %w", group, err)
	}
	return nil
}

// CreateStream creates an empty log stream in an existing group.
// Errors: errdefs.ErrNotFound (group), errdefs.ErrAlreadyExists.
func (s *Store) CreateStream(ctx context.Context, group, stream string) error {
	if err := validateStream(stream); err != nil {
		return err
	}
	if _, err := s.Group(ctx, group); err != nil {
		return err
	}
	if _, err := s.Stream(ctx, group, stream); err == nil {
		return fmt.Errorf("creating log stream %s in %s: %w", stream, group, errdefs.ErrAlreadyExists)
	}
	v, _ := json.Marshal(streamRecord{Name: stream, Created: s.clk.Now().UnixMilli()})
	if _, err := s.kv.Create(ctx, "s."+encodeToken(group)+"."+encodeToken(stream), v); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("creating log stream %s in %s: %w", stream, group, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("creating log stream %s in %s: %w", stream, group, err)
	}
	return nil
}

// DeleteGroup removes a group's metadata and purges its events.
func (s *Store) DeleteGroup(ctx context.Context, group string) error {
	if _, err := s.Group(ctx, group); err != nil {
		return err
	}
	gt := encodeToken(group)
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.cfg.SubjectPrefix+"."+gt+".>")); err != nil {
		return fmt.Errorf("deleting log group %s: purging events: %w", group, err)
	}
	recs, err := s.kvValues(ctx, "s."+gt+".*")
	if err != nil {
		return fmt.Errorf("deleting log group %s: %w", group, err)
	}
	s.mu.Lock()
	for k := range s.streams {
		if k.group == group {
			delete(s.streams, k)
		}
	}
	s.mu.Unlock()
	for _, e := range recs {
		if err := s.kv.Purge(ctx, e.Key()); err != nil {
			return fmt.Errorf("deleting log group %s: %w", group, err)
		}
	}
	if err := s.kv.Purge(ctx, "g."+gt); err != nil {
		return fmt.Errorf("deleting log group %s: %w", group, err)
	}
	s.flushMu.Lock()
	delete(s.groups, "g."+gt)
	s.flushMu.Unlock()
	return nil
}

// kvValues returns the current entries of the keys matching filter.
func (s *Store) kvValues(ctx context.Context, filter string) ([]jetstream.KeyValueEntry, error) {
	w, err := s.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("listing log metadata %s: %w", filter, err)
	}
	defer func() { _ = w.Stop() }()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return out, nil
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, fmt.Errorf("listing log metadata %s: %w", filter, ctx.Err())
		}
	}
}

// Groups lists log groups whose name starts with prefix, sorted by name.
// It merges metadata not yet flushed by this process.
func (s *Store) Groups(ctx context.Context, prefix string) ([]GroupInfo, error) {
	entries, err := s.kvValues(ctx, "g.*")
	if err != nil {
		return nil, err
	}
	byName := map[string]GroupInfo{}
	for _, e := range entries {
		var r groupRecord
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			s.log.Warn("skipping corrupt log group record", "key", e.Key(), "err", err)
			continue
		}
		if strings.HasPrefix(r.Name, prefix) {
			byName[r.Name] = GroupInfo{Name: r.Name, Created: time.UnixMilli(r.Created), StoredBytes: r.Bytes}
		}
	}
	s.mu.Lock()
	for _, st := range s.streams {
		if !strings.HasPrefix(st.group, prefix) {
			continue
		}
		g, ok := byName[st.group]
		if !ok {
			g = GroupInfo{Name: st.group, Created: time.UnixMilli(st.created)}
		}
		g.StoredBytes += st.bytes
		byName[st.group] = g
	}
	s.mu.Unlock()
	out := make([]GroupInfo, 0, len(byName))
	for _, g := range byName {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b GroupInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Group describes one log group. Errors: errdefs.ErrNotFound.
func (s *Store) Group(ctx context.Context, group string) (GroupInfo, error) {
	if err := validateGroup(group); err != nil {
		return GroupInfo{}, err
	}
	gt := encodeToken(group)
	e, err := s.kv.Get(ctx, "g."+gt)
	if err == nil {
		var r groupRecord
		if err := json.Unmarshal(e.Value(), &r); err == nil {
			return GroupInfo{Name: group, Created: time.UnixMilli(r.Created), StoredBytes: r.Bytes}, nil
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return GroupInfo{}, fmt.Errorf("reading log group %s: %w", group, err)
	}
	// Not flushed yet (here or by another writer)? Events tell the truth.
	s.mu.Lock()
	for _, st := range s.streams {
		if st.group == group {
			info := GroupInfo{Name: group, Created: time.UnixMilli(st.created), StoredBytes: st.bytes}
			s.mu.Unlock()
			return info, nil
		}
	}
	s.mu.Unlock()
	if n, err := s.subjectCount(ctx, s.cfg.SubjectPrefix+"."+gt+".*"); err != nil {
		return GroupInfo{}, err
	} else if n > 0 {
		return GroupInfo{Name: group, Created: s.clk.Now()}, nil
	}
	return GroupInfo{}, fmt.Errorf("log group %s: %w", group, errdefs.ErrNotFound)
}

// subjectCount returns how many distinct subjects match filter.
func (s *Store) subjectCount(ctx context.Context, filter string) (int, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, fmt.Errorf("reading log stream subjects %s: %w", filter, err)
	}
	return len(info.State.Subjects), nil
}

// Stream describes one log stream. Errors: errdefs.ErrNotFound.
func (s *Store) Stream(ctx context.Context, group, stream string) (StreamInfo, error) {
	list, err := s.streamList(ctx, group, stream, true)
	if err != nil {
		return StreamInfo{}, err
	}
	if len(list) == 0 {
		return StreamInfo{}, fmt.Errorf("log stream %s in %s: %w", stream, group, errdefs.ErrNotFound)
	}
	return list[0], nil
}

// StreamOrder selects the order of Streams.
type StreamOrder int

// Orders for Streams.
const (
	ByName StreamOrder = iota
	ByLastEvent
)

// Streams lists the streams of a group whose name starts with prefix,
// sorted by name or by last event time, optionally descending.
// Errors: errdefs.ErrNotFound when the group does not exist.
func (s *Store) Streams(ctx context.Context, group, prefix string, order StreamOrder, descending bool) ([]StreamInfo, error) {
	if _, err := s.Group(ctx, group); err != nil {
		return nil, err
	}
	list, err := s.streamList(ctx, group, prefix, false)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b StreamInfo) int {
		c := 0
		if order == ByLastEvent {
			c = a.LastEvent.Compare(b.LastEvent)
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		if descending {
			c = -c
		}
		return c
	})
	return list, nil
}

// streamList gathers streams named prefix (exact) or prefix*, merging KV
// records, unflushed local deltas and, for streams whose record is not
// written yet, the subjects present in the event stream.
func (s *Store) streamList(ctx context.Context, group, prefix string, exact bool) ([]StreamInfo, error) {
	if err := validateGroup(group); err != nil {
		return nil, err
	}
	gt := encodeToken(group)
	match := func(name string) bool {
		if exact {
			return name == prefix
		}
		return strings.HasPrefix(name, prefix)
	}
	byName := map[string]StreamInfo{}
	var entries []jetstream.KeyValueEntry
	if exact {
		e, err := s.kv.Get(ctx, "s."+gt+"."+encodeToken(prefix))
		switch {
		case err == nil:
			entries = append(entries, e)
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, fmt.Errorf("reading log stream %s: %w", prefix, err)
		}
	} else {
		var err error
		if entries, err = s.kvValues(ctx, "s."+gt+".*"); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		var r streamRecord
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			s.log.Warn("skipping corrupt log stream record", "key", e.Key(), "err", err)
			continue
		}
		if match(r.Name) {
			byName[r.Name] = recordInfo(r)
		}
	}
	s.mu.Lock()
	for _, st := range s.streams {
		if st.group != group || !match(st.stream) {
			continue
		}
		i, ok := byName[st.stream]
		if !ok {
			i = StreamInfo{Name: st.stream, Created: time.UnixMilli(st.created)}
		}
		if st.dirty {
			if i.FirstEvent.IsZero() || st.first < i.FirstEvent.UnixMilli() {
				i.FirstEvent = time.UnixMilli(st.first)
			}
			if st.last > i.LastEvent.UnixMilli() || i.LastEvent.IsZero() {
				i.LastEvent = time.UnixMilli(st.last)
			}
			if st.ingested > i.LastIngestion.UnixMilli() || i.LastIngestion.IsZero() {
				i.LastIngestion = time.UnixMilli(st.ingested)
			}
			i.StoredBytes += st.bytes
		}
		byName[st.stream] = i
	}
	s.mu.Unlock()
	if exact && len(byName) == 0 {
		// Written by another process whose metadata flush is pending.
		n, err := s.subjectCount(ctx, s.cfg.SubjectPrefix+"."+gt+"."+encodeToken(prefix))
		if err != nil {
			return nil, err
		}
		if n > 0 {
			byName[prefix] = StreamInfo{Name: prefix, Created: s.clk.Now()}
		}
	}
	out := make([]StreamInfo, 0, len(byName))
	for _, i := range byName {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b StreamInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func recordInfo(r streamRecord) StreamInfo {
	i := StreamInfo{Name: r.Name, Created: time.UnixMilli(r.Created), StoredBytes: r.Bytes}
	if r.First != 0 {
		i.FirstEvent = time.UnixMilli(r.First)
	}
	if r.Last != 0 {
		i.LastEvent = time.UnixMilli(r.Last)
	}
	if r.Ingested != 0 {
		i.LastIngestion = time.UnixMilli(r.Ingested)
	}
	return i
}
