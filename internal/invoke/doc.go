// Package invoke runs synchronous invocations: the path from a resolved
// function to a result.
//
//	frontend ──Invoke──► Service
//	                       │ pick the version (weighted alias routing)
//	                       │ assignment.Acquire ── warm idle sandbox, or cold
//	                       │                       start on a placed worker
//	                       │ Workers.Invoke ─────► worker ─► agent ─► runtime
//	                       │ assignment.Release (sandbox idle again, or retired)
//	                       ▼
//	                     result: payload, function error, executed version, log tail
//
// The Service implements frontend.Invoker. The async pollers run their
// events through the same Service, so concurrency limits, throttles and logs
// apply to both.
//
// Local adapts in-process workers to the assignment.Workers boundary and to
// this package's Workers; a networked adapter can take its place when
// workers run as separate processes.
package invoke
