// Package workerrpc carries the worker boundary between hosts: a worker
// node serves its sandboxes (create, invoke, destroy, list) to the
// assignment service and the frontends of other nodes, over NATS
// request/reply on the cluster every node already belongs to.
//
// # Why NATS and not a direct connection
//
// The cluster's NATS connections are already authenticated (routes by the
// cluster secret, clients by their credentials), so a process that is not
// a member cannot reach a worker's subjects: no second listener, key or
// handshake to get right. A request crosses one route between the two
// nodes' embedded servers, so a remote warm invoke costs one extra network
// round trip over a local one, which BENCHMARKS.md measures against the
// budget of issue 13. Messages carry up to embednats.MaxPayload (8 MB), room
// for Lambda's 6 MB payloads both ways.
//
// # Wire
//
// Each worker subscribes to ignis.worker.<id>.<op>. Metadata travels as one
// JSON header (Ignis-Call on a request, Ignis-Result or Ignis-Error on the
// reply); an invoke's payload is the message body untouched, so 6 MB is not
// encoded twice. An error keeps its errdefs class (and a runtime init
// failure its *worker.InitError) across the wire.
package workerrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/worker"
)

const (
	subjectPrefix = "ignis.worker."

	opCreate  = "create"
	opDestroy = "destroy"
	opList    = "list"
	opInvoke  = "invoke"

	hdrCall   = "Ignis-Call"
	hdrResult = "Ignis-Result"
	hdrError  = "Ignis-Error"
)

// MinPayload is the smallest max_payload of a NATS server that can carry
// the worker boundary: a 6 MB payload and its metadata.
const MinPayload = 6<<20 + 64<<10

func subject(workerID, op string) string { return subjectPrefix + workerID + "." + op }

// ValidID reports whether id can name a worker on the wire: one NATS
// subject token, so a worker ID can never address another's subjects.
func ValidID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("worker id %q: want 1–64 characters: %w", id, errdefs.ErrInvalidArgument)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("worker id %q: only letters, digits, - and _: %w", id, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// call is the Ignis-Call header: what a request asks besides its body.
type call struct {
	// Deadline is the caller's, in Unix nanoseconds (0: none): the worker
	// gives up when the caller has.
	Deadline  int64  `json:"deadline,omitempty"`
	SandboxID string `json:"sandbox,omitempty"`
	// The invoke's metadata (worker.InvokeRequest without its payload).
	RequestID     string `json:"requestId,omitempty"`
	InvokedARN    string `json:"invokedArn,omitempty"`
	ClientContext string `json:"clientContext,omitempty"`
	TraceID       string `json:"traceId,omitempty"`
	TenantID      string `json:"tenantId,omitempty"`
	Tail          bool   `json:"tail,omitempty"`
}

// result is the Ignis-Result header of an invoke's reply
// (worker.InvokeResult without its payload).
type result struct {
	FunctionError string        `json:"functionError,omitempty"`
	ErrorType     string        `json:"errorType,omitempty"`
	LogTail       []byte        `json:"logTail,omitempty"`
	Duration      time.Duration `json:"duration"`
	MaxMemory     uint64        `json:"maxMemory,omitempty"`
	Dead          bool          `json:"dead,omitempty"`
}

// wireError is the Ignis-Error header.
type wireError struct {
	Class   string            `json:"class"`
	Message string            `json:"message"`
	Init    *worker.InitError `json:"init,omitempty"`
}

// classes names the errdefs classes on the wire; anything else is
// "internal".
var classes = []struct {
	name string
	err  error
}{
	{"not-found", errdefs.ErrNotFound},
	{"already-exists", errdefs.ErrAlreadyExists},
	{"invalid-argument", errdefs.ErrInvalidArgument},
	{"invalid-content", errdefs.ErrInvalidContent},
	{"conflict", errdefs.ErrConflict},
	{"precondition-failed", errdefs.ErrPreconditionFailed},
	{"too-large", errdefs.ErrTooLarge},
	{"throttled", errdefs.ErrThrottled},
	{"unavailable", errdefs.ErrUnavailable},
	{"unauthenticated", errdefs.ErrUnauthenticated},
	{"deadline", context.DeadlineExceeded},
	{"canceled", context.Canceled},
}

func encodeError(err error) string {
	we := wireError{Class: "internal", Message: err.Error()}
	for _, c := range classes {
		if errors.Is(err, c.err) {
			we.Class = c.name
			break
		}
	}
	var ie *worker.InitError
	if errors.As(err, &ie) {
		we.Init = ie
	}
	b, _ := json.Marshal(we) // plain strings and bytes: cannot fail
	return string(b)
}

// remoteError is an error a worker reported: its message, its class.
type remoteError struct {
	msg   string
	class error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.class }

func decodeError(workerID, h string) error {
	var we wireError
	if err := json.Unmarshal([]byte(h), &we); err != nil {
		return fmt.Errorf("worker %s: unreadable error %q: %w", workerID, h, errdefs.ErrInternal)
	}
	if we.Init != nil {
		return we.Init
	}
	class := errdefs.ErrInternal
	for _, c := range classes {
		if c.name == we.Class {
			class = c.err
			break
		}
	}
	msg := we.Message
	if !strings.HasPrefix(msg, "worker ") {
		msg = "worker " + workerID + ": " + msg
	}
	return &remoteError{msg: msg, class: class}
}
