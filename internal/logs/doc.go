// Package logs stores function logs in NATS JetStream and serves them
// through a CloudWatch Logs–compatible JSON API.
//
// # Model
//
// As in CloudWatch, a log group holds log streams, which hold events
// (timestamp + message). Lambda's conventions: GroupName("f") is
// "/aws/lambda/f"; each execution environment writes one stream named by
// NewStreamName, "2024/05/01/[$LATEST]<32 hex>".
//
// # Storage
//
//	Append ──PublishAsync──► stream IGNIS_LOGS   subject logs.<group>.<stream>
//	   │                        (file storage, MaxAge 7d, MaxBytes 1 GiB, discard old)
//	   └─ in-memory deltas ──every 1s──► KV IGNIS_LOGS_META  g.<group>, s.<group>.<stream>
//	                                      (TTL = MaxAge; CAS merges writers)
//
// Names become subject tokens / KV key fragments by escaping every byte
// outside [A-Za-z0-9_-/] as "=XX", so "/aws/lambda/f" stays readable.
//
// One JetStream message carries the events of one stream appended within
// Config.Linger (20 ms; up to 10,000 events / 1 MiB, split beyond): for the
// worker that is one invoke's lines, START…REPORT, or those of the invokes
// a busy sandbox ran in that time. Batching, rather than a message per line
// or per Append, pays the per-message costs (subject, publish ack, index
// entry in the file store) once per batch; at one invoke per millisecond
// they were the largest part of the server's CPU per warm invoke after
// HTTP. The lines of one invoke are always read together. An event's
// position — (batch sequence, index in batch) — is its event ID and the
// basis of pagination tokens; reading the newest events of a busy stream
// costs no more than reading its newest batches.
//
// Append never waits for the disk: it encodes the events into the
// stream's open batch, taking space from a bounded byte budget
// (MaxBufferedBytes — the only time it may block, honouring ctx). A timer,
// a full batch or Flush publishes the waiting batches, in the order they
// were started, asynchronously and at most MaxPending unacknowledged; the
// ack (or error) callback releases the budget. Flush publishes at once and
// waits for all earlier appends to be stored, then writes metadata; Close
// flushes and stops. Whoever needs an event durable before acting on it
// (the async pollers, before acking an event) calls Flush.
//
// Reads (Events, and Tail through it) first publish what lingers and wait
// for it, so a read sees every event this Store appended before it: a
// longer Linger costs readers nothing. At about 1,200 invokes/s a 20 ms
// Linger stores some 25 invokes' lines per message, against 6 at 5 ms.
//
// Reads create a short-lived ephemeral consumer filtered on
// the group's (or the chosen streams') subjects. Because an event's
// timestamp must lie within MaxEventSkew (2h) of its ingestion time —
// Append rejects others, PutLogEvents reports them in rejectedLogEventsInfo
// as CloudWatch does — a time-bounded read starts at startTime-MaxEventSkew
// rather than at the beginning of a 7-day stream.
//
// Metadata is eventually consistent, like CloudWatch's lastEventTimestamp:
// a process sees its own unflushed deltas at once, other processes after
// the next flush; existence checks fall back to the event stream's subjects.
// A stream whose events have all expired disappears from listings when its
// metadata expires (CloudWatch would keep the empty stream).
//
// # API
//
// Handler serves the awsJson1.1 protocol (POST /, X-Amz-Target
// Logs_20140328.<Op>): CreateLogGroup, CreateLogStream, DeleteLogGroup,
// DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents and
// PutLogEvents. `aws logs tail --follow` (AWS CLI v2) polls FilterLogEvents
// every 5 seconds with startTime = newest timestamp seen, de-duplicating
// by eventId, and keeps calling without sleeping while nextToken is set —
// so FilterLogEvents sets nextToken only when more events are waiting.
// Filter patterns support CloudWatch's term syntax (see Pattern).
package logs
