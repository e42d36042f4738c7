// Package fnspec holds Spec, the resolved configuration of one function
// version that a worker needs to build an execution environment for it.
//
// The invoke service builds a Spec from the registry's function config,
// assignment carries it (Request.Spec, CreateRequest.Spec) to whichever
// worker placement picks, and the worker turns it into a sandbox.Spec and
// the agent's init message. Those three run in different roles, and later
// on different hosts, so the type lives in this leaf package that imports
// nothing of Ignis: assignment need not link the worker's drivers and
// runtimes, nor the worker the journal and placement.
//
// A Spec crosses the network as JSON; it round-trips through encoding/json
// exactly (fnspec_test.go holds it to that).
package fnspec

import "time"

// InitSnapStart is the InitType of environments restored from a SnapStart
// snapshot (and of the init that makes it).
const InitSnapStart = "snap-start"

// Spec is everything a worker needs to create an execution environment for
// one function version. It is immutable for the life of the environment.
// It is plain data: copy it by value.
type Spec struct {
	FunctionName string `json:"functionName"`
	// FunctionARN is unqualified.
	FunctionARN string `json:"functionArn"`
	// Version is $LATEST or N.
	Version  string `json:"version"`
	Runtime  string `json:"runtime"`
	Handler  string `json:"handler"`
	MemoryMB int    `json:"memoryMb"`
	// Timeout is the invoke timeout; nanoseconds in JSON.
	Timeout     time.Duration     `json:"timeoutNs"`
	EphemeralMB int               `json:"ephemeralMb"`
	Environment map[string]string `json:"environment"`
	CodeSha256  string            `json:"codeSha256"`
	// InitType is AWS_LAMBDA_INITIALIZATION_TYPE: on-demand (default),
	// provisioned-concurrency or snap-start.
	InitType string `json:"initType"`
	// Snapshot names the SnapStart snapshot (snapshot.Key) environments
	// of this version restore from; with InitType snap-start. A worker
	// without it (or whose driver cannot restore) initialises on demand.
	Snapshot string `json:"snapshot,omitempty"`
	// Network is the sandbox's network policy (tags ignis:network*).
	Network Network `json:"network"`
	// Key is the caller's label for this immutable configuration; the
	// worker reports it back when listing its sandboxes.
	Key string `json:"key"`
}
