package async

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Metrics describes the event queue. Backlog figures come from JetStream
// (shared by every process); the counters are this process's since start.
type Metrics struct {
	// Backlog is the number of queued events, including running ones and
	// retries waiting for their time.
	Backlog uint64 `json:"backlog"`
	// Functions is the backlog per function.
	Functions map[string]uint64 `json:"functions"`
	// OldestEventAgeSeconds is the age of the oldest queued event, counted
	// from its original invoke (0 when the queue is empty).
	OldestEventAgeSeconds float64 `json:"oldestEventAgeSeconds"`
	// Pollers is how many events run now; MaxPollers bounds it.
	Pollers    int `json:"pollers"`
	MaxPollers int `json:"maxPollers"`

	Enqueued uint64 `json:"enqueued"`
	// Succeeded events ran without a function error.
	Succeeded uint64 `json:"succeeded"`
	// Retries are attempts scheduled again after a function error.
	Retries uint64 `json:"retries"`
	// Throttled and PlatformErrors are redeliveries after a throttle or an
	// Ignis failure (they do not use up retry attempts).
	Throttled      uint64 `json:"throttled"`
	PlatformErrors uint64 `json:"platformErrors"`
	// Dropped events were given up: RetriesExhausted + EventAgeExceeded,
	// plus unreadable events and events of deleted functions.
	Dropped          uint64 `json:"dropped"`
	RetriesExhausted uint64 `json:"retriesExhausted"`
	EventAgeExceeded uint64 `json:"eventAgeExceeded"`
	// DestinationErrors are records or dead letters that could not be
	// delivered (missing function, too large).
	DestinationErrors uint64 `json:"destinationErrors"`
}

// Metrics reports the queue's state.
func (s *Service) Metrics(ctx context.Context) (Metrics, error) {
	info, err := s.events.Info(ctx, jetstream.WithSubjectFilter(eventSubjects))
	if err != nil {
		return Metrics{}, fmt.Errorf("reading stream %s: %w", eventStream, err)
	}
	m := Metrics{
		Backlog:           info.State.Msgs,
		Functions:         map[string]uint64{},
		MaxPollers:        s.cfg.MaxPollers,
		Enqueued:          s.stats.enqueued.Load(),
		Succeeded:         s.stats.succeeded.Load(),
		Retries:           s.stats.retries.Load(),
		Throttled:         s.stats.throttled.Load(),
		PlatformErrors:    s.stats.platformErrors.Load(),
		Dropped:           s.stats.dropped.Load(),
		RetriesExhausted:  s.stats.exhausted.Load(),
		EventAgeExceeded:  s.stats.expired.Load(),
		DestinationErrors: s.stats.destinationErrors.Load(),
	}
	for subj, n := range info.State.Subjects {
		if fn, ok := functionOfSubject(subj); ok && n > 0 {
			m.Functions[fn] = n
		}
	}
	s.mu.Lock()
	m.Pollers = s.inflight
	s.mu.Unlock()
	if info.State.Msgs > 0 {
		oldest := info.State.FirstTime
		if raw, err := s.events.GetMsg(ctx, info.State.FirstSeq); err == nil {
			if n, err := strconv.ParseInt(raw.Header.Get(hdrEnqueued), 10, 64); err == nil {
				oldest = time.Unix(0, n)
			}
		}
		m.OldestEventAgeSeconds = max(0, s.clk.Now().Sub(oldest).Seconds())
	}
	return m, nil
}

// QueueMetrics implements frontend.QueueOperator.
func (s *Service) QueueMetrics(ctx context.Context) (any, error) { return s.Metrics(ctx) }
