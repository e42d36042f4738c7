// Package worker is the host agent: it owns the sandboxes on one host.
//
// For the assignment service a worker creates execution environments
// (CreateSandbox: fetch code into the local cache, create a sandbox through
// the configured sandbox.Driver, run the agent's init), runs one invoke at a
// time in each (Invoke), and destroys them (Destroy). It enforces the
// function timeout, classifies failures the way Lambda reports them
// (Sandbox.Timedout, Runtime.ExitError, Runtime.OutOfMemory), measures
// duration, billed duration, init duration and max memory used, and writes
// the START / END / REPORT lines around each invoke's output to the log sink.
//
// Environment lifecycle as the worker sees it:
//
//	CreateSandbox ─► creating ─► initialising ─► ready ⇄ invoking
//	                   │              │            │        │ timeout, crash, OOM
//	                   └── error ─────┴────────────┴────────┴──► dead ─► Destroy
//
// A dead environment is destroyed at once; the caller sees the invoke's
// function error and never gets the sandbox back. Every live sandbox's Handle
// is persisted under the worker's data directory before CreateSandbox
// returns, so a restarted worker can Recover (reap) what a killed one left.
//
// SnapStart (snapstart.go): Snapshot initialises a published version in a
// sandbox and checkpoints it into the worker's snapshot.Store; a
// CreateSandbox whose spec names a snapshot this worker holds restores it
// (restoring ─► ready) instead of creating and initialising, and its first
// invoke reports Restore Duration instead of Init Duration.
//
// The warm path (Invoke on a ready sandbox) does no disk write: logs go to
// the sink, which buffers, and the handle was written at creation.
package worker
