// Package async runs asynchronous invocations (InvocationType Event and the
// legacy InvokeAsync): a durable JetStream event queue, pollers that run
// each event through the synchronous invoke path, Lambda's retries and
// maximum event age, destinations and dead-letter queues.
//
//	frontend ─Invoke(Event)─► invoke.Service ─Enqueue─► stream IGNIS_ASYNC (work queue)
//	          202 after the PubAck                        subject ignis.async.<function>
//	                                                         │ durable consumer fn_<function>
//	             dispatcher: round-robin over functions      ▼
//	             with events, ≤ MaxPollers at once, ◄── FetchNoWait(1)
//	             each function ≤ its fair share
//	                      │
//	                      ▼ poller: before() ── expired ──────────────► OnFailure + DLQ, ack
//	                      │          └─ retry not due ─► Nak(delay)
//	                      ▼ invoke.Service.Invoke(RequestResponse)  (limits, throttles, logs)
//	                      │ after():
//	                      ├─ OK ─────────────► OnSuccess record ──────────────────────► ack
//	                      ├─ function error ─► retries left? republish Attempts+1,
//	                      │                    NotBefore = now + delay·2^(n-1) ─────────► ack
//	                      │                    else RetriesExhausted: OnFailure + DLQ ─► ack
//	                      └─ throttle / platform error ─► Nak(backoff), no attempt used
//
// # Durability
//
// Enqueue returns after JetStream stored the event. A poller acks only
// after the outcome is stored: the retry republished, the destination
// records and dead letter stored, the function's log lines flushed. A
// crash before the ack redelivers the event after AckWait (at least once;
// JetStream de-duplicates the republished retry and the records by id).
// While an attempt runs the poller sends in-progress heartbeats, so a long
// function is not redelivered to another poller.
//
// # Fairness
//
// Each function has its own subject and durable consumer. The dispatcher
// keeps a ring of functions with queued events and hands pollers out
// round-robin; a function never holds more than ceil(MaxPollers/ready)
// pollers while others wait, so one function's flood cannot starve
// another. Functions enter the ring on Enqueue (at once) and on a periodic
// scan of the stream's subjects (events from before a restart, retries
// coming due); an empty fetch takes a function out.
//
// # Destinations
//
// A destination is a function ARN (the invocation record is queued as an
// Event invoke of it) or an SQS/SNS ARN, which names an Ignis queue: the
// subject ignis.queue.<name> of stream IGNIS_QUEUES, read with
// `ignis queue receive NAME` (ReceiveQueue). The function's
// DeadLetterConfig target gets the original event with RequestID,
// ErrorCode and ErrorMessage attributes, as Lambda sends it.
//
// decide.go is the pure core (what to do with an event, given its state,
// config, outcome and the time); its table tests cover every rule.
package async
