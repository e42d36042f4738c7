// Package bench is `ignis bench`: it deploys its own echo functions (an
// aws-lambda-go binary compiled on the fly, Python, Node.js) to an Ignis
// endpoint and measures, in one run, with a plain loopback HTTP echo in
// the same process as the yardstick (DESIGN §6: ratios, not absolute
// times):
//
//   - warm invoke latency (p50/p90/p99) and throughput per runtime,
//     payload and concurrency, each beside its own loopback baseline;
//   - cold starts per runtime and driver, split into placement, code
//     fetch, sandbox create, runtime init and first response, next to the
//     same runtime started natively through an ignis-agent;
//   - the sandbox creation rate and the memory per idle sandbox;
//   - CPU per warm invoke, split into platform (server, agent, helpers)
//     and function.
//
// Embedded mode (internal/cli starts the server in this process through
// a Starter) is what makes the CPU, memory and phase figures possible:
//
//	client goroutines ──SigV4/HTTP──▶ server (same process) ──▶ sandboxes (child processes)
//	   pprof label "ignisbench"          getrusage(SELF) minus       /proc/<pid>/task/*/schedstat,
//	                                     the labelled share          smaps_rollup Pss
//
// The phase split comes from the worker's "sandbox ready" debug record
// (worker.Env's CodeFetch, SandboxCreate, Init), which a PhaseRecorder
// picks out of the embedded server's log; no API was added for it.
package bench
