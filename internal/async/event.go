package async

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// On-disk names. They are part of the storage format.
const (
	// eventStream holds queued events, one subject per function.
	eventStream   = "IGNIS_ASYNC"
	eventSubjects = "ignis.async.>"
	eventPrefix   = "ignis.async."
	// consumerPrefix + function name is the function's durable consumer.
	consumerPrefix = "fn_"

	// queueStream holds the messages of Ignis queues (SQS/SNS-style
	// destinations and dead-letter queues), one subject per queue.
	queueStream   = "IGNIS_QUEUES"
	queueSubjects = "ignis.queue.>"
	queuePrefix   = "ignis.queue."
)

// Event message headers. The payload is the message data, unchanged.
//
// Version policy: hdrVersion is "1". A poller that finds a version it does
// not know drops the event with an error log (it cannot run it correctly);
// a new version must stay readable by adding headers, not changing them.
const (
	hdrVersion   = "Ignis-Event-Version"
	hdrRequestID = "Ignis-Request-Id"
	hdrFunction  = "Ignis-Function"
	hdrQualifier = "Ignis-Qualifier"
	hdrTraceID   = "Ignis-Trace-Id"
	// hdrEnqueued is when the event was first accepted (unix nanoseconds);
	// retries keep it, so event age counts from the original invoke.
	hdrEnqueued = "Ignis-Enqueued"
	// hdrAttempts counts the attempts that ended in a function error.
	hdrAttempts = "Ignis-Attempts"
	// hdrNotBefore is the earliest time (unix nanoseconds) to run a retry.
	hdrNotBefore = "Ignis-Not-Before"

	eventVersion = "1"
)

// Event is one queued asynchronous invocation.
type Event struct {
	// RequestID is the invocation's id; every attempt runs under it.
	RequestID string
	Function  string
	// Qualifier is as invoked: $LATEST, a version or an alias.
	Qualifier string
	TraceID   string
	Payload   []byte
	Enqueued  time.Time
	// Attempts is how many attempts ended in a function error so far.
	Attempts int
	// NotBefore is zero, or when a scheduled retry becomes due.
	NotBefore time.Time
}

func eventSubject(function string) string { return eventPrefix + function }

// msg encodes e. msgID de-duplicates republishing of the same attempt.
func (e *Event) msg() *nats.Msg {
	m := nats.NewMsg(eventSubject(e.Function))
	m.Data = e.Payload
	h := m.Header
	h.Set(hdrVersion, eventVersion)
	h.Set(hdrRequestID, e.RequestID)
	h.Set(hdrFunction, e.Function)
	h.Set(hdrQualifier, e.Qualifier)
	if e.TraceID != "" {
		h.Set(hdrTraceID, e.TraceID)
	}
	h.Set(hdrEnqueued, strconv.FormatInt(e.Enqueued.UnixNano(), 10))
	h.Set(hdrAttempts, strconv.Itoa(e.Attempts))
	if !e.NotBefore.IsZero() {
		h.Set(hdrNotBefore, strconv.FormatInt(e.NotBefore.UnixNano(), 10))
	}
	return m
}

// msgID names one attempt of an event for JetStream's de-duplication.
func (e *Event) msgID() string { return e.RequestID + "/" + strconv.Itoa(e.Attempts) }

var errBadEvent = errors.New("malformed event")

// decodeEvent reads an event message.
func decodeEvent(subject string, h nats.Header, data []byte) (Event, error) {
	if v := h.Get(hdrVersion); v != eventVersion {
		return Event{}, fmt.Errorf("%w: unknown event version %q", errBadEvent, v)
	}
	e := Event{
		RequestID: h.Get(hdrRequestID),
		Function:  h.Get(hdrFunction),
		Qualifier: h.Get(hdrQualifier),
		TraceID:   h.Get(hdrTraceID),
		Payload:   data,
	}
	if e.RequestID == "" || e.Function == "" || eventSubject(e.Function) != subject {
		return Event{}, fmt.Errorf("%w: request id %q, function %q on subject %s", errBadEvent, e.RequestID, e.Function, subject)
	}
	unix := func(key string) (time.Time, error) {
		s := h.Get(key)
		if s == "" {
			return time.Time{}, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: header %s: %v", errBadEvent, key, err)
		}
		return time.Unix(0, n), nil
	}
	var err error
	if e.Enqueued, err = unix(hdrEnqueued); err != nil {
		return Event{}, err
	}
	if e.NotBefore, err = unix(hdrNotBefore); err != nil {
		return Event{}, err
	}
	if e.Attempts, err = strconv.Atoi(h.Get(hdrAttempts)); err != nil || e.Attempts < 0 {
		return Event{}, fmt.Errorf("%w: header %s %q", errBadEvent, hdrAttempts, h.Get(hdrAttempts))
	}
	return e, nil
}

// functionOfSubject returns the function an event subject belongs to.
func functionOfSubject(subject string) (string, bool) {
	fn, ok := strings.CutPrefix(subject, eventPrefix)
	return fn, ok && fn != "" && !strings.Contains(fn, ".")
}
