package workerrpc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/worker"
)

// Server serves one worker's sandboxes to the other nodes.
type Server struct {
	id    string
	local *invoke.Local
	log   *slog.Logger
	sub   *nats.Subscription

	// ctx ends the calls still running when Close gives up on them.
	ctx    context.Context
	cancel context.CancelFunc
	calls  sync.WaitGroup
}

// Serve subscribes to w's subjects on nc and serves them until Close.
// logger may be nil.
func Serve(nc *nats.Conn, w *worker.Worker, logger *slog.Logger) (*Server, error) {
	if err := ValidID(w.ID()); err != nil {
		return nil, err
	}
	if mp := nc.MaxPayload(); mp < MinPayload {
		return nil, fmt.Errorf("the NATS server's max_payload is %d bytes; a worker needs at least %d (6 MB payloads): %w", mp, MinPayload, errdefs.ErrInvalidArgument)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{id: w.ID(), local: invoke.NewLocal(w), log: logger, ctx: ctx, cancel: cancel}
	sub, err := nc.Subscribe(subjectPrefix+w.ID()+".*", s.handle)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("serving worker %s: %w", w.ID(), err)
	}
	// The callback only hands each message to a goroutine, so a backlog
	// is brief; an unbounded one never drops a call on the floor.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		cancel()
		return nil, err
	}
	// The subscription must be known to the server before the worker is
	// announced: a call that finds no subscriber fails as "no responders".
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		cancel()
		return nil, fmt.Errorf("serving worker %s: %w", w.ID(), err)
	}
	s.sub = sub
	return s, nil
}

// Close stops taking calls and waits for the ones under way while ctx
// lasts, then cancels what is left.
func (s *Server) Close(ctx context.Context) {
	_ = s.sub.Unsubscribe()
	done := make(chan struct{})
	go func() { s.calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
	}
	s.cancel()
}

// handle runs each call in a goroutine of its own: creates and invokes
// last seconds to minutes, and the subscription delivers in order.
func (s *Server) handle(m *nats.Msg) {
	s.calls.Add(1)
	go func() {
		defer s.calls.Done()
		s.serve(m)
	}()
}

func (s *Server) serve(m *nats.Msg) {
	if m.Reply == "" {
		return // nobody to answer: not a call
	}
	op := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	var c call
	if h := m.Header.Get(hdrCall); h != "" {
		if err := json.Unmarshal([]byte(h), &c); err != nil {
			s.fail(m, fmt.Errorf("unreadable call header: %w", errdefs.ErrInvalidArgument))
			return
		}
	}
	ctx := s.ctx
	if c.Deadline != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, c.Deadline))
		defer cancel()
	}
	switch op {
	case opInvoke:
		s.invoke(ctx, m, c)
	case opCreate:
		var req assignment.CreateRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			s.fail(m, fmt.Errorf("unreadable create request: %w", errdefs.ErrInvalidArgument))
			return
		}
		created, err := s.local.CreateSandbox(ctx, s.id, req)
		s.reply(m, created, err)
	case opDestroy:
		s.reply(m, nil, s.local.DestroySandbox(ctx, s.id, c.SandboxID))
	case opList:
		list, err := s.local.ListSandboxes(ctx, s.id)
		s.reply(m, list, err)
	default:
		s.fail(m, fmt.Errorf("unknown operation %q: %w", op, errdefs.ErrInvalidArgument))
	}
}

func (s *Server) invoke(ctx context.Context, m *nats.Msg, c call) {
	res, err := s.local.Invoke(ctx, s.id, c.SandboxID, worker.InvokeRequest{
		RequestID:     c.RequestID,
		InvokedARN:    c.InvokedARN,
		Payload:       m.Data,
		ClientContext: c.ClientContext,
		TraceID:       c.TraceID,
		TenantID:      c.TenantID,
		Tail:          c.Tail,
	})
	if err != nil {
		s.fail(m, err)
		return
	}
	h, _ := json.Marshal(result{
		FunctionError: res.FunctionError, ErrorType: res.ErrorType, LogTail: res.LogTail,
		Duration: res.Duration, MaxMemory: res.MaxMemory, Dead: res.Dead,
	})
	s.respond(m, &nats.Msg{Header: nats.Header{hdrResult: []string{string(h)}}, Data: res.Payload})
}

// reply answers a control call: v as the JSON body, or err.
func (s *Server) reply(m *nats.Msg, v any, err error) {
	if err != nil {
		s.fail(m, err)
		return
	}
	var body []byte
	if v != nil {
		if body, err = json.Marshal(v); err != nil {
			s.fail(m, err)
			return
		}
	}
	s.respond(m, &nats.Msg{Data: body})
}

func (s *Server) fail(m *nats.Msg, err error) {
	s.respond(m, &nats.Msg{Header: nats.Header{hdrError: []string{encodeError(err)}}})
}

func (s *Server) respond(m *nats.Msg, r *nats.Msg) {
	if err := m.RespondMsg(r); err != nil {
		// The caller times out or learns the worker is gone; nothing
		// else can be done from here.
		s.log.Warn("answering a worker call", "worker", s.id, "subject", m.Subject, "err", err)
	}
}
