package async

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/registry"
)

// Ignis queue message headers.
const (
	hdrMessageID = "Ignis-Message-Id"
	// hdrAttrPrefix + name carries a message attribute.
	hdrAttrPrefix = "Ignis-Attr-"
	// receiverPrefix + queue name is the queue's durable consumer.
	receiverPrefix = "q_"
)

// Record is Lambda's invocation record, the body sent to destinations
// (spec §2).
type Record struct {
	Version         string           `json:"version"`
	Timestamp       string           `json:"timestamp"`
	RequestContext  RequestContext   `json:"requestContext"`
	RequestPayload  json.RawMessage  `json:"requestPayload"`
	ResponseContext *ResponseContext `json:"responseContext,omitempty"`
	ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
}

// RequestContext identifies the invocation a Record reports.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionArn            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is the last attempt's outcome.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// asJSON returns b when it is JSON, else b as a JSON string; null for
// nothing.
func asJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// record builds the invocation record of a finished event.
func (s *Service) record(ev *Event, act action, res *invoke.Result) []byte {
	r := Record{
		Version:   "1.0",
		Timestamp: s.clk.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		RequestContext: RequestContext{
			RequestID:              ev.RequestID,
			FunctionArn:            s.arns.Qualified(ev.Function, ev.Qualifier),
			Condition:              act.condition,
			ApproximateInvokeCount: act.invokes,
		},
		RequestPayload: asJSON(ev.Payload),
	}
	if res != nil {
		r.ResponseContext = &ResponseContext{StatusCode: 200, ExecutedVersion: res.ExecutedVersion, FunctionError: res.FunctionError}
		r.ResponsePayload = asJSON(res.Payload)
	}
	b, err := json.Marshal(r)
	if err != nil || len(b) > MaxEventBytes {
		// Too large for any destination: keep the context, drop the
		// response (Lambda truncates likewise).
		r.ResponsePayload = nil
		b, _ = json.Marshal(r)
	}
	return b
}

// deliver sends body to the destination arn: a function (queued as an
// Event invocation) or an Ignis queue (SQS/SNS ARN). The message id is
// derived from the source event, so a redelivered source does not
// duplicate the record within JetStream's de-duplication window.
func (s *Service) deliver(ctx context.Context, arn string, src *Event, body []byte, attrs map[string]string) error {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 {
		return undeliverable("bad destination ARN %s", arn)
	}
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte(src.RequestID+"\x00"+arn+"\x00"+strconv.Itoa(src.Attempts))).String()
	switch parts[2] {
	case "lambda":
		ref, err := registry.ParseFunctionRef(arn, "")
		if err != nil {
			return undeliverable("bad destination ARN %s: %v", arn, err)
		}
		if ref.Qualifier == "" {
			ref.Qualifier = registry.Latest
		}
		if _, err := s.reg.Resolve(ctx, ref.Name, ref.Qualifier); errdefs.IsNotFound(err) {
			return undeliverable("destination function: %v", err)
		} else if err != nil {
			return err
		}
		if len(body) > MaxEventBytes {
			return undeliverable("record of %d bytes exceeds the %d byte async payload limit", len(body), MaxEventBytes)
		}
		ev := Event{RequestID: id, Function: ref.Name, Qualifier: ref.Qualifier, Payload: body, Enqueued: s.clk.Now()}
		return s.publish(ctx, &ev)
	case "sqs", "sns":
		name := parts[len(parts)-1]
		if !registry.ValidQueueName(name) {
			return undeliverable("bad queue name in %s", arn)
		}
		return s.sendQueue(ctx, name, id, body, attrs)
	}
	return undeliverable("unsupported destination %s", arn)
}

// sendQueue stores one message in Ignis queue name.
func (s *Service) sendQueue(ctx context.Context, name, id string, body []byte, attrs map[string]string) error {
	m := nats.NewMsg(queuePrefix + name)
	m.Data = body
	m.Header.Set(hdrMessageID, id)
	for k, v := range attrs {
		m.Header.Set(hdrAttrPrefix+k, v)
	}
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgID(id), jetstream.WithExpectStream(queueStream)); err != nil {
		return fmt.Errorf("sending to queue %s: %w: %w", name, errdefs.ErrUnavailable, err)
	}
	return nil
}

// deadLetter sends a failed event's payload to its function's
// DeadLetterConfig target, as Lambda does: the original event as the body,
// RequestID, ErrorCode and ErrorMessage as attributes.
func (s *Service) deadLetter(ctx context.Context, ev *Event, act action, res *invoke.Result) error {
	fn, err := s.reg.Resolve(ctx, ev.Function, ev.Qualifier)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	target := fn.Primary.DeadLetterTargetArn
	if target == "" {
		return nil
	}
	msg := act.condition
	if res != nil && len(res.Payload) > 0 {
		var e struct {
			ErrorMessage string `json:"errorMessage"`
		}
		if json.Unmarshal(res.Payload, &e) == nil && e.ErrorMessage != "" {
			msg = e.ErrorMessage
		}
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	attrs := map[string]string{"RequestID": ev.RequestID, "ErrorCode": "200", "ErrorMessage": msg}
	dl := *ev
	dl.Attempts += 100 // a distinct message id from the OnFailure record's
	err = s.deliver(ctx, target, &dl, ev.Payload, attrs)
	if err != nil && !isUndeliverable(err) {
		return err
	}
	if err != nil {
		s.stats.destinationErrors.Add(1)
		s.log.WarnContext(ctx, "dropping a dead letter", "function", ev.Function, "requestId", ev.RequestID, "target", target, "err", err)
	}
	return nil
}

// ReceiveQueue implements frontend.QueueOperator: it takes up to max
// messages off Ignis queue name, waiting up to wait for the first, and
// deletes what it returns.
func (s *Service) ReceiveQueue(ctx context.Context, name string, max int, wait time.Duration) ([]api.QueueMessage, error) {
	if !registry.ValidQueueName(name) {
		return nil, userErr(errdefs.ErrInvalidArgument, "Invalid queue name %q: 1 to 80 characters of [a-zA-Z0-9_-]", name)
	}
	c, err := s.receiver(ctx, name)
	if err != nil {
		return nil, err
	}
	var batch jetstream.MessageBatch
	if wait <= 0 {
		batch, err = c.FetchNoWait(max)
	} else {
		batch, err = c.Fetch(max, jetstream.FetchMaxWait(wait))
	}
	if err != nil {
		return nil, fmt.Errorf("receiving from queue %s: %w", name, err)
	}
	var out []api.QueueMessage
	for m := range batch.Messages() {
		qm := api.QueueMessage{MessageId: m.Headers().Get(hdrMessageID), Body: string(m.Data())}
		if md, err := m.Metadata(); err == nil {
			qm.SentTimestamp = md.Timestamp.UnixMilli()
		}
		for k, v := range m.Headers() {
			if a, ok := strings.CutPrefix(k, hdrAttrPrefix); ok && len(v) > 0 {
				if qm.MessageAttributes == nil {
					qm.MessageAttributes = map[string]string{}
				}
				qm.MessageAttributes[a] = v[0]
			}
		}
		if err := m.DoubleAck(ctx); err != nil {
			return out, fmt.Errorf("deleting a message of queue %s: %w", name, err)
		}
		out = append(out, qm)
	}
	if err := batch.Error(); err != nil && len(out) == 0 && ctx.Err() == nil {
		s.mu.Lock()
		delete(s.qcons, name)
		s.mu.Unlock()
		return nil, fmt.Errorf("receiving from queue %s: %w", name, err)
	}
	return out, nil
}

func (s *Service) receiver(ctx context.Context, name string) (jetstream.Consumer, error) {
	s.mu.Lock()
	c := s.qcons[name]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := s.queues.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:           receiverPrefix + name,
		FilterSubject:     queuePrefix + name,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           30 * time.Second,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, fmt.Errorf("opening queue %s: %w", name, err)
	}
	s.mu.Lock()
	s.qcons[name] = c
	s.mu.Unlock()
	return c, nil
}
