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
// Request and Result are the invoke path's own types: the frontend and the
// async pollers build Requests and read Results, and this package imports
// neither of them. The Service implements frontend.Invoker and
// async.Invoker (asserted where they are wired, in internal/server). The
// async pollers run their events through the same Service, so concurrency
// limits, throttles and logs apply to both.
//
// Local adapts in-process workers to the assignment.Workers boundary and to
// this package's Workers; a networked adapter can take its place when
// workers run as separate processes.
package invoke
