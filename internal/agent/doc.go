// Package agent is the code of ignis-agent, the static binary that runs as
// PID 1 inside every sandbox. It talks to the worker over agentproto on its
// stdio, serves the Lambda Runtime and Extensions APIs (internal/runtimeapi)
// to the function's runtime and extensions, supervises their processes,
// reaps zombies, and turns their output into Log messages.
//
// Lifecycle (worker messages on the left, agent messages on the right):
//
//	start ──► Hello
//	Init ──► listen on RuntimeAPIAddr (real address into AWS_LAMBDA_RUNTIME_API)
//	          start /opt/extensions/*, wait until each registered (or exited)
//	          close registration, start the runtime (Init.Bootstrap, else
//	          <task>/bootstrap, else <opt>/bootstrap)
//	          ├─ runtime and every extension called next ──► InitDone
//	          └─ /init/error | runtime exit | InitTimeoutMs ──► InitError
//	Invoke ──► event to the runtime's /next (and INVOKE to extensions)
//	          runtime stdout/stderr ──► Log (tagged with the request id)
//	          /response | /error | 413 ──► Result
//	(any time) runtime process exits ──► RuntimeExit
//	Shutdown ──► SIGTERM runtime (only if extensions registered), SIGKILL
//	          SHUTDOWN to extensions, SIGKILL what is left at the deadline
//	          ──► ShutdownDone, exit 0
//	stdin EOF (worker died) ──► SIGKILL everything, exit 1
//
// Processes are started with os.StartProcess and never waited on through
// os.Process: one reaper goroutine calls wait4(-1) on SIGCHLD and hands each
// tracked pid its status, so reaping orphans (the agent is PID 1, or a
// child subreaper natively) never steals the runtime's exit status.
//
// Goroutines: the frame reader (decodes Invoke and hands it straight to the
// Runtime API, no hop), the main loop (Init, Shutdown, process exits), the
// reaper, two log pumps per process, and the HTTP server's. The warm invoke
// path is reader → /next handler → runtime → /response handler → stdout,
// with no goroutine started and no payload re-encoded.
package agent
