// Package agentproto is the framed, versioned message stream between a worker
// (host side) and the ignis-agent (PID 1 inside a sandbox). It runs over the
// agent's stdin (worker → agent) and stdout (agent → worker); the agent's
// stderr carries its own diagnostics only.
//
// Every message type is listed in this file. A frame is
//
//	uint32 big-endian length n | uint8 type | n-1 bytes body
//
// Control bodies are JSON; the bodies on the invoke path (Invoke, Result, Log)
// carry a small JSON header followed by raw bytes, so payloads are never
// re-encoded. Unknown message types are an error: both ends ship together
// (the agent binary is provided by the worker), and Hello carries the protocol
// version so a mismatch is caught before any work is done.
//
// Conversation:
//
//	agent  → Hello
//	worker → Init            agent starts extensions and the runtime
//	agent  → InitDone | InitError
//	worker → Invoke          (one at a time)
//	agent  → Log*  Result
//	worker → Shutdown
//	agent  → ShutdownDone    then exits
//
// SnapStart: an Init with Snapshot set ends in InitDone once the runtime has
// run its before-snapshot hooks and waits to be restored; the worker then
// checkpoints the sandbox. Each sandbox restored from that checkpoint
// starts without Hello:
//
//	worker → Restore         agent resumes the runtime (after-restore hooks)
//	agent  → RestoreDone | RestoreError
//	worker → Invoke …        as above
//
// At any time the agent may send Log, or RuntimeExit when the runtime process
// dies (the worker then fails the in-flight invoke and discards the sandbox).
package agentproto

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"
)

// Version is the protocol version. Bump it when a body changes shape.
const Version = 2

// MaxFrame bounds a frame: a 6 MB payload plus headers fits with room to spare.
const MaxFrame = 8 << 20

// Type identifies a message. Numbers are part of the protocol: never renumber.
type Type uint8

// Worker → agent.
const (
	TypeInit     Type = 1 // body: JSON Init
	TypeInvoke   Type = 2 // body: header-framed Invoke + payload
	TypeShutdown Type = 3 // body: JSON Shutdown
	TypeRestore  Type = 4 // body: JSON Restore
)

// Agent → worker.
const (
	TypeHello        Type = 64 // body: JSON Hello
	TypeInitDone     Type = 65 // body: JSON InitDone
	TypeInitError    Type = 66 // body: JSON InitError
	TypeResult       Type = 67 // body: header-framed Result + response bytes
	TypeLog          Type = 68 // body: header-framed Log + line bytes
	TypeRuntimeExit  Type = 69 // body: JSON RuntimeExit
	TypeShutdownDone Type = 70 // body: empty
	TypeRestoreDone  Type = 71 // body: JSON RestoreDone
	TypeRestoreError Type = 72 // body: JSON InitError
)

func (t Type) String() string {
	switch t {
	case TypeInit:
		return "Init"
	case TypeInvoke:
		return "Invoke"
	case TypeShutdown:
		return "Shutdown"
	case TypeHello:
		return "Hello"
	case TypeInitDone:
		return "InitDone"
	case TypeInitError:
		return "InitError"
	case TypeResult:
		return "Result"
	case TypeLog:
		return "Log"
	case TypeRuntimeExit:
		return "RuntimeExit"
	case TypeShutdownDone:
		return "ShutdownDone"
	case TypeRestore:
		return "Restore"
	case TypeRestoreDone:
		return "RestoreDone"
	case TypeRestoreError:
		return "RestoreError"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Hello is the agent's first message.
type Hello struct {
	Version int `json:"version"`
	PID     int `json:"pid"`
}

// Init tells the agent how to start the function's runtime.
type Init struct {
	// Bootstrap is the runtime's argv, already resolved by the worker
	// (e.g. ["/var/task/bootstrap"] or ["/usr/bin/python3", "/var/runtime/python/bootstrap.py"]).
	// When empty the agent searches /var/task/bootstrap then /opt/bootstrap and
	// fails with Runtime.InvalidEntrypoint if neither is executable.
	Bootstrap []string `json:"bootstrap,omitempty"`
	// Env is the runtime's complete environment (KEY=VALUE), as Lambda sets it.
	Env []string `json:"env"`
	// Dir is the working directory (normally /var/task).
	Dir string `json:"dir"`
	// FunctionName, FunctionVersion and Handler answer extension registration.
	FunctionName    string `json:"functionName"`
	FunctionVersion string `json:"functionVersion"`
	Handler         string `json:"handler"`
	// RuntimeAPIAddr is where the Runtime API listens (127.0.0.1:9001).
	RuntimeAPIAddr string `json:"runtimeApiAddr"`
	// InitTimeoutMs bounds the init phase (extensions + runtime until its
	// first /next). 0 means no bound.
	InitTimeoutMs int64 `json:"initTimeoutMs"`
	// Snapshot makes this the init of a SnapStart snapshot: init is done
	// when the runtime, its before-snapshot hooks run, calls
	// /runtime/restore/next (Env says AWS_LAMBDA_INITIALIZATION_TYPE=snap-start).
	Snapshot bool `json:"snapshot,omitempty"`
}

// Restore tells an agent restored from a snapshot to resume its runtime.
type Restore struct {
	// TimeoutMs bounds the after-restore hooks (Lambda: 10 s).
	TimeoutMs int64 `json:"timeoutMs"`
}

// RestoreDone reports that the restored runtime ran its after-restore
// hooks and waits on /next.
type RestoreDone struct {
	DurationNs int64 `json:"durationNs"`
}

// InitDone reports a successful init: the runtime (and every extension) is
// waiting on /next.
type InitDone struct {
	DurationNs int64 `json:"durationNs"`
}

// InitError reports a failed init.
type InitError struct {
	// ErrorType is e.g. Runtime.ImportModuleError, Runtime.InvalidEntrypoint,
	// Runtime.ExitError.
	ErrorType string `json:"errorType"`
	// Body is the JSON the runtime posted to /runtime/init/error, or one the
	// agent built ({"errorMessage","errorType"}).
	Body       json.RawMessage `json:"body"`
	DurationNs int64           `json:"durationNs"`
}

// Invoke is one event for the runtime. Payload travels after the header.
type Invoke struct {
	RequestID       string `json:"requestId"`
	DeadlineMs      int64  `json:"deadlineMs"` // Unix epoch milliseconds
	InvokedARN      string `json:"invokedArn"`
	TraceID         string `json:"traceId,omitempty"`
	ClientContext   string `json:"clientContext,omitempty"`   // decoded JSON
	CognitoIdentity string `json:"cognitoIdentity,omitempty"` // JSON
	TenantID        string `json:"tenantId,omitempty"`
	ContentType     string `json:"contentType,omitempty"`
	Payload         []byte `json:"-"`
}

// Result is the outcome of one Invoke. Body travels after the header.
type Result struct {
	RequestID string `json:"requestId"`
	// Error is true when the runtime called /error (or the response was
	// refused, e.g. too large); Body is then the error JSON.
	Error bool `json:"error,omitempty"`
	// ErrorType is the Lambda-Runtime-Function-Error-Type header or the
	// agent's own classification (Function.ResponseSizeTooLarge).
	ErrorType   string `json:"errorType,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	Body        []byte `json:"-"`
}

// Log stream identifiers.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamAgent  = "agent" // the agent's own notices (e.g. extension crashes)
)

// Log is one line of output from the runtime or an extension, without the
// trailing newline. Line travels after the header.
type Log struct {
	Stream string `json:"stream"`
	// RequestID is the invoke in flight when the line was written, if any.
	RequestID string `json:"requestId,omitempty"`
	Line      []byte `json:"-"`
}

// RuntimeExit reports that the runtime process ended.
type RuntimeExit struct {
	// Status is Go's ProcessState string: "exit status 1", "signal: killed".
	Status   string `json:"status"`
	ExitCode int    `json:"exitCode"` // -1 when killed by a signal
	Signal   string `json:"signal,omitempty"`
}

// Shutdown asks the agent to stop the runtime and extensions and exit.
type Shutdown struct {
	Reason     string `json:"reason"` // spindown | timeout | failure
	DeadlineMs int64  `json:"deadlineMs"`
}

// ErrFrameTooLarge is returned for frames above MaxFrame.
var ErrFrameTooLarge = errors.New("agentproto: frame too large")

// Writer writes frames. It is safe for concurrent use: each frame is written
// whole, under a lock.
type Writer struct {
	mu  sync.Mutex
	w   *bufio.Writer // guarded by mu
	hdr [5]byte       // guarded by mu
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10)}
}

// WriteFrame writes one frame made of head followed by tail, and flushes.
func (fw *Writer) WriteFrame(t Type, head, tail []byte) error {
	n := 1 + len(head) + len(tail)
	if n > MaxFrame {
		return ErrFrameTooLarge
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	binary.BigEndian.PutUint32(fw.hdr[:4], uint32(n))
	fw.hdr[4] = byte(t)
	if _, err := fw.w.Write(fw.hdr[:]); err != nil {
		return err
	}
	if _, err := fw.w.Write(head); err != nil {
		return err
	}
	if _, err := fw.w.Write(tail); err != nil {
		return err
	}
	return fw.w.Flush()
}

// WriteJSON writes a frame whose body is v as JSON.
func (fw *Writer) WriteJSON(t Type, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("agentproto: encoding %v: %w", t, err)
	}
	return fw.WriteFrame(t, b, nil)
}

// WriteHeaded writes a frame whose body is a uint32 length, header as JSON,
// then raw bytes.
func (fw *Writer) WriteHeaded(t Type, header any, raw []byte) error {
	h, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("agentproto: encoding %v: %w", t, err)
	}
	head := make([]byte, 4+len(h))
	binary.BigEndian.PutUint32(head, uint32(len(h)))
	copy(head[4:], h)
	return fw.WriteFrame(t, head, raw)
}

// Convenience writers for each message.

func (fw *Writer) Hello(m Hello) error             { return fw.WriteJSON(TypeHello, m) }
func (fw *Writer) Init(m Init) error               { return fw.WriteJSON(TypeInit, m) }
func (fw *Writer) InitDone(m InitDone) error       { return fw.WriteJSON(TypeInitDone, m) }
func (fw *Writer) InitError(m InitError) error     { return fw.WriteJSON(TypeInitError, m) }
func (fw *Writer) Invoke(m Invoke) error           { return fw.WriteHeaded(TypeInvoke, m, m.Payload) }
func (fw *Writer) Result(m Result) error           { return fw.WriteHeaded(TypeResult, m, m.Body) }
func (fw *Writer) Log(m Log) error                 { return fw.WriteHeaded(TypeLog, m, m.Line) }
func (fw *Writer) RuntimeExit(m RuntimeExit) error { return fw.WriteJSON(TypeRuntimeExit, m) }
func (fw *Writer) Shutdown(m Shutdown) error       { return fw.WriteJSON(TypeShutdown, m) }
func (fw *Writer) ShutdownDone() error             { return fw.WriteFrame(TypeShutdownDone, nil, nil) }
func (fw *Writer) Restore(m Restore) error         { return fw.WriteJSON(TypeRestore, m) }
func (fw *Writer) RestoreDone(m RestoreDone) error { return fw.WriteJSON(TypeRestoreDone, m) }
func (fw *Writer) RestoreError(m InitError) error  { return fw.WriteJSON(TypeRestoreError, m) }

// Reader reads frames. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	hdr [5]byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Frame is one decoded frame. Body is freshly allocated and owned by the caller.
type Frame struct {
	Type Type
	Body []byte
}

// ReadFrame reads the next frame. It returns io.EOF at a clean end of stream
// and io.ErrUnexpectedEOF for a truncated frame.
func (fr *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, err
		}
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:4])
	if n == 0 || n > MaxFrame {
		return Frame{}, ErrFrameTooLarge
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return Frame{Type: Type(fr.hdr[4]), Body: body}, nil
}

// DecodeJSON decodes a JSON-bodied frame into v.
func (f Frame) DecodeJSON(v any) error {
	if err := json.Unmarshal(f.Body, v); err != nil {
		return fmt.Errorf("agentproto: decoding %v: %w", f.Type, err)
	}
	return nil
}

// DecodeHeaded splits a header-framed body: the JSON header goes into header
// and the raw remainder is returned (a sub-slice of Body, not copied).
func (f Frame) DecodeHeaded(header any) ([]byte, error) {
	if len(f.Body) < 4 {
		return nil, fmt.Errorf("agentproto: decoding %v: short body", f.Type)
	}
	n := binary.BigEndian.Uint32(f.Body[:4])
	if uint64(n) > uint64(len(f.Body)-4) {
		return nil, fmt.Errorf("agentproto: decoding %v: header length %d exceeds body", f.Type, n)
	}
	if err := json.Unmarshal(f.Body[4:4+n], header); err != nil {
		return nil, fmt.Errorf("agentproto: decoding %v: %w", f.Type, err)
	}
	return f.Body[4+n:], nil
}

// Invoke decodes a TypeInvoke frame.
func (f Frame) Invoke() (Invoke, error) {
	var m Invoke
	raw, err := f.DecodeHeaded(&m)
	m.Payload = raw
	return m, err
}

// Result decodes a TypeResult frame.
func (f Frame) Result() (Result, error) {
	var m Result
	raw, err := f.DecodeHeaded(&m)
	m.Body = raw
	return m, err
}

// Log decodes a TypeLog frame.
func (f Frame) Log() (Log, error) {
	var m Log
	raw, err := f.DecodeHeaded(&m)
	m.Line = raw
	return m, err
}

// AppendJSONString appends s as a JSON string, as encoding/json would
// write it. Plain printable ASCII (the usual case: request ids, ARNs,
// error types) is copied directly; anything else goes through
// encoding/json. For the hand-written encoders of the warm path (agent
// frames, Runtime API bodies).
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
