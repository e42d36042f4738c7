package bench

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// PhaseRecorder is a slog.Handler wrapper that picks the worker's
// "sandbox ready" debug record (which carries the cold start's code fetch,
// sandbox create and runtime init durations) out of an embedded server's
// log, and passes every record its next handler wants on to it. It is how
// `ignis bench --embedded` splits a cold start into phases without a
// dedicated API: the worker already logs the phases of worker.Env.
//
// Capture is off until Capture(true), so that the server's hot path does
// not build debug records the rest of the time. Safe for concurrent use.
type PhaseRecorder struct {
	next slog.Handler
	st   *phaseState
}

type phaseState struct {
	mu      sync.Mutex
	on      bool          // guarded by mu
	records []readyRecord // guarded by mu
}

// readyRecord is one worker "sandbox ready" record.
type readyRecord struct {
	at                      time.Time
	function, sandbox       string
	codeFetch, create, init time.Duration
	// ready is the worker's whole CreateSandbox, by its clock (0 from a
	// worker that does not log it).
	ready time.Duration
}

// NewPhaseRecorder wraps next.
func NewPhaseRecorder(next slog.Handler) *PhaseRecorder {
	return &PhaseRecorder{next: next, st: &phaseState{}}
}

// Capture turns recording on or off.
func (p *PhaseRecorder) Capture(on bool) {
	p.st.mu.Lock()
	p.st.on = on
	p.st.mu.Unlock()
}

// take returns and forgets the records collected so far.
func (p *PhaseRecorder) take() []readyRecord {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	r := p.st.records
	p.st.records = nil
	return r
}

// Enabled implements slog.Handler.
func (p *PhaseRecorder) Enabled(ctx context.Context, l slog.Level) bool {
	if p.next.Enabled(ctx, l) {
		return true
	}
	if l != slog.LevelDebug {
		return false
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.on
}

// Handle implements slog.Handler.
func (p *PhaseRecorder) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug && r.Message == "sandbox ready" {
		rec := readyRecord{at: r.Time}
		found := false
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "function":
				rec.function = a.Value.String()
			case "sandbox":
				rec.sandbox = a.Value.String()
			case "code_fetch":
				rec.codeFetch, found = a.Value.Duration(), true
			case "create":
				rec.create = a.Value.Duration()
			case "init":
				rec.init = a.Value.Duration()
			case "ready":
				rec.ready = a.Value.Duration()
			}
			return true
		})
		if found {
			p.st.mu.Lock()
			if p.st.on {
				p.st.records = append(p.st.records, rec)
			}
			p.st.mu.Unlock()
		}
	}
	if p.next.Enabled(ctx, r.Level) {
		return p.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (p *PhaseRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &PhaseRecorder{next: p.next.WithAttrs(attrs), st: p.st}
}

// WithGroup implements slog.Handler.
func (p *PhaseRecorder) WithGroup(name string) slog.Handler {
	return &PhaseRecorder{next: p.next.WithGroup(name), st: p.st}
}
