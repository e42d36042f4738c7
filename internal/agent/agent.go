package agent

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"sync/atomic"
	"syscall"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
	"github.com/ignis-run/ignis/internal/rawio"
	"github.com/ignis-run/ignis/internal/runtimeapi"
)

// Options configure an Agent.
type Options struct {
	// TaskRoot is where the function code lives (/var/task); the default
	// bootstrap search starts there.
	TaskRoot string
	// OptRoot holds layers (/opt): /opt/bootstrap and /opt/extensions/*.
	OptRoot string
	// Logger receives the agent's diagnostics (stderr in the binary).
	Logger *slog.Logger
}

// Main is the ignis-agent command: it parses args, speaks agentproto on
// stdin/stdout and logs to stderr. It returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ignis-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	taskRoot := fs.String("task-root", "/var/task", "function code directory")
	optRoot := fs.String("opt-root", "/opt", "layers directory (bootstrap, extensions/)")
	level := fs.String("log-level", "info", "diagnostics level: debug, info, warn, error")
	pollStdin := fs.Bool("poll-stdin", true, "read a pipe stdin and write a pipe stdout through the runtime poller (off where the sandbox may be checkpointed: an epoll registration does not survive a restore)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "ignis-agent: %v\n", err)
		return 2
	}
	// The agent serves one invoke at a time: frame reader, Runtime API
	// handler and output pumps hand work to each other in turn. With one P
	// those handoffs are plain goroutine switches; with more, every handoff
	// wakes another thread (futex) and idle Ps spin looking for work, which
	// cost more CPU per warm invoke than the work itself. GOMAXPROCS in the
	// environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	if *pollStdin {
		stdin, stdout = pollStdio(stdin, stdout, stderr)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	a := New(Options{TaskRoot: *taskRoot, OptRoot: *optRoot, Logger: log}, stdin, stdout)
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}

// pollStdio returns the worker's pipes as rawio.Conns where they can be:
// non-blocking, waited on by the runtime poller, read and written with raw
// system calls (package rawio). A blocking read would hold the agent's only
// P in a syscall until sysmon takes it back (up to 10 ms when idle),
// delaying the /next answer an invoke just woke; and every non-raw syscall
// after an idle spell wakes sysmon. Anything that is not a pipe of its own
// is returned unchanged.
func pollStdio(stdin io.Reader, stdout, stderr io.Writer) (io.Reader, io.Writer) {
	in, out := stdin, stdout
	if f, ok := stdin.(*os.File); ok {
		if pf := pollable(f, stdout, stderr); pf != f {
			if r := rawio.File(pf); r != nil {
				in = r
			}
		}
	}
	if f, ok := stdout.(*os.File); ok {
		if pf := pollable(f, stdin, stderr); pf != f {
			if r := rawio.File(pf); r != nil {
				out = r
			}
		}
	}
	return in, out
}

// pollable returns f as a non-blocking file registered with the runtime's
// poller when it is a pipe. Anything else, or a pipe that one of others
// shares (O_NONBLOCK is per open file), is returned unchanged.
func pollable(f *os.File, others ...any) *os.File {
	var st syscall.Stat_t
	fd := int(f.Fd())
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return f
	}
	for _, w := range others {
		o, ok := w.(*os.File)
		if !ok {
			continue
		}
		var ost syscall.Stat_t
		if err := syscall.Fstat(int(o.Fd()), &ost); err != nil || (ost.Dev == st.Dev && ost.Ino == st.Ino) {
			return f
		}
	}
	// Hand a duplicate to the poller so f's own finalizer or Close cannot
	// close the descriptor under it. O_NONBLOCK lands on the shared open
	// file, which only the agent uses (children get /dev/null and pipes of
	// their own).
	nfd, err := syscall.Dup(fd)
	if err != nil {
		return f
	}
	syscall.CloseOnExec(nfd)
	if err := syscall.SetNonblock(nfd, true); err != nil {
		syscall.Close(nfd)
		return f
	}
	return os.NewFile(uintptr(nfd), f.Name())
}

// Agent runs one execution environment. Create it with New and call Run
// once.
type Agent struct {
	opts Options
	log  *slog.Logger
	in   *frameReader
	out  *agentproto.Writer
	sup  *supervisor

	// ctl carries Init and Shutdown frames from the reader to the main loop.
	ctl chan agentproto.Frame
	// stdinDone is closed when the worker's stream ends.
	stdinDone chan struct{}
	// initErrs receives init failures posted to the APIs.
	initErrs chan initFailure
	// restoreErrs receives after-restore hook failures (SnapStart).
	restoreErrs chan initFailure
	// registered is signalled after each extension registration.
	registered chan struct{}

	// api is set by the main loop before the reader can deliver invokes
	// (it is published through apiReady).
	api      *runtimeapi.Server
	apiReady atomic.Pointer[runtimeapi.Server]
	// inflight is the last invoke handed to the runtime: its id tags output
	// lines until the next invoke.
	inflight atomic.Pointer[agentproto.Invoke]
	// runtimeGone is set once the runtime exited; invokes then fail at once.
	runtimeGone atomic.Bool
	// shuttingDown suppresses RuntimeExit for the kills of Shutdown.
	shuttingDown atomic.Bool

	// resHead is the Result header buffer. Results come one at a time
	// (the Runtime API's state machine serialises them).
	resHead []byte

	runtime *process
	exts    []*process
	// initDone is set when InitDone or InitError was sent.
	initDone bool
}

// initFailure is an init error posted through the APIs.
type initFailure struct {
	errorType string
	body      []byte
}

// New returns an Agent reading the worker's frames from stdin and writing
// its own to stdout.
func New(opts Options, stdin io.Reader, stdout io.Writer) *Agent {
	if opts.TaskRoot == "" {
		opts.TaskRoot = "/var/task"
	}
	if opts.OptRoot == "" {
		opts.OptRoot = "/opt"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{
		opts:        opts,
		log:         log.With("component", "agent"),
		in:          newFrameReader(stdin),
		out:         agentproto.NewWriter(stdout),
		sup:         newSupervisor(),
		ctl:         make(chan agentproto.Frame, 4),
		stdinDone:   make(chan struct{}),
		initErrs:    make(chan initFailure, 4),
		restoreErrs: make(chan initFailure, 1),
		registered:  make(chan struct{}, 1),
		resHead:     make([]byte, 0, 256),
	}
}

// errWorkerGone is returned by Run when stdin ended before Shutdown.
var errWorkerGone = errors.New("worker closed the control stream")

// Run sends Hello, serves the worker until Shutdown (nil) or until stdin
// ends or ctx is cancelled (every child is killed, error returned).
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.sup.run(ctx)
	if err := a.out.Hello(agentproto.Hello{Version: agentproto.Version, PID: os.Getpid()}); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	go a.readFrames()
	defer func() {
		if a.api != nil {
			_ = a.api.Close()
		}
	}()

	for {
		select {
		case f := <-a.ctl:
			switch f.Type {
			case agentproto.TypeInit:
				if a.api != nil {
					a.log.Warn("ignoring second Init")
					continue
				}
				var m agentproto.Init
				if err := f.DecodeJSON(&m); err != nil {
					return a.fail(fmt.Errorf("reading init: %w", err))
				}
				if err := a.init(ctx, m); err != nil {
					return a.fail(err)
				}
			case agentproto.TypeRestore:
				var m agentproto.Restore
				if err := f.DecodeJSON(&m); err != nil {
					return a.fail(fmt.Errorf("reading restore: %w", err))
				}
				if err := a.restore(ctx, m); err != nil {
					return a.fail(err)
				}
			case agentproto.TypeShutdown:
				var m agentproto.Shutdown
				if err := f.DecodeJSON(&m); err != nil {
					a.log.Warn("bad shutdown message, shutting down anyway", "err", err)
				}
				return a.shutdown(m)
			}
		case p := <-a.sup.exits:
			a.exited(p)
		case <-a.stdinDone:
			a.sup.killAll()
			return errWorkerGone
		case <-ctx.Done():
			a.sup.killAll()
			return ctx.Err()
		}
	}
}

// fail kills every child and returns err.
func (a *Agent) fail(err error) error {
	a.sup.killAll()
	return err
}

// readFrames is the reader goroutine. Invokes go straight to the Runtime
// API; Init and Shutdown go to the main loop.
func (a *Agent) readFrames() {
	defer close(a.stdinDone)
	var prevARN string
	for {
		t, body, err := a.in.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				a.log.Error("reading control stream", "err", err)
			}
			return
		}
		switch t {
		case agentproto.TypeInvoke:
			// body is reused for the next frame: Server.Invoke does not
			// keep the payload.
			prevARN = a.invoke(body, prevARN)
		case agentproto.TypeInit, agentproto.TypeShutdown, agentproto.TypeRestore:
			a.ctl <- agentproto.Frame{Type: t, Body: bytes.Clone(body)}
		default:
			a.log.Error("unexpected message from worker", "type", t)
		}
	}
}

// invoke hands one event to the runtime and returns its ARN. Runs on the
// reader goroutine.
func (a *Agent) invoke(body []byte, prevARN string) string {
	inv := new(agentproto.Invoke)
	if err := decodeInvoke(body, inv, prevARN); err != nil {
		a.log.Error("decoding invoke", "err", err)
		return prevARN
	}
	api := a.apiReady.Load()
	switch {
	case api == nil:
		a.failInvoke(inv.RequestID, lambdaerr.RuntimeUnknown, "invoke before init")
	case a.runtimeGone.Load():
		a.failInvoke(inv.RequestID, lambdaerr.RuntimeExitError, "Runtime exited without providing a reason")
	default:
		a.inflight.Store(inv)
		if err := api.Invoke(inv); err != nil {
			a.failInvoke(inv.RequestID, lambdaerr.RuntimeUnknown, err.Error())
		}
	}
	return inv.InvokedARN
}

// result writes a Result frame. Called by the Runtime API on the handler
// goroutine of the runtime's answer; those never overlap, so they share
// resHead.
func (a *Agent) result(res *agentproto.Result) {
	if rt := a.runtime; rt != nil {
		rt.drain()
	}
	a.resHead = appendResultHeader(a.resHead, res)
	a.writeResult(a.resHead, res)
}

// failInvoke answers an invoke the runtime will never see. It runs on the
// reader goroutine, possibly beside result, so it has its own buffer.
func (a *Agent) failInvoke(id, errorType, msg string) {
	res := &agentproto.Result{RequestID: id, Error: true, ErrorType: errorType, ContentType: "application/json",
		Body: lambdaerr.Body(errorType, "RequestId: "+id+" Error: "+msg)}
	a.writeResult(appendResultHeader(nil, res), res)
}

func (a *Agent) writeResult(head []byte, res *agentproto.Result) {
	if err := a.out.WriteFrame(agentproto.TypeResult, head, res.Body); err != nil {
		a.log.Error("sending result", "requestId", res.RequestID, "err", err)
	}
}

// logLine writes one output line as a Log frame, tagged with the request in
// flight. head is the calling pump's reusable header buffer.
func (a *Agent) logLine(stream string, line []byte, head *[]byte) {
	var id string
	if inv := a.inflight.Load(); inv != nil {
		id = inv.RequestID
	}
	*head = appendLogHeader(*head, stream, id)
	if err := a.out.WriteFrame(agentproto.TypeLog, *head, line); err != nil {
		a.log.Debug("sending log line", "err", err)
	}
}

// notice writes one of the agent's own lines (stream "agent").
func (a *Agent) notice(format string, args ...any) {
	var head []byte
	a.logLine(agentproto.StreamAgent, fmt.Appendf(nil, format, args...), &head)
}

// exited handles a reaped child on the main loop.
func (a *Agent) exited(p *process) {
	waitPumps(p, 200*time.Millisecond)
	status := statusString(p.status)
	if p != a.runtime {
		a.log.Info("extension exited", "extension", p.name, "status", status)
		if !a.shuttingDown.Load() {
			a.notice("extension %s exited: %s", p.name, status)
		}
		return
	}
	a.runtimeGone.Store(true)
	if a.shuttingDown.Load() {
		return
	}
	a.log.Info("runtime exited", "status", status)
	m := agentproto.RuntimeExit{Status: status, ExitCode: p.status.ExitStatus()}
	if p.status.Signaled() {
		m.ExitCode = -1
		m.Signal = signalName(p.status)
	}
	if err := a.out.RuntimeExit(m); err != nil {
		a.log.Error("sending runtime exit", "err", err)
	}
}

// waitPumps waits (bounded) for a process's output to drain, so its last
// lines reach the worker before the exit is reported. A grandchild holding
// the pipes open must not stall the agent, hence the bound.
func waitPumps(p *process, d time.Duration) {
	done := make(chan struct{})
	go func() { p.pumps.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// setEnv returns env with key set to val (replacing any value).
func setEnv(env []string, key, val string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+val)
}

// extensionEnv is the runtime's environment minus the _-prefixed keys, as
// Lambda gives extensions.
func extensionEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "_") {
			out = append(out, kv)
		}
	}
	return out
}
