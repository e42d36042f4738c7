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
// HTTP is served by the package itself (conn.go, request.go): a strict
// HTTP/1.1 server for exactly these endpoints — keep-alive, Content-Length
// and chunked bodies with trailers, Expect: 100-continue, HTTP/1.0 clients;
// anything malformed gets 400 (or 413/417/431/501/505) and the connection
// closes. Each connection has one goroutine, one bufio reader, one request
// arena and one response buffer, so the warm path allocates nothing of its
// own.
//
// A /next with no event waiting parks its connection; Invoke then writes
// the event onto the socket from the caller's goroutine (the agent's frame
// reader), in one write: headers plus the payload as received from the
// worker, never re-encoded. The response body is read into one buffer the
// Server reuses, and the Result reaches the worker through the Hooks.Result
// callback on the connection's goroutine, without a channel hop. Socket
// I/O uses raw system calls on the non-blocking descriptors (see conn.go
// for why).
package runtimeapi
