package runtimeapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// MaxResponseSize is the largest response body a runtime may post: 6 MiB +
// 100 bytes, as Lambda enforces it.
const MaxResponseSize = 6291556

// MaxExtensions is the most extensions that may register.
const MaxExtensions = 10

// Header names of the Runtime and Extensions APIs.
const (
	HeaderRequestID        = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMs       = "Lambda-Runtime-Deadline-Ms"
	HeaderInvokedARN       = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID          = "Lambda-Runtime-Trace-Id"
	HeaderClientContext    = "Lambda-Runtime-Client-Context"
	HeaderCognitoIdentity  = "Lambda-Runtime-Cognito-Identity"
	HeaderTenantID         = "Lambda-Runtime-Aws-Tenant-Id"
	HeaderFunctionError    = "Lambda-Runtime-Function-Error-Type"
	HeaderFunctionErrBody  = "Lambda-Runtime-Function-Error-Body"
	HeaderResponseMode     = "Lambda-Runtime-Function-Response-Mode"
	HeaderXRayErrorCause   = "Lambda-Runtime-Function-XRay-Error-Cause"
	HeaderExtensionName    = "Lambda-Extension-Name"
	HeaderExtensionID      = "Lambda-Extension-Identifier"
	HeaderExtensionEventID = "Lambda-Extension-Event-Identifier"
	HeaderExtensionError   = "Lambda-Extension-Function-Error-Type"
	HeaderExtensionFeature = "Lambda-Extension-Accept-Feature"
)

// Function error types the Server produces itself.
const (
	ErrorTypeResponseSizeTooLarge = "Function.ResponseSizeTooLarge"
	ErrorTypeRuntimeUnknown       = "Runtime.Unknown"
)

// errorTypePattern is how RIE validates a runtime-supplied error type.
var errorTypePattern = regexp.MustCompile(`^(Runtime|Function|Extension)\.[A-Z][a-zA-Z]+$`)

// Config configures a Server.
type Config struct {
	// FunctionName, FunctionVersion and Handler answer extension registration.
	FunctionName    string
	FunctionVersion string
	Handler         string
	// Hooks are the agent's callbacks. Nil hooks are skipped.
	Hooks Hooks
	// Logger receives the server's diagnostics; nil discards them.
	Logger *slog.Logger
}

// Hooks are called by the Server on its handler goroutines. They must not
// block for long: the runtime waits on the HTTP answer.
type Hooks struct {
	// Result receives the outcome of the in-flight invoke, before the runtime
	// gets its 202. res.Body is only valid during the call (the Server reuses
	// the buffer), so the hook must write or copy it before returning.
	Result func(res *agentproto.Result)
	// InitError receives an init failure posted by the runtime
	// (/runtime/init/error) or an extension (/extension/init/error).
	InitError func(errorType string, body []byte)
	// ExtensionExitError receives an extension's /extension/exit/error.
	ExtensionExitError func(name, errorType string, body []byte)
	// Registered is called after each successful extension registration.
	Registered func(name string)
}

type runtimeState int

const (
	stateInit       runtimeState = iota // started, no /next yet
	stateInitFailed                     // posted /runtime/init/error
	stateIdle                           // waiting in /next (or about to)
	stateRunning                        // event delivered, no answer yet
	stateAnswering                      // reading the answer's body
	stateAnswered                       // answered, not back in /next yet
)

// Server is one execution environment's Runtime and Extensions API. It
// serves one runtime and at most MaxExtensions extensions; it handles one
// invoke at a time. Methods are safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	http *http.Server

	// invokes hands an event from Invoke to the runtime's pending /next.
	invokes chan *agentproto.Invoke
	// initReady is closed once init is complete (see InitReady).
	initReady     chan struct{}
	initReadyOnce sync.Once
	// closed is closed by Close; blocked handlers then return.
	closed    chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// state of the runtime. Guarded by mu.
	state runtimeState
	// cur is the invoke delivered to the runtime, kept until its next /next
	// so that a late second answer gets 403 rather than 400. Guarded by mu.
	cur *agentproto.Invoke
	// buf is reused for every response body; only the handler that moved
	// state to stateAnswering touches it. Guarded by state.
	buf []byte
	// regClosed is set by CloseRegistration. Guarded by mu.
	regClosed bool
	// exts are the registered extensions by identifier, and in order.
	// Guarded by mu.
	exts    map[string]*extension
	extList []*extension
}

// extension is one registered extension.
type extension struct {
	id, name string
	invoke   bool // subscribed to INVOKE
	shutdown bool // subscribed to SHUTDOWN
	events   chan []byte
	ready    bool // has called event/next at least once; guarded by Server.mu
}

// New returns a Server; call Serve to start it.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		log:       log.With("component", "runtimeapi"),
		invokes:   make(chan *agentproto.Invoke, 1),
		initReady: make(chan struct{}),
		closed:    make(chan struct{}),
		exts:      make(map[string]*extension),
		buf:       make([]byte, 0, 64<<10),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", s.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", s.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", s.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", s.handleInitError)
	mux.HandleFunc("POST /2020-01-01/extension/register", s.handleRegister)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", s.handleExtensionNext)
	mux.HandleFunc("POST /2020-01-01/extension/init/error", s.handleExtensionInitError)
	mux.HandleFunc("POST /2020-01-01/extension/exit/error", s.handleExtensionExitError)
	s.mux = mux
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: /next blocks for as long as the environment idles.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s
}

// Handler returns the Server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves the APIs on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and releases every blocked handler.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return s.http.Close()
}

// InitReady is closed when the runtime and every registered extension have
// called their next endpoint, after CloseRegistration.
func (s *Server) InitReady() <-chan struct{} { return s.initReady }

// CloseRegistration ends the extension registration window. The agent calls
// it once the launched extensions have registered, before it starts the
// runtime. It returns the number of registered extensions.
func (s *Server) CloseRegistration() int {
	s.mu.Lock()
	s.regClosed = true
	n := len(s.extList)
	s.mu.Unlock()
	s.checkInitReady()
	return n
}

// Registered returns the number of registered extensions.
func (s *Server) Registered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.extList)
}

// checkInitReady closes initReady when init is complete.
func (s *Server) checkInitReady() {
	s.mu.Lock()
	done := s.regClosed && s.state != stateInit && s.state != stateInitFailed
	for _, e := range s.extList {
		done = done && e.ready
	}
	s.mu.Unlock()
	if done {
		s.initReadyOnce.Do(func() { close(s.initReady) })
	}
}

// ErrBusy is returned by Invoke while another event waits for the runtime.
var ErrBusy = errors.New("runtimeapi: an invoke is already pending")

// Invoke queues inv for the runtime's /next and sends INVOKE to the
// subscribed extensions. It does not wait: the outcome arrives through
// Hooks.Result. inv must not be modified until then. One invoke at a time:
// a second Invoke before the runtime took the first returns ErrBusy.
func (s *Server) Invoke(inv *agentproto.Invoke) error {
	select {
	case s.invokes <- inv:
	default:
		return ErrBusy
	}
	s.mu.Lock()
	exts := s.extList
	s.mu.Unlock()
	for _, e := range exts {
		if !e.invoke {
			continue
		}
		ev := appendInvokeEvent(make([]byte, 0, 256), inv)
		select {
		case e.events <- ev:
		default:
			s.log.Warn("extension event queue full, dropping INVOKE", "extension", e.name, "requestId", inv.RequestID)
		}
	}
	return nil
}

// Shutdown sends SHUTDOWN to the extensions subscribed to it and returns how
// many were told.
func (s *Server) Shutdown(reason string, deadlineMs int64) int {
	s.mu.Lock()
	exts := s.extList
	s.mu.Unlock()
	n := 0
	for _, e := range exts {
		if !e.shutdown {
			continue
		}
		b := make([]byte, 0, 96)
		b = append(b, `{"eventType":"SHUTDOWN","shutdownReason":`...)
		b = appendJSONString(b, reason)
		b = fmt.Appendf(b, `,"deadlineMs":%d}`, deadlineMs)
		select {
		case e.events <- b:
			n++
		default:
			s.log.Warn("extension event queue full, dropping SHUTDOWN", "extension", e.name)
		}
	}
	return n
}

// appendInvokeEvent builds an extension INVOKE event without reflection.
func appendInvokeEvent(b []byte, inv *agentproto.Invoke) []byte {
	b = append(b, `{"eventType":"INVOKE","deadlineMs":`...)
	b = fmt.Appendf(b, "%d", inv.DeadlineMs)
	b = append(b, `,"requestId":`...)
	b = appendJSONString(b, inv.RequestID)
	b = append(b, `,"invokedFunctionArn":`...)
	b = appendJSONString(b, inv.InvokedARN)
	b = append(b, `,"tracing":{"type":"X-Amzn-Trace-Id","value":`...)
	b = appendJSONString(b, inv.TraceID)
	b = append(b, `}}`...)
	return b
}

// readBody reads r's body into dst (reusing its capacity) up to limit bytes.
// tooLarge reports a body above limit; the rest is not read.
func readBody(dst []byte, r io.Reader, contentLength int64, limit int) (body []byte, tooLarge bool, err error) {
	if contentLength > int64(limit) {
		return dst[:0], true, nil
	}
	b := dst[:0]
	if contentLength > 0 && int(contentLength) > cap(b) {
		b = make([]byte, 0, int(contentLength)+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > limit {
			return b[:0], true, nil
		}
		if err == io.EOF {
			return b, false, nil
		}
		if err != nil {
			return b, false, err
		}
	}
}

// beginAnswer moves the runtime from running to answering for request id,
// or writes the API's error and returns false. On success the caller owns
// s.buf until finishAnswer.
func (s *Server) beginAnswer(w http.ResponseWriter, id string) (*agentproto.Invoke, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.RequestID != id {
		writeError(w, http.StatusBadRequest, errInvalidRequestID, "Invalid request ID: "+strconv.Quote(id))
		return nil, false
	}
	if s.state != stateRunning {
		writeError(w, http.StatusForbidden, errInvalidStateTransition, "State transition from "+s.stateName()+" to ResponseSent is not allowed")
		return nil, false
	}
	s.state = stateAnswering
	return s.cur, true
}

// finishAnswer ends an answer begun by beginAnswer: answered, or back to
// running when the answer was refused (the runtime may retry).
func (s *Server) finishAnswer(answered bool, buf []byte) {
	s.mu.Lock()
	if cap(buf) <= 2*MaxResponseSize {
		s.buf = buf[:0]
	}
	if answered {
		s.state = stateAnswered
	} else {
		s.state = stateRunning
	}
	s.mu.Unlock()
}

// deliver passes a result to the agent.
func (s *Server) deliver(res *agentproto.Result) {
	if s.cfg.Hooks.Result != nil {
		s.cfg.Hooks.Result(res)
	}
}

// tooLargeBody is the error body of Function.ResponseSizeTooLarge.
var tooLargeBody = []byte(`{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`)

// normaliseErrorType keeps a runtime-supplied error type that looks like
// Lambda's Category.Reason and maps anything else to Runtime.Unknown, as
// RIE does.
func normaliseErrorType(t string) string {
	if errorTypePattern.MatchString(t) {
		return t
	}
	return ErrorTypeRuntimeUnknown
}
