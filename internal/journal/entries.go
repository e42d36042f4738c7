package journal

import (
	"encoding/json"
	"fmt"
	"time"
)

// Type identifies the kind of an entry on the wire. Numbers are explicit and
// never reused or renumbered: old journals (and testdata/) hold them forever.
// See the checklist in doc.go before adding one.
type Type uint16

// Entry types. Append only.
const (
	// TypeInvalid is never written; a zero type means a corrupt entry.
	TypeInvalid Type = 0
	// TypeSandboxCreating: a sandbox is about to be created (write-ahead).
	TypeSandboxCreating Type = 1
	// TypeSandboxReady: a sandbox exists and can serve invokes.
	TypeSandboxReady Type = 2
	// TypeSandboxDestroyed: a sandbox is gone (or never came to be).
	TypeSandboxDestroyed Type = 3
	// TypeCheckpoint: the partition's full sandbox table; earlier entries
	// of the subject may be purged.
	TypeCheckpoint Type = 4
)

func (t Type) String() string {
	switch t {
	case TypeInvalid:
		return "Invalid"
	case TypeSandboxCreating:
		return "SandboxCreating"
	case TypeSandboxReady:
		return "SandboxReady"
	case TypeSandboxDestroyed:
		return "SandboxDestroyed"
	case TypeCheckpoint:
		return "Checkpoint"
	}
	return fmt.Sprintf("Type(%d)", uint16(t))
}

// currentVersion is the schema version this binary writes for each type.
// Decoding accepts every version from 1 to current (see decodeBody).
func currentVersion(t Type) uint8 {
	switch t {
	case TypeSandboxCreating, TypeSandboxReady, TypeSandboxDestroyed, TypeCheckpoint:
		return 1
	}
	return 0
}

// Entry is one journal record. The concrete types are the structs below
// and Unknown.
type Entry interface {
	// Type is the entry's wire type.
	Type() Type
}

// SandboxCreating is written before the worker is asked to create the
// sandbox, so that a crash between the two leaves a trace to clean up.
// Recovery treats a sandbox that never reached Ready as unusable: it is
// destroyed on its worker if it exists there.
type SandboxCreating struct {
	SandboxID string    `json:"sandbox_id"`
	Function  string    `json:"function"` // function name: concurrency and partition
	Key       string    `json:"key"`      // sandbox pool: one immutable function configuration
	WorkerID  string    `json:"worker_id"`
	MemoryMB  int       `json:"memory_mb"`
	At        time.Time `json:"at"`
}

// SandboxReady is written once the worker created the sandbox. It is
// self-contained: recovery needs no earlier entry to use the sandbox.
type SandboxReady struct {
	SandboxID string `json:"sandbox_id"`
	Function  string `json:"function"`
	Key       string `json:"key"`
	WorkerID  string `json:"worker_id"`
	MemoryMB  int    `json:"memory_mb"`
	// Handle is the driver's sandbox.Handle as JSON, opaque here.
	Handle json.RawMessage `json:"handle,omitempty"`
	At     time.Time       `json:"at"`
}

// Reasons a sandbox is destroyed, for SandboxDestroyed.Reason. Free text is
// allowed; these are the ones Ignis writes.
const (
	ReasonIdleExpired  = "idle-expired"  // keep-alive window passed
	ReasonIdleCap      = "idle-cap"      // too many idle sandboxes for the function
	ReasonTimeout      = "timeout"       // invoke timed out; sandbox replaced
	ReasonCrash        = "crash"         // runtime or agent exited
	ReasonOutOfMemory  = "out-of-memory" // memory limit hit
	ReasonCreateFailed = "create-failed" // worker could not create it
	ReasonLost         = "lost"          // worker no longer has it (found at recovery)
	ReasonIncomplete   = "incomplete"    // creation never finished before a crash
	ReasonWorkerGone   = "worker-gone"   // its worker left the fleet
	ReasonEvicted      = "evicted"       // removed by an operator or a drain
)

// SandboxDestroyed is written once a sandbox is gone from its worker (or was
// never created). Its capacity is free again.
type SandboxDestroyed struct {
	SandboxID string    `json:"sandbox_id"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// Checkpoint is the whole table of one partition at a point in the log.
// Replaying a checkpoint replaces the state built so far; Compact purges the
// entries before it.
type Checkpoint struct {
	Creating []SandboxCreating `json:"creating,omitempty"`
	Ready    []SandboxReady    `json:"ready,omitempty"`
	At       time.Time         `json:"at"`
}

// Unknown is an entry this binary cannot interpret: a type it does not know
// or a schema version newer than it writes. See the policy in doc.go.
type Unknown struct {
	T       Type
	Version uint8
	Body    []byte
}

func (*SandboxCreating) Type() Type  { return TypeSandboxCreating }
func (*SandboxReady) Type() Type     { return TypeSandboxReady }
func (*SandboxDestroyed) Type() Type { return TypeSandboxDestroyed }
func (*Checkpoint) Type() Type       { return TypeCheckpoint }

// Type returns the unknown entry's wire type.
func (u *Unknown) Type() Type { return u.T }

// newEntry returns an empty entry of a known type, or nil.
func newEntry(t Type) Entry {
	switch t {
	case TypeSandboxCreating:
		return new(SandboxCreating)
	case TypeSandboxReady:
		return new(SandboxReady)
	case TypeSandboxDestroyed:
		return new(SandboxDestroyed)
	case TypeCheckpoint:
		return new(Checkpoint)
	}
	return nil
}
