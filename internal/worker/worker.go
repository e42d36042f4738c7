package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/lambdaerr"
	"github.com/ignis-run/ignis/internal/logs"
	"github.com/ignis-run/ignis/internal/runtimes"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/snapshot"
)

// LogSink receives each environment's log lines. Append must not block on
// durable storage: it is called on the warm invoke path (*logs.Store
// buffers and publishes asynchronously).
type LogSink interface {
	Append(ctx context.Context, group, stream string, events []logs.Event) error
}

// InitError is a failed runtime init, reported to the first invoke as a
// function error (HTTP 200, X-Amz-Function-Error: Unhandled).
type InitError struct {
	ErrorType string
	Body      json.RawMessage
	// LogTail is the end of the init's log, for X-Amz-Log-Result.
	LogTail []byte
}

func (e *InitError) Error() string { return "runtime init failed: " + e.ErrorType }

// Config configures a Worker.
type Config struct {
	// ID names this worker in placement.
	ID string
	// DataDir holds the code cache and the persisted sandbox handles.
	DataDir string
	// AgentBinary is the host path of the static ignis-agent.
	AgentBinary string
	// RuntimeDir holds the runtime bootstraps, mounted at /var/runtime.
	RuntimeDir string
	// ExtraMounts are host paths every sandbox gets read-only (interpreters
	// installed outside the runtime base).
	ExtraMounts []string
	// Region is reported to functions (AWS_REGION).
	Region string
	// InitTimeout bounds a runtime's init (Lambda: 10 s).
	InitTimeout time.Duration
	// MaxConcurrentCreates bounds sandboxes being created at once. A burst
	// of cold starts beyond what the CPUs can run only slows every one of
	// them (and starves the control plane); the rest wait their turn.
	// 0 means twice the number of CPUs.
	MaxConcurrentCreates int
}

// DefaultConfig returns defaults for the fields that have them.
func DefaultConfig() Config {
	return Config{ID: "local", Region: "us-east-1", InitTimeout: 10 * time.Second}
}

// Validate checks a Config.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("worker: ID is required: %w", errdefs.ErrInvalidArgument)
	case c.DataDir == "":
		return fmt.Errorf("worker: DataDir is required: %w", errdefs.ErrInvalidArgument)
	case c.AgentBinary == "":
		return fmt.Errorf("worker: AgentBinary is required: %w", errdefs.ErrInvalidArgument)
	case c.RuntimeDir == "":
		return fmt.Errorf("worker: RuntimeDir is required: %w", errdefs.ErrInvalidArgument)
	}
	// Sandbox specs take host paths verbatim: a relative one would be
	// resolved against whatever directory a later step runs in.
	for _, p := range []string{c.DataDir, c.AgentBinary, c.RuntimeDir} {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("worker: path %q is not absolute and clean: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Worker runs execution environments on this host. Safe for concurrent use.
type Worker struct {
	cfg     Config
	driver  sandbox.Driver
	logs    LogSink
	code    *codeCache
	snaps   snapshot.Store
	log     *slog.Logger
	handles string // directory of persisted handles
	// creating holds a token per sandbox being created.
	creating chan struct{}

	mu   sync.Mutex
	envs map[string]*Env // guarded by mu
}

// Env is one live execution environment.
type Env struct {
	ID        string
	Spec      fnspec.Spec
	LogStream string
	Created   time.Time
	// Phases of the cold start.
	CodeFetch, SandboxCreate, Init time.Duration
	// Restore is set instead of Init for an environment restored from a
	// SnapStart snapshot: the restore and after-restore hooks.
	Restore time.Duration

	sess *session

	mu sync.Mutex
	// busy is true while an invoke runs. Guarded by mu.
	busy bool
	// invokes counts completed invokes; the first reports Init Duration.
	// Guarded by mu.
	invokes int
	// dead is set once the environment is unusable. Guarded by mu.
	dead bool
}

// New returns a Worker. Call Recover before serving to reap sandboxes a
// previous process left behind.
func New(cfg Config, driver sandbox.Driver, code CodeSource, logs LogSink, log *slog.Logger) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	if cfg.MaxConcurrentCreates <= 0 {
		cfg.MaxConcurrentCreates = 2 * runtime.NumCPU()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc, err := newCodeCache(filepath.Join(cfg.DataDir, "code"), code)
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.NewDirStore(filepath.Join(cfg.DataDir, "snapshots"))
	if err != nil {
		return nil, err
	}
	handles := filepath.Join(cfg.DataDir, "sandboxes")
	if err := os.MkdirAll(handles, 0o700); err != nil {
		return nil, fmt.Errorf("worker: creating %s: %w", handles, err)
	}
	return &Worker{
		cfg: cfg, driver: driver, logs: logs, code: cc, snaps: snaps,
		log: log.With("component", "worker", "worker", cfg.ID), handles: handles,
		creating: make(chan struct{}, cfg.MaxConcurrentCreates),
		envs:     make(map[string]*Env),
	}, nil
}

// ID is the worker's placement identity.
func (w *Worker) ID() string { return w.cfg.ID }

// Driver is the sandbox driver in use.
func (w *Worker) Driver() sandbox.Driver { return w.driver }

// CreateSandbox creates environment id (empty: a fresh one) for spec and
// runs its init. On an init failure it returns an *InitError and leaves
// nothing behind. A spec with a SnapStart snapshot (InitType snap-start)
// restores from it when this worker holds it and its driver can restore;
// otherwise the environment initialises on demand.
func (w *Worker) CreateSandbox(ctx context.Context, id string, spec fnspec.Spec) (*Env, error) {
	select {
	case w.creating <- struct{}{}:
		defer func() { <-w.creating }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	start := time.Now()
	codeDir, err := w.code.Get(ctx, spec.CodeSha256)
	if err != nil {
		return nil, err
	}
	fetched := time.Now()

	if id == "" {
		id = newSandboxID()
	}
	if !validSandboxID(id) {
		// It names files and cgroups on this host.
		return nil, fmt.Errorf("sandbox id %q: want 1–64 of [a-z0-9-]: %w", id, errdefs.ErrInvalidArgument)
	}
	w.mu.Lock()
	_, dup := w.envs[id]
	w.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("sandbox %s: %w", id, errdefs.ErrAlreadyExists)
	}
	if spec.InitType == fnspec.InitSnapStart {
		if img, ok := w.snapshotFor(ctx, spec); ok {
			env, err := w.restoreSandbox(ctx, id, spec, codeDir, img, start)
			var ie *InitError
			if err == nil || errors.As(err, &ie) || ctx.Err() != nil {
				return env, err
			}
			// The platform could not restore (a damaged image, a
			// runsc that changed under it): the function still runs,
			// initialised on demand.
			w.log.Warn("restoring from snapshot failed; initialising on demand", "sandbox", id, "snapshot", spec.Snapshot, "err", err)
		}
		// No snapshot to restore here: an on-demand init, and the
		// environment says so.
		spec.InitType, spec.Snapshot = "", ""
	}
	env, sb, err := w.startSandbox(ctx, id, spec, codeDir, start)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Env, error) {
		w.destroy(context.WithoutCancel(ctx), env)
		return nil, err
	}
	created := time.Now()
	initDur, initErr, err := env.sess.initRuntime(ctx, w.initMessage(spec, env.LogStream, false), w.cfg.InitTimeout+time.Second)
	if err != nil {
		return fail(fmt.Errorf("initialising sandbox %s: %w", id, err))
	}
	env.CodeFetch, env.SandboxCreate, env.Init = fetched.Sub(start), created.Sub(fetched), initDur
	if initErr != nil {
		lines := env.sess.takeLines()
		lines = append(lines, fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: error\tError Type: %s", float64(initDur)/float64(time.Millisecond), initErr.ErrorType))
		w.appendLogs(ctx, env, lines)
		initErr.LogTail = tail(lines)
		w.destroy(context.WithoutCancel(ctx), env)
		return nil, initErr
	}
	if err := limitCPU(sb, spec); err != nil {
		return fail(fmt.Errorf("limiting CPU of sandbox %s: %w", id, err))
	}
	w.mu.Lock()
	w.envs[id] = env
	w.mu.Unlock()
	// ready is the whole of it by the worker's clock: init as the agent
	// times it leaves out the Init message's transit and the CPU limit.
	w.log.Debug("sandbox ready", "sandbox", id, "function", spec.FunctionName, "version", spec.Version,
		"code_fetch", env.CodeFetch, "create", env.SandboxCreate, "init", env.Init, "ready", time.Since(start))
	return env, nil
}

// sandboxSpec is the sandbox of spec's environment id. A snapshot's
// sandbox and every sandbox restored from it get the same one but for the
// ID: runsc restores only into the mounts it checkpointed.
func (w *Worker) sandboxSpec(id string, spec fnspec.Spec, codeDir string) sandbox.Spec {
	return sandbox.Spec{
		ID:          id,
		AgentBinary: w.cfg.AgentBinary,
		CodeDir:     codeDir,
		RuntimeDir:  w.cfg.RuntimeDir,
		ExtraMounts: w.cfg.ExtraMounts,
		MemoryMB:    spec.MemoryMB,
		TmpMB:       spec.EphemeralMB,
		Network:     spec.Network,
		// Init runs at full speed (Lambda boosts init); the quota
		// proportional to memory applies from the first invoke on.
		DeferCPU: true,
		Stderr:   &slogWriter{log: w.log, sandbox: id},
	}
}

// startSandbox creates sandbox id, persists its handle and waits for the
// agent's Hello. On error nothing is left behind.
func (w *Worker) startSandbox(ctx context.Context, id string, spec fnspec.Spec, codeDir string, start time.Time) (*Env, sandbox.Sandbox, error) {
	if _, err := runtimes.Resolve(spec.Runtime, spec.Handler); err != nil {
		return nil, nil, fmt.Errorf("resolving runtime %s: %w", spec.Runtime, err)
	}
	sb, err := w.driver.Create(ctx, w.sandboxSpec(id, spec, codeDir))
	if err != nil {
		return nil, nil, fmt.Errorf("creating sandbox for %s: %w", spec.FunctionName, err)
	}
	if err := w.persist(sb.Handle()); err != nil {
		_ = sb.Destroy(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	env := &Env{ID: id, Spec: spec, LogStream: logs.NewStreamName(start, spec.Version), Created: start, sess: newSession(sb)}
	if err := env.sess.waitHello(ctx); err != nil {
		w.destroy(context.WithoutCancel(ctx), env)
		return nil, nil, fmt.Errorf("starting agent in sandbox %s: %w", id, err)
	}
	return env, sb, nil
}

// initMessage is the agent's Init for spec. A snapshot's init (snapshot
// true) runs the before-snapshot hooks and waits to be restored.
func (w *Worker) initMessage(spec fnspec.Spec, logStream string, snapshot bool) agentproto.Init {
	argv, _ := runtimes.Resolve(spec.Runtime, spec.Handler)
	timeout := w.cfg.InitTimeout
	if snapshot {
		timeout = snapshotInitTimeout(spec)
	}
	return agentproto.Init{
		Bootstrap: argv,
		Dir:       sandbox.TaskRoot,
		Env: runtimes.Env(runtimes.EnvInput{
			FunctionName: spec.FunctionName, Version: spec.Version, MemoryMB: spec.MemoryMB,
			Handler: spec.Handler, Runtime: spec.Runtime, Region: w.cfg.Region,
			LogGroup: logs.GroupName(spec.FunctionName), LogStream: logStream,
			InitType: spec.InitType, RuntimeAPI: runtimeAPIAddr, UserVars: spec.Environment,
		}),
		FunctionName:    spec.FunctionName,
		FunctionVersion: spec.Version,
		Handler:         spec.Handler,
		RuntimeAPIAddr:  runtimeAPIAddr,
		InitTimeoutMs:   timeout.Milliseconds(),
		Snapshot:        snapshot,
	}
}

// limitCPU applies spec's CPU quota to a sandbox created with DeferCPU.
func limitCPU(sb sandbox.Sandbox, spec fnspec.Spec) error {
	l, ok := sb.(sandbox.CPULimiter)
	if !ok {
		return nil
	}
	return l.LimitCPU(sandbox.Spec{MemoryMB: spec.MemoryMB}.CPU())
}

// PrefetchCode puts a code package in the worker's cache ahead of the
// first sandbox that needs it (a fetch already under way is joined, a
// cached package costs a stat). Failures are only logged: the first
// CreateSandbox fetches again and reports its own error.
func (w *Worker) PrefetchCode(ctx context.Context, codeSha256 string) {
	if _, err := w.code.Get(ctx, codeSha256); err != nil && ctx.Err() == nil {
		w.log.Warn("prefetching code", "code_sha256", codeSha256, "err", err)
	}
}

func validSandboxID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// runtimeAPIAddr is where the agent serves the Runtime API in every sandbox.
const runtimeAPIAddr = "127.0.0.1:9001"

// InvokeRequest is one synchronous invocation.
type InvokeRequest struct {
	RequestID     string
	InvokedARN    string
	Payload       []byte
	ClientContext string // decoded JSON
	TraceID       string
	TenantID      string
	// Tail asks for the last 4 KB of the invoke's log.
	Tail bool
	// Timeout is the function's. The worker enforces it from the
	// sandbox's spec; a caller across the network uses it to give up on a
	// worker that vanished mid-invoke.
	Timeout time.Duration
}

// InvokeResult is the outcome of an invoke that reached the function.
type InvokeResult struct {
	Payload []byte
	// FunctionError is lambdaerr.Unhandled when the function (or the
	// platform on its behalf: timeout, crash) failed; Payload is then the
	// error JSON.
	FunctionError string
	// ErrorType classifies a failure (Runtime.ExitError, Sandbox.Timedout …).
	ErrorType string
	LogTail   []byte
	Duration  time.Duration
	MaxMemory uint64 // bytes
	// Dead is true when the environment was destroyed (timeout, crash, OOM):
	// the caller must not use it again.
	Dead bool
}

// Invoke runs one event in env. Errors are platform failures (the function
// did not run to an outcome); function failures come back in InvokeResult.
func (w *Worker) Invoke(ctx context.Context, envID string, req InvokeRequest) (InvokeResult, error) {
	if !validRequestID(req.RequestID) {
		// It becomes a Runtime API path inside the sandbox: an empty or
		// odd one breaks the runtime, not just this invoke.
		return InvokeResult{}, fmt.Errorf("request id %q: want 1–64 of [A-Za-z0-9-]: %w", req.RequestID, errdefs.ErrInvalidArgument)
	}
	w.mu.Lock()
	env := w.envs[envID]
	w.mu.Unlock()
	if env == nil {
		return InvokeResult{}, fmt.Errorf("sandbox %s: %w", envID, errdefs.ErrNotFound)
	}
	env.mu.Lock()
	if env.dead {
		env.mu.Unlock()
		return InvokeResult{}, fmt.Errorf("sandbox %s is dead: %w", envID, errdefs.ErrNotFound)
	}
	if env.busy {
		env.mu.Unlock()
		return InvokeResult{}, fmt.Errorf("sandbox %s is busy: %w", envID, errdefs.ErrConflict)
	}
	env.busy = true
	first := env.invokes == 0
	env.mu.Unlock()

	spec := env.Spec
	var initLines []string
	if first {
		initLines = env.sess.takeLines()
		if env.Restore > 0 {
			initLines = append(initLines, logs.RestoreReportLine(env.Restore))
		}
	}
	start := time.Now()
	deadline := start.Add(spec.Timeout)
	timer := time.NewTimer(spec.Timeout)
	res, err := env.sess.invoke(ctx, agentproto.Invoke{
		RequestID:     req.RequestID,
		DeadlineMs:    deadline.UnixMilli(),
		InvokedARN:    req.InvokedARN,
		TraceID:       req.TraceID,
		ClientContext: req.ClientContext,
		TenantID:      req.TenantID,
		Payload:       req.Payload,
	}, timer)
	timer.Stop()
	dur := time.Since(start)

	out := InvokeResult{Duration: dur}
	var extra []string
	switch {
	case err == nil:
		out.Payload = res.Body
		if res.Error {
			out.FunctionError = lambdaerr.Unhandled
			out.ErrorType = res.ErrorType
		}
	case errors.Is(err, errInvokeTimeout):
		out.Dead = true
		msg := fmt.Sprintf("Task timed out after %.2f seconds", dur.Seconds())
		out.FunctionError, out.ErrorType = lambdaerr.Unhandled, lambdaerr.SandboxTimedout
		out.Payload = lambdaerr.Body(lambdaerr.SandboxTimedout, "RequestId: "+req.RequestID+" Error: "+msg)
		extra = append(extra, logs.TimeoutLine(time.Now(), req.RequestID, dur))
	case errors.Is(err, errSandboxDied):
		out.Dead = true
		out.FunctionError = lambdaerr.Unhandled
		out.ErrorType, out.Payload = w.deathReport(ctx, env, req.RequestID)
		extra = append(extra, "RequestId: "+req.RequestID+" Error: "+errorMessageOf(out.Payload), out.ErrorType)
	default:
		// The caller gave up (ctx): the runtime is mid-invoke in an unknown
		// state, so the environment cannot be reused.
		w.destroy(context.WithoutCancel(ctx), env)
		return InvokeResult{}, fmt.Errorf("invoking in sandbox %s: %w", envID, err)
	}

	out.MaxMemory = peakMemory(ctx, env.sess.sb)
	var initDur, restoreDur time.Duration
	if first {
		initDur, restoreDur = env.Init, env.Restore
	}
	lines := env.sess.takeLines()
	all := make([]string, 0, len(initLines)+len(lines)+len(extra)+3)
	all = append(all, initLines...)
	all = append(all, logs.StartLine(req.RequestID, spec.Version))
	all = append(all, lines...)
	all = append(all, extra...)
	all = append(all, logs.EndLine(req.RequestID), logs.Report{
		RequestID: req.RequestID, Duration: dur, MemorySizeMB: spec.MemoryMB,
		MaxMemoryUsed: int(out.MaxMemory >> 20), InitDuration: initDur, RestoreDuration: restoreDur,
	}.Line())
	w.appendLogs(ctx, env, all)
	if req.Tail {
		out.LogTail = tail(all)
	}

	env.mu.Lock()
	env.busy = false
	env.invokes++
	if out.Dead {
		env.dead = true
	}
	env.mu.Unlock()
	if out.Dead {
		go w.destroy(context.WithoutCancel(ctx), env)
	}
	return out, nil
}

// peakMemory reads a sandbox's memory high-water mark the cheapest way it
// offers: this runs after every invoke.
func peakMemory(ctx context.Context, sb sandbox.Sandbox) uint64 {
	if p, ok := sb.(sandbox.MemoryPeaker); ok {
		if v, err := p.PeakMemory(); err == nil {
			return v
		}
	}
	if st, err := sb.Stats(ctx); err == nil {
		return st.MaxMemoryBytes
	}
	return 0
}

// deathReport classifies a runtime that died mid-invoke.
func (w *Worker) deathReport(ctx context.Context, env *Env, requestID string) (string, json.RawMessage) {
	ex, _ := env.sess.exitInfo()
	status := "Runtime exited without providing a reason"
	if ex != nil {
		status = "Runtime exited with error: " + ex.Status
	}
	if st, err := env.sess.sb.Stats(ctx); err == nil && st.OOMKills > 0 {
		if ex == nil {
			// The limit killed the whole sandbox (gVisor), agent and
			// all, so no exit was reported: the runtime was SIGKILLed
			// with everything else, which is what Lambda says too.
			status = "Runtime exited with error: signal: killed"
		}
		return lambdaerr.RuntimeOutOfMemory, lambdaerr.Body(lambdaerr.RuntimeOutOfMemory, "RequestId: "+requestID+" Error: "+status)
	}
	return lambdaerr.RuntimeExitError, lambdaerr.Body(lambdaerr.RuntimeExitError, "RequestId: "+requestID+" Error: "+status)
}

func errorMessageOf(body []byte) string {
	var m struct {
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &m)
	if i := strings.Index(m.ErrorMessage, "Error: "); i >= 0 {
		return m.ErrorMessage[i+len("Error: "):]
	}
	return m.ErrorMessage
}

// Destroy shuts an environment down and removes its sandbox.
func (w *Worker) Destroy(ctx context.Context, envID string) error {
	w.mu.Lock()
	env := w.envs[envID]
	w.mu.Unlock()
	if env == nil {
		return nil
	}
	env.sess.shutdown("spindown", 300*time.Millisecond)
	w.destroy(ctx, env)
	return nil
}

func (w *Worker) destroy(ctx context.Context, env *Env) {
	env.mu.Lock()
	env.dead = true
	env.mu.Unlock()
	if err := env.sess.sb.Destroy(ctx); err != nil {
		w.log.Warn("destroying sandbox", "sandbox", env.ID, "err", err)
	}
	w.forget(env.ID)
	w.mu.Lock()
	delete(w.envs, env.ID)
	w.mu.Unlock()
}

// EnvInfo describes a live environment.
type EnvInfo struct {
	ID, Function, Key string
	MemoryMB          int
}

// List reports the live environments.
func (w *Worker) List() []EnvInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]EnvInfo, 0, len(w.envs))
	for id, e := range w.envs {
		out = append(out, EnvInfo{ID: id, Function: e.Spec.FunctionName, Key: e.Spec.Key, MemoryMB: e.Spec.MemoryMB})
	}
	return out
}

// Handle returns the driver handle of a live environment.
func (w *Worker) Handle(id string) (sandbox.Handle, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.envs[id]
	if e == nil {
		return sandbox.Handle{}, false
	}
	return e.sess.sb.Handle(), true
}

// Close destroys every environment and waits for code fetches under way.
func (w *Worker) Close(ctx context.Context) {
	w.DestroyAll(ctx)
	w.code.wait(ctx)
}

// DestroyAll destroys every environment, busy ones too, and returns how
// many there were.
func (w *Worker) DestroyAll(ctx context.Context) int {
	w.mu.Lock()
	envs := make([]*Env, 0, len(w.envs))
	for _, e := range w.envs {
		envs = append(envs, e)
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range envs {
		wg.Go(func() {
			e.sess.shutdown("spindown", 300*time.Millisecond)
			w.destroy(ctx, e)
		})
	}
	wg.Wait()
	return len(envs)
}

// Recover reaps the sandboxes a previous worker process left behind. Our
// drivers cannot re-attach the stdio control channel, so every recovered
// sandbox is destroyed; the assignment service starts fresh ones on demand.
func (w *Worker) Recover(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(w.handles)
	if err != nil {
		return 0, fmt.Errorf("worker: reading handles: %w", err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(w.handles, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var h sandbox.Handle
		if err := json.Unmarshal(b, &h); err != nil {
			w.log.Warn("dropping unreadable handle", "file", p, "err", err)
			os.Remove(p)
			continue
		}
		if h.Driver != w.driver.Name() {
			w.log.Warn("handle from another driver left in place", "file", p, "driver", h.Driver)
			continue
		}
		sb, err := w.driver.Recover(ctx, h)
		if err == nil {
			_ = sb.Destroy(ctx)
		} else if !errors.Is(err, sandbox.ErrGone) {
			w.log.Warn("recovering sandbox", "sandbox", h.ID, "err", err)
			continue
		}
		os.Remove(p)
		n++
	}
	return n, nil
}

func (w *Worker) persist(h sandbox.Handle) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("worker: encoding handle: %w", err)
	}
	p := filepath.Join(w.handles, h.ID+".json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("worker: persisting handle: %w", err)
	}
	return os.Rename(tmp, p)
}

func (w *Worker) forget(id string) { os.Remove(filepath.Join(w.handles, id+".json")) }

func (w *Worker) appendLogs(ctx context.Context, env *Env, lines []string) {
	if w.logs == nil || len(lines) == 0 {
		return
	}
	now := time.Now()
	evs := make([]logs.Event, len(lines))
	for i, l := range lines {
		evs[i] = logs.Event{Timestamp: now, Message: l}
	}
	if err := w.logs.Append(ctx, logs.GroupName(env.Spec.FunctionName), env.LogStream, evs); err != nil {
		w.log.Warn("appending logs", "sandbox", env.ID, "err", err)
	}
}

// tailLimit is the size of X-Amz-Log-Result before base64 (spec §2).
const tailLimit = 4096

func tail(lines []string) []byte {
	n := 0
	i := len(lines)
	for i > 0 && n+len(lines[i-1])+1 <= tailLimit {
		n += len(lines[i-1]) + 1
		i--
	}
	b := make([]byte, 0, n)
	for _, l := range lines[i:] {
		b = append(b, l...)
		b = append(b, '\n')
	}
	return b
}

func newSandboxID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "sb-" + hex.EncodeToString(b[:])
}

// slogWriter turns an agent's stderr into log records.
type slogWriter struct {
	log     *slog.Logger
	sandbox string
}

func (s *slogWriter) Write(p []byte) (int, error) {
	s.log.Debug("agent", "sandbox", s.sandbox, "msg", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
