// Package runtimeapi serves the Lambda Runtime API (2018-06-01) and the
// Extensions API (2020-01-01) inside a sandbox. The agent owns one Server per
// execution environment; the runtime and the extensions are its only clients.
//
// One file per endpoint (next.go, response.go, error.go, init_error.go,
// ext_register.go, ext_next.go, ext_init_error.go, ext_exit_error.go); the
// state they share lives in server.go.
//
// Runtime state, as seen through the API:
//
//	          first GET /next                 Invoke (agent)
//	init ─────────────────────────► idle ──────────────────────► running
//	 │ POST /runtime/init/error      ▲  GET /next                   │ POST {id}/response
//	 ▼                               └──────────── answered ◄────────┘ POST {id}/error
//	initFailed (every call 403)
//
// Init is complete (InitReady) when the runtime and every registered
// extension have called their next endpoint once; registration closes when
// the agent calls CloseRegistration (before it starts the runtime).
//
// The warm path allocates little: the event payload is written as received
// from the worker (never re-encoded), the response body is read into one
// buffer the Server reuses, and the Result reaches the worker through the
// Hooks.Result callback on the handler goroutine, without a channel hop.
package runtimeapi
