package async

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/lambdaerr"
	"github.com/ignis-run/ignis/internal/registry"
)

// attempt is what one run produced.
type attempt struct {
	out outcome
	res *invoke.Result // outOK, outFunctionError
	err error          // outThrottled, outPlatform
}

// handle processes one delivered event message. The message is acked only
// after its outcome is durably recorded: the retry republished, or the
// destination records stored. Until then a crash redelivers it (at least
// once).
func (s *Service) handle(ctx context.Context, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		s.log.ErrorContext(ctx, "reading event metadata", "subject", m.Subject(), "err", err)
		return
	}
	ev, err := decodeEvent(m.Subject(), m.Headers(), m.Data())
	if err != nil {
		s.log.ErrorContext(ctx, "dropping an unreadable event", "subject", m.Subject(), "seq", md.Sequence.Stream, "err", err)
		s.stats.dropped.Add(1)
		s.ack(ctx, m)
		return
	}
	log := s.log.With("function", ev.Function, "qualifier", ev.Qualifier, "requestId", ev.RequestID)
	cfg, err := s.reg.EffectiveEventInvokeConfig(ctx, ev.Function, ev.Qualifier)
	if errdefs.IsNotFound(err) {
		log.WarnContext(ctx, "dropping an event of a deleted function")
		s.stats.dropped.Add(1)
		s.ack(ctx, m)
		return
	}
	if err != nil {
		s.wait(ctx, m, s.pol.backoff(md.NumDelivered), log, err)
		return
	}
	now := s.clk.Now()
	act := s.pol.before(&ev, &cfg, now)
	var at attempt
	if act.kind == actRun {
		at = s.run(ctx, m, &ev)
		if ctx.Err() != nil {
			// Shutting down: the event reappears after a restart.
			_ = m.Nak()
			return
		}
		act = s.pol.after(&ev, &cfg, at.out, md.NumDelivered, s.clk.Now())
	}
	switch act.kind {
	case actWait:
		switch at.out {
		case outThrottled:
			s.stats.throttled.Add(1)
		case outPlatform:
			s.stats.platformErrors.Add(1)
		}
		s.wait(ctx, m, act.delay, log, at.err)
	case actRetry:
		next := ev
		next.Attempts++
		next.NotBefore = act.notBefore
		if err := s.publish(ctx, &next); err != nil {
			s.wait(ctx, m, s.pol.backoff(md.NumDelivered), log, err)
			return
		}
		s.stats.retries.Add(1)
		log.InfoContext(ctx, "function error; retry scheduled", "attempt", next.Attempts, "at", act.notBefore)
		s.ack(ctx, m)
	case actSucceed:
		if err := s.finish(ctx, &ev, &cfg, act, at.res); err != nil {
			s.wait(ctx, m, s.pol.backoff(md.NumDelivered), log, err)
			return
		}
		s.stats.succeeded.Add(1)
		s.ack(ctx, m)
	case actFail:
		if err := s.finish(ctx, &ev, &cfg, act, at.res); err != nil {
			s.wait(ctx, m, s.pol.backoff(md.NumDelivered), log, err)
			return
		}
		if act.condition == CondEventAgeExceeded {
			s.stats.expired.Add(1)
		} else {
			s.stats.exhausted.Add(1)
		}
		s.stats.dropped.Add(1)
		log.InfoContext(ctx, "event given up", "condition", act.condition, "invokes", act.invokes)
		s.ack(ctx, m)
	}
}

// run makes one attempt through the sync invoke path, telling JetStream the
// event is still in progress while it runs.
func (s *Service) run(ctx context.Context, m jetstream.Msg, ev *Event) attempt {
	fn, err := s.reg.Resolve(ctx, ev.Function, ev.Qualifier)
	if err != nil {
		if errdefs.IsNotFound(err) {
			// A version or alias deleted after the invoke: Lambda cannot
			// run it either. Treat as a function error so the event ends
			// up in the failure destination after its retries.
			return attempt{out: outFunctionError, res: &invoke.Result{FunctionError: lambdaerr.Unhandled,
				Payload: lambdaerr.Body(api.ErrResourceNotFound, err.Error())}}
		}
		return attempt{out: outPlatform, err: err}
	}
	hb, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := s.clk.NewTimer(s.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-hb.Done():
				return
			case <-t.C():
				_ = m.InProgress()
				t.Reset(s.cfg.AckWait / 3)
			}
		}
	}()
	res, err := s.cfg.Invoker.Invoke(ctx, &invoke.Request{
		RequestID:      ev.RequestID,
		Function:       fn,
		InvocationType: "RequestResponse",
		LogType:        "None",
		TraceID:        ev.TraceID,
		Payload:        ev.Payload,
	})
	switch {
	case errors.Is(err, errdefs.ErrThrottled):
		return attempt{out: outThrottled, err: err}
	case err != nil:
		return attempt{out: outPlatform, err: err}
	case res.FunctionError != "":
		return attempt{out: outFunctionError, res: res}
	}
	return attempt{out: outOK, res: res}
}

// wait hands the event back to JetStream for redelivery after d.
func (s *Service) wait(ctx context.Context, m jetstream.Msg, d time.Duration, log interface {
	DebugContext(context.Context, string, ...any)
}, cause error) {
	log.DebugContext(ctx, "event postponed", "delay", d, "cause", cause)
	if err := m.NakWithDelay(d); err != nil {
		s.log.WarnContext(ctx, "postponing an event", "err", err)
	}
}

// ack removes the event from the queue, waiting for the server's
// confirmation so a finished event is not run again.
func (s *Service) ack(ctx context.Context, m jetstream.Msg) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if s.cfg.Logs != nil {
		if err := s.cfg.Logs.Flush(actx); err != nil {
			s.log.WarnContext(ctx, "flushing function logs before an ack", "err", err)
		}
	}
	if err := m.DoubleAck(actx); err != nil {
		s.log.WarnContext(ctx, "acknowledging an event (it may run again)", "err", err)
	}
}

// finish sends the destination records (and the dead letter) of a
// finished event. Only transient errors are returned; a destination that
// can never take its record is logged and counted.
func (s *Service) finish(ctx context.Context, ev *Event, cfg *registry.EventInvokeConfig, act action, res *invoke.Result) error {
	targets := []string{}
	if act.kind == actSucceed && cfg.OnSuccess != "" {
		targets = append(targets, cfg.OnSuccess)
	}
	if act.kind == actFail && cfg.OnFailure != "" {
		targets = append(targets, cfg.OnFailure)
	}
	var rec []byte
	if len(targets) > 0 {
		rec = s.record(ev, act, res)
	}
	for _, arn := range targets {
		if err := s.deliver(ctx, arn, ev, rec, nil); err != nil {
			if !errors.Is(err, errUndeliverable) {
				return err
			}
			s.stats.destinationErrors.Add(1)
			s.log.WarnContext(ctx, "dropping a destination record", "function", ev.Function, "requestId", ev.RequestID, "destination", arn, "err", err)
		}
	}
	if act.kind == actFail {
		return s.deadLetter(ctx, ev, act, res)
	}
	return nil
}
