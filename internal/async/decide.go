package async

// The pure core: what to do with an event, given its state, its function's
// configuration, the outcome of an attempt and the time. No IO here, so
// every case is a table test (decide_test.go).

import (
	"time"

	"github.com/ignis-run/ignis/internal/registry"
)

// Conditions of a destination record (spec §2).
const (
	CondSuccess          = "Success"
	CondRetriesExhausted = "RetriesExhausted"
	CondEventAgeExceeded = "EventAgeExceeded"
)

// outcome is how one attempt ended.
type outcome int

const (
	outOK            outcome = iota // the function returned a result
	outFunctionError                // the function failed (counts as an attempt)
	outThrottled                    // a concurrency limit refused it (not an attempt)
	outPlatform                     // Ignis failed to run it (not an attempt)
)

// actionKind is what the poller does with the message.
type actionKind int

const (
	// actRun: run the event now.
	actRun actionKind = iota
	// actWait: redeliver after Delay; nothing ran (a retry not yet due,
	// a throttle or a platform error).
	actWait
	// actRetry: publish the event again with Attempts+1, due at NotBefore.
	actRetry
	// actSucceed: send the OnSuccess record.
	actSucceed
	// actFail: give up with Condition; send OnFailure record and DLQ.
	actFail
)

// action is a decision.
type action struct {
	kind      actionKind
	delay     time.Duration // actWait
	notBefore time.Time     // actRetry
	condition string        // actSucceed, actFail
	// invokes is the record's approximateInvokeCount (actSucceed, actFail).
	invokes int
}

// Policy holds the timing knobs of retries.
type Policy struct {
	// RetryDelay is the wait before the first retry after a function
	// error; the second waits twice as long (Lambda: 1 and 2 minutes).
	RetryDelay time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff after
	// throttles and platform errors.
	BackoffMin, BackoffMax time.Duration
}

// DefaultPolicy is Lambda's timing.
func DefaultPolicy() Policy {
	return Policy{RetryDelay: time.Minute, BackoffMin: time.Second, BackoffMax: time.Minute}
}

// expiry is when ev exceeds its maximum age.
func expiry(ev *Event, cfg *registry.EventInvokeConfig) time.Time {
	return ev.Enqueued.Add(time.Duration(cfg.MaximumEventAgeInSeconds) * time.Second)
}

// untilExpiry caps d so that the event is looked at again right when it
// expires (and not later).
func untilExpiry(d time.Duration, ev *Event, cfg *registry.EventInvokeConfig, now time.Time) time.Duration {
	left := expiry(ev, cfg).Sub(now) + time.Millisecond
	if left < d {
		d = left
	}
	if d < 0 {
		d = 0
	}
	return d
}

// before decides whether a delivered event runs now.
func (p Policy) before(ev *Event, cfg *registry.EventInvokeConfig, now time.Time) action {
	if now.After(expiry(ev, cfg)) {
		return action{kind: actFail, condition: CondEventAgeExceeded, invokes: ev.Attempts}
	}
	if ev.NotBefore.After(now) {
		return action{kind: actWait, delay: untilExpiry(ev.NotBefore.Sub(now), ev, cfg, now)}
	}
	return action{kind: actRun}
}

// after decides what follows an attempt that ended with out. delivered is
// how often JetStream delivered this message (1 on the first try); it
// drives the throttle backoff.
func (p Policy) after(ev *Event, cfg *registry.EventInvokeConfig, out outcome, delivered uint64, now time.Time) action {
	switch out {
	case outOK:
		return action{kind: actSucceed, condition: CondSuccess, invokes: ev.Attempts + 1}
	case outFunctionError:
		n := ev.Attempts + 1
		if n > cfg.MaximumRetryAttempts {
			return action{kind: actFail, condition: CondRetriesExhausted, invokes: n}
		}
		return action{kind: actRetry, notBefore: now.Add(p.RetryDelay << (n - 1))}
	default: // throttled or platform error: back off, no attempt used
		if now.After(expiry(ev, cfg)) {
			return action{kind: actFail, condition: CondEventAgeExceeded, invokes: ev.Attempts}
		}
		return action{kind: actWait, delay: untilExpiry(p.backoff(delivered), ev, cfg, now)}
	}
}

// backoff is BackoffMin doubled per earlier delivery, at most BackoffMax.
func (p Policy) backoff(delivered uint64) time.Duration {
	d := p.BackoffMin
	for i := uint64(1); i < delivered && d < p.BackoffMax; i++ {
		d *= 2
	}
	return min(d, p.BackoffMax)
}
