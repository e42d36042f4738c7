package runtimeapi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
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
	// RestoreError receives an after-restore hook failure posted by the
	// runtime (/runtime/restore/error, SnapStart).
	RestoreError func(errorType string, body []byte)
	// ExtensionExitError receives an extension's /extension/exit/error.
	ExtensionExitError func(name, errorType string, body []byte)
	// Registered is called after each successful extension registration.
	Registered func(name string)
}

type runtimeState int

const (
	stateInit          runtimeState = iota // started, no /next yet
	stateInitFailed                        // posted /runtime/init/error
	stateIdle                              // waiting in /next (or about to)
	stateRunning                           // event delivered, no answer yet
	stateAnswering                         // reading the answer's body
	stateAnswered                          // answered, not back in /next yet
	stateSnapshotReady                     // SnapStart: parked in /restore/next, ready to checkpoint
	stateRestoring                         // SnapStart: restored, after-restore hooks running
	stateRestoreFailed                     // SnapStart: posted /runtime/restore/error
)

// Server is one execution environment's Runtime and Extensions API. It
// serves one runtime and at most MaxExtensions extensions; it handles one
// invoke at a time. Methods are safe for concurrent use.
//
// The server speaks HTTP/1.1 itself (conn.go, request.go) rather than
// through net/http: its few clients keep one connection each, and
// net/http's per-request fixed cost (header maps, contexts, a background
// read and deadline changes per request, goroutine handoffs) was most of
// the agent's CPU per warm invoke.
type Server struct {
	cfg Config
	log *slog.Logger

	// initReady is closed once init is complete (see InitReady).
	initReady     chan struct{}
	initReadyOnce sync.Once
	// closed is closed by Close.
	closed    chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// state of the runtime. Guarded by mu.
	state runtimeState
	// cur is the invoke delivered to the runtime, kept until its next /next
	// so that a late second answer gets 403 rather than 400. It is nil or
	// &curVal, a copy (the caller's Invoke may alias a buffer it reuses).
	// Guarded by mu.
	cur    *agentproto.Invoke
	curVal agentproto.Invoke
	// pending is an invoke the runtime has not asked for yet: normally
	// &pend, with its payload copied into pendBuf, reused every time;
	// pendBusy is set while a /next writes from that slot. Guarded by mu.
	pending  *agentproto.Invoke
	pend     agentproto.Invoke
	pendBuf  []byte
	pendBusy bool
	// waiter is the runtime's connection parked in /next. Guarded by mu.
	waiter *conn
	// restoreWaiter is the runtime's connection parked in /restore/next
	// (SnapStart) until Restore answers it. Guarded by mu.
	restoreWaiter *conn
	// restoreReady is closed by the runtime's first /next after Restore.
	restoreReady     chan struct{}
	restoreReadyOnce sync.Once
	// buf is reused for every response body and res for every Result;
	// only the handler that moved state to stateAnswering touches them.
	// Guarded by state.
	buf []byte
	res agentproto.Result
	// regClosed is set by CloseRegistration. Guarded by mu.
	regClosed bool
	// exts are the registered extensions by identifier, and in order.
	// Guarded by mu.
	exts    map[string]*extension
	extList []*extension
	// ln and conns are closed by Close. Guarded by mu.
	ln    net.Listener
	conns map[*conn]struct{}
}

// maxQueuedEvents bounds the events queued for an extension that is not
// waiting in /event/next.
const maxQueuedEvents = 16

// extension is one registered extension.
type extension struct {
	id, name string
	invoke   bool // subscribed to INVOKE
	shutdown bool // subscribed to SHUTDOWN
	// ready: has called event/next at least once. Guarded by Server.mu.
	ready bool
	// waiter is its connection parked in event/next. Guarded by Server.mu.
	waiter *conn
	// queue holds events while it is not waiting. Guarded by Server.mu.
	queue [][]byte
}

// New returns a Server; call Serve to start it.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:          cfg,
		log:          log.With("component", "runtimeapi"),
		initReady:    make(chan struct{}),
		restoreReady: make(chan struct{}),
		closed:       make(chan struct{}),
		exts:         make(map[string]*extension),
		conns:        make(map[*conn]struct{}),
		buf:          make([]byte, 0, 64<<10),
	}
}

// Serve serves the APIs on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.isClosed() {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of descriptors or similar: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accepting runtime api connection: %w", err)
		}
		delay = 0
		c := newConn(s, nc)
		s.mu.Lock()
		if s.isClosed() {
			s.mu.Unlock()
			_ = nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// Close stops the server: parked /next calls are answered 500 and every
// connection is closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	ln := s.ln
	var parked []*conn
	for _, w := range []**conn{&s.waiter, &s.restoreWaiter} {
		if c := *w; c != nil {
			*w = nil
			c.take()
			parked = append(parked, c)
		}
	}
	for _, e := range s.extList {
		if c := e.waiter; c != nil {
			e.waiter = nil
			c.take()
			parked = append(parked, c)
		}
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	for _, c := range parked {
		c.sendError(500, errInternalServerError, c.parkAPI+" is shutting down", fieldClose)
		c.answered()
	}
	for _, c := range conns {
		if c.nc != nil {
			_ = c.nc.Close()
		}
	}
	return err
}

// Paths of the APIs.
const (
	pathRuntimeNext      = "/2018-06-01/runtime/invocation/next"
	pathInvocationPrefix = "/2018-06-01/runtime/invocation/"
	pathInitError        = "/2018-06-01/runtime/init/error"
	pathExtRegister      = "/2020-01-01/extension/register"
	pathExtNext          = "/2020-01-01/extension/event/next"
	pathExtInitError     = "/2020-01-01/extension/init/error"
	pathExtExitError     = "/2020-01-01/extension/exit/error"
	pathRestoreNext      = "/2018-06-01/runtime/restore/next"
	pathRestoreError     = "/2018-06-01/runtime/restore/error"
)

// route dispatches a request to its endpoint, answering 404 or 405 (with
// Allow) as http.ServeMux did, except that HEAD is refused: a HEAD /next
// would take an event and drop its payload.
func (s *Server) route(c *conn) {
	p := c.req.bytes(c.req.path)
	get, post := c.req.method == methodGET, c.req.method == methodPOST
	switch string(p) {
	case pathRuntimeNext:
		if get {
			s.handleNext(c)
			return
		}
		c.methodNotAllowed("GET")
		return
	case pathRestoreNext:
		if get {
			s.handleRestoreNext(c)
			return
		}
		c.methodNotAllowed("GET")
		return
	case pathExtNext:
		if get {
			s.handleExtensionNext(c)
			return
		}
		c.methodNotAllowed("GET")
		return
	case pathInitError, pathRestoreError, pathExtRegister, pathExtInitError, pathExtExitError:
		if !post {
			c.methodNotAllowed("POST")
			return
		}
		switch string(p) {
		case pathInitError:
			s.handleInitError(c)
		case pathRestoreError:
			s.handleRestoreError(c)
		case pathExtRegister:
			s.handleRegister(c)
		case pathExtInitError:
			s.handleExtensionInitError(c)
		case pathExtExitError:
			s.handleExtensionExitError(c)
		}
		return
	}
	// /2018-06-01/runtime/invocation/{id}/response and /error.
	if len(p) > len(pathInvocationPrefix) && string(p[:len(pathInvocationPrefix)]) == pathInvocationPrefix {
		rest := p[len(pathInvocationPrefix):]
		if i := bytes.IndexByte(rest, '/'); i > 0 {
			id, action := rest[:i], string(rest[i+1:])
			if action == "response" || action == "error" {
				if !post {
					c.methodNotAllowed("POST")
					return
				}
				if bytes.IndexByte(id, '%') >= 0 {
					u, err := url.PathUnescape(string(id))
					if err != nil {
						c.writeError(400, errInvalidRequestID, "Invalid request ID: "+strconv.Quote(string(id)))
						return
					}
					id = []byte(u)
				}
				if action == "response" {
					s.handleResponse(c, id)
				} else {
					s.handleError(c, id)
				}
				return
			}
		}
	}
	c.notFound()
}

// isClosed reports whether Close was called.
func (s *Server) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// forget drops a connection that ended.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.parked = false
	if s.waiter == c {
		s.waiter = nil
	}
	if s.restoreWaiter == c {
		s.restoreWaiter = nil
	}
	for _, e := range s.extList {
		if e.waiter == c {
			e.waiter = nil
		}
	}
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

// Invoke hands inv to the runtime and sends INVOKE to the subscribed
// extensions. When the runtime is parked in /next the event is written to
// it here, on the caller's goroutine; otherwise it waits for the next
// /next. Invoke does not wait for the outcome: that arrives through
// Hooks.Result. inv.Payload is not kept after Invoke returns (a queued
// event gets a copy), so the caller may reuse its buffer; the rest of inv
// must not be modified until the Result. One invoke at a time: a second
// Invoke before the runtime took the first returns ErrBusy.
func (s *Server) Invoke(inv *agentproto.Invoke) error {
	s.mu.Lock()
	if s.pending != nil {
		s.mu.Unlock()
		return ErrBusy
	}
	c := s.waiter
	switch {
	case c != nil:
		s.waiter = nil
		c.take()
		s.curVal = *inv
		s.cur = &s.curVal
		s.state = stateRunning
	case !s.pendBusy:
		s.pendBuf = append(s.pendBuf[:0], inv.Payload...)
		s.pend = *inv
		s.pend.Payload = s.pendBuf
		s.pending = &s.pend
	default:
		// The slot is still being written to the runtime (an invoke that
		// overtook its predecessor's /next answer): use a fresh one.
		q := *inv
		q.Payload = append([]byte(nil), inv.Payload...)
		s.pending = &q
	}
	exts := s.extList
	s.mu.Unlock()
	if c != nil {
		c.writeInvoke(inv, c.parkField)
		c.answered()
	}
	for _, e := range exts {
		if e.invoke {
			s.sendEvent(e, appendInvokeEvent(make([]byte, 0, 256), inv), "INVOKE")
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
		b = agentproto.AppendJSONString(b, reason)
		b = append(b, `,"deadlineMs":`...)
		b = strconv.AppendInt(b, deadlineMs, 10)
		b = append(b, '}')
		if s.sendEvent(e, b, "SHUTDOWN") {
			n++
		}
	}
	return n
}

// sendEvent writes ev to the extension if it waits in event/next, else
// queues it. It returns false when the queue was full and ev dropped.
func (s *Server) sendEvent(e *extension, ev []byte, kind string) bool {
	s.mu.Lock()
	c := e.waiter
	if c != nil {
		e.waiter = nil
		c.take()
	} else if len(e.queue) < maxQueuedEvents {
		e.queue = append(e.queue, ev)
	} else {
		s.mu.Unlock()
		s.log.Warn("extension event queue full, dropping "+kind, "extension", e.name)
		return false
	}
	s.mu.Unlock()
	if c != nil {
		c.writeExtensionEvent(ev, c.parkField)
		c.answered()
	}
	return true
}

// appendInvokeEvent builds an extension INVOKE event without reflection.
func appendInvokeEvent(b []byte, inv *agentproto.Invoke) []byte {
	b = append(b, `{"eventType":"INVOKE","deadlineMs":`...)
	b = strconv.AppendInt(b, inv.DeadlineMs, 10)
	b = append(b, `,"requestId":`...)
	b = agentproto.AppendJSONString(b, inv.RequestID)
	b = append(b, `,"invokedFunctionArn":`...)
	b = agentproto.AppendJSONString(b, inv.InvokedARN)
	b = append(b, `,"tracing":{"type":"X-Amzn-Trace-Id","value":`...)
	b = agentproto.AppendJSONString(b, inv.TraceID)
	b = append(b, `}}`...)
	return b
}

// beginAnswer moves the runtime from running to answering for request id,
// or answers the API's error and returns false. On success the caller owns
// s.buf until finishAnswer.
func (s *Server) beginAnswer(c *conn, id []byte) (*agentproto.Invoke, bool) {
	s.mu.Lock()
	if s.cur == nil || s.cur.RequestID != string(id) {
		s.mu.Unlock()
		c.writeError(400, errInvalidRequestID, "Invalid request ID: "+strconv.Quote(string(id)))
		return nil, false
	}
	if s.state != stateRunning {
		name := s.stateName()
		s.mu.Unlock()
		c.writeError(403, errInvalidStateTransition, "State transition from "+name+" to ResponseSent is not allowed")
		return nil, false
	}
	s.state = stateAnswering
	cur := s.cur
	s.mu.Unlock()
	return cur, true
}

// readAnswer reads the body of a /response or /error for cur. When it
// returns false the answer is settled and the runtime has its reply: a
// truncated body leaves the invoke running (400), an oversized one fails
// it with Function.ResponseSizeTooLarge (413).
func (s *Server) readAnswer(c *conn, cur *agentproto.Invoke) ([]byte, bool) {
	body, tooLarge, err := c.readBody(s.buf, MaxResponseSize)
	if err != nil {
		s.finishAnswer(false, body)
		c.writeError(400, errTruncatedHTTPRequest, "Truncated HTTP request: "+err.Error())
		return nil, false
	}
	if tooLarge {
		s.deliverTooLarge(cur.RequestID)
		s.finishAnswer(true, body)
		c.writeError(413, errRequestEntityTooLarge, "Exceeded maximum allowed payload size ("+strconv.Itoa(MaxResponseSize)+" bytes).")
		return nil, false
	}
	return body, true
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
var tooLargeBody = lambdaerr.Body(lambdaerr.FunctionResponseSizeTooLarge, "Response payload size exceeded maximum allowed payload size (6291556 bytes).")

// normaliseErrorType keeps a runtime-supplied error type that looks like
// Lambda's Category.Reason and maps anything else to Runtime.Unknown, as
// RIE does (^(Runtime|Function|Extension)\.[A-Z][a-zA-Z]+$).
func normaliseErrorType(t string) string {
	var rest string
	for _, p := range [...]string{"Runtime.", "Function.", "Extension."} {
		if strings.HasPrefix(t, p) {
			rest = t[len(p):]
			break
		}
	}
	if len(rest) < 2 || rest[0] < 'A' || rest[0] > 'Z' {
		return lambdaerr.RuntimeUnknown
	}
	for i := 1; i < len(rest); i++ {
		if c := rest[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return lambdaerr.RuntimeUnknown
		}
	}
	return t
}
