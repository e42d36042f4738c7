package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
	"github.com/ignis-run/ignis/internal/sandbox"
)

// session is the worker's end of one agent's control channel. A single
// reader goroutine demultiplexes the agent's frames; invokes are strictly one
// at a time (the caller guarantees it, busy double-checks).
type session struct {
	sb sandbox.Sandbox
	w  *agentproto.Writer

	hello   chan agentproto.Hello
	initRes chan initOutcome
	results chan agentproto.Result
	dead    chan struct{} // closed when the control channel ends or the runtime exits

	mu sync.Mutex
	// lines collects the output of the invoke in flight (or of init before
	// the first invoke). Guarded by mu.
	lines []string
	// exit is the runtime's exit report, if it died. Guarded by mu.
	exit *agentproto.RuntimeExit
	// readErr is why the reader stopped. Guarded by mu.
	readErr  error
	deadOnce sync.Once
}

type initOutcome struct {
	done *agentproto.InitDone
	err  *agentproto.InitError
}

func newSession(sb sandbox.Sandbox) *session {
	ctl := sb.Control()
	s := &session{
		sb:      sb,
		w:       agentproto.NewWriter(ctl),
		hello:   make(chan agentproto.Hello, 1),
		initRes: make(chan initOutcome, 1),
		results: make(chan agentproto.Result, 1),
		dead:    make(chan struct{}),
	}
	go s.read(ctl)
	return s
}

func (s *session) markDead() { s.deadOnce.Do(func() { close(s.dead) }) }

func (s *session) read(r io.Reader) {
	fr := agentproto.NewReader(r)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			s.mu.Lock()
			s.readErr = err
			s.mu.Unlock()
			s.markDead()
			return
		}
		switch f.Type {
		case agentproto.TypeHello:
			var h agentproto.Hello
			if f.DecodeJSON(&h) == nil {
				select {
				case s.hello <- h:
				default:
				}
			}
		case agentproto.TypeInitDone:
			var m agentproto.InitDone
			_ = f.DecodeJSON(&m)
			offer(s.initRes, initOutcome{done: &m})
		case agentproto.TypeInitError:
			var m agentproto.InitError
			_ = f.DecodeJSON(&m)
			offer(s.initRes, initOutcome{err: &m})
		case agentproto.TypeRestoreDone:
			// A restore's outcome takes init's place: a restored
			// sandbox never inits.
			var m agentproto.RestoreDone
			_ = f.DecodeJSON(&m)
			offer(s.initRes, initOutcome{done: &agentproto.InitDone{DurationNs: m.DurationNs}})
		case agentproto.TypeRestoreError:
			var m agentproto.InitError
			_ = f.DecodeJSON(&m)
			offer(s.initRes, initOutcome{err: &m})
		case agentproto.TypeResult:
			m, err := f.Result()
			if err == nil {
				offer(s.results, m)
			}
		case agentproto.TypeLog:
			m, err := f.Log()
			if err == nil {
				s.mu.Lock()
				s.lines = append(s.lines, string(m.Line))
				s.mu.Unlock()
			}
		case agentproto.TypeRuntimeExit:
			var m agentproto.RuntimeExit
			_ = f.DecodeJSON(&m)
			s.mu.Lock()
			s.exit = &m
			s.mu.Unlock()
			s.markDead()
		case agentproto.TypeShutdownDone:
		}
	}
}

// offer sends v unless the channel's one slot is taken. Nobody waits for a
// second outcome (a late result after a timeout): dropping it keeps the
// reader from blocking until the sandbox is gone.
func offer[T any](c chan T, v T) {
	select {
	case c <- v:
	default:
	}
}

// takeLines returns the collected output and starts a new collection.
func (s *session) takeLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lines
	s.lines = nil
	return l
}

func (s *session) exitInfo() (*agentproto.RuntimeExit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit, s.readErr
}

// waitHello waits for the agent's first message and checks its version.
func (s *session) waitHello(ctx context.Context) error {
	select {
	case h := <-s.hello:
		if h.Version != agentproto.Version {
			return fmt.Errorf("agent speaks protocol %d, worker %d", h.Version, agentproto.Version)
		}
		return nil
	case <-s.dead:
		_, err := s.exitInfo()
		return fmt.Errorf("agent ended before hello: %v", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// initRuntime sends Init and waits for its outcome.
func (s *session) initRuntime(ctx context.Context, in agentproto.Init, limit time.Duration) (time.Duration, *InitError, error) {
	if err := s.w.Init(in); err != nil {
		return 0, nil, fmt.Errorf("sending init: %w", err)
	}
	return s.awaitInit(ctx, limit)
}

// restoreRuntime sends Restore to an agent restored from a snapshot and
// waits for its outcome, reported like an init's.
func (s *session) restoreRuntime(ctx context.Context, m agentproto.Restore, limit time.Duration) (time.Duration, *InitError, error) {
	if err := s.w.Restore(m); err != nil {
		return 0, nil, fmt.Errorf("sending restore: %w", err)
	}
	return s.awaitInit(ctx, limit)
}

// awaitInit waits for the outcome of an Init or Restore.
func (s *session) awaitInit(ctx context.Context, limit time.Duration) (time.Duration, *InitError, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case o := <-s.initRes:
		if o.err != nil {
			return time.Duration(o.err.DurationNs), &InitError{ErrorType: o.err.ErrorType, Body: o.err.Body}, nil
		}
		return time.Duration(o.done.DurationNs), nil, nil
	case <-s.dead:
		ex, rerr := s.exitInfo()
		if ex != nil {
			return 0, runtimeExitInitError(ex), nil
		}
		return 0, nil, fmt.Errorf("agent ended during init: %v", rerr)
	case <-t.C:
		return limit, &InitError{
			ErrorType: lambdaerr.RuntimeInitTimeout,
			Body:      lambdaerr.Body(lambdaerr.RuntimeInitTimeout, fmt.Sprintf("Init timed out after %.2f seconds", limit.Seconds())),
		}, nil
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

func runtimeExitInitError(ex *agentproto.RuntimeExit) *InitError {
	return &InitError{
		ErrorType: lambdaerr.RuntimeExitError,
		Body:      lambdaerr.Body(lambdaerr.RuntimeExitError, "Runtime exited with error: "+ex.Status),
	}
}

// errInvokeTimeout and errSandboxDied classify how an invoke ended without a
// result; both leave the sandbox unusable.
var (
	errInvokeTimeout = errors.New("invoke timed out")
	errSandboxDied   = errors.New("sandbox died")
)

// invoke sends one event and waits for its result, the deadline, or death.
func (s *session) invoke(ctx context.Context, m agentproto.Invoke, timer *time.Timer) (agentproto.Result, error) {
	if err := s.w.Invoke(m); err != nil {
		return agentproto.Result{}, fmt.Errorf("%w: sending invoke: %v", errSandboxDied, err)
	}
	select {
	case r := <-s.results:
		return r, nil
	case <-s.dead:
		// A result may have raced the runtime's exit.
		select {
		case r := <-s.results:
			return r, nil
		default:
		}
		return agentproto.Result{}, errSandboxDied
	case <-timer.C:
		return agentproto.Result{}, errInvokeTimeout
	case <-ctx.Done():
		return agentproto.Result{}, ctx.Err()
	}
}

func (s *session) shutdown(reason string, grace time.Duration) {
	_ = s.w.Shutdown(agentproto.Shutdown{Reason: reason, DeadlineMs: time.Now().Add(grace).UnixMilli()})
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.dead:
	case <-s.sb.Done():
	case <-t.C:
	}
}
