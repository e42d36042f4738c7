package sandboxtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/sandbox"
)

// binaries are the programs the suite runs inside sandboxes, built once per
// Run into a directory removed when the top-level test ends.
type binaries struct {
	agent string // static ignis-agent
	probe string // static probe bootstrap
}

// buildBinaries builds ignis-agent and the probe with CGO_ENABLED=0. It skips
// the test when cmd/ignis-agent does not exist yet.
func buildBinaries(t testing.TB) binaries {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("locating module root: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if _, err := os.Stat(filepath.Join(root, "cmd", "ignis-agent")); err != nil {
		t.Skipf("conformance suite needs the agent: %s/cmd/ignis-agent does not exist yet", root)
	}
	// One directory for the whole Run, shared by every subtest.
	dir, err := os.MkdirTemp("", "sandboxtest-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := binaries{agent: filepath.Join(dir, "ignis-agent"), probe: filepath.Join(dir, "probe")}
	for _, p := range []struct{ out, pkg string }{
		{b.agent, "./cmd/ignis-agent"},
		{b.probe, "./internal/sandbox/sandboxtest/testdata/probe"},
	} {
		cmd := exec.Command("go", "build", "-o", p.out, p.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", p.pkg, err, out)
		}
	}
	return b
}

// copy returns copies of the binaries in a fresh directory (new inodes).
func (b binaries) copy(t *testing.T) binaries {
	t.Helper()
	dir := t.TempDir()
	c := binaries{agent: filepath.Join(dir, "ignis-agent"), probe: filepath.Join(dir, "probe")}
	copyFile(t, b.agent, c.agent)
	copyFile(t, b.probe, c.probe)
	return c
}

// newID returns a sandbox ID unique enough that the leak checks can look
// for it in cgroup, mount and state paths.
func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return "sbt-" + hex.EncodeToString(b[:])
}

// lockedBuffer collects the agent's stderr for failure diagnostics.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one sandbox under test plus the worker side of its control channel.
type env struct {
	t      *testing.T
	drv    sandbox.Driver
	sb     sandbox.Sandbox
	spec   sandbox.Spec
	bins   binaries
	stderr *lockedBuffer
	w      *agentproto.Writer
	frames chan agentproto.Frame // every frame except Log

	mu   sync.Mutex
	logs []string // guarded by mu; Log frames, for diagnostics
}

// specOption adjusts the Spec before Create.
type specOption func(*sandbox.Spec)

// startNoFatal is start for use off the test goroutine: it reports a
// failure with t.Error and returns nil.
func startNoFatal(t *testing.T, drv sandbox.Driver, bins binaries, opts ...specOption) (e *env) {
	done := make(chan struct{})
	// Run start on a goroutine of its own so its t.Fatal (runtime.Goexit)
	// ends only that goroutine; nil then means it failed.
	go func() {
		defer close(done)
		e = start(t, drv, bins, opts...)
	}()
	<-done
	return e
}

// start creates a sandbox running the probe as /var/task/bootstrap and
// registers its destruction, leak check and failure diagnostics.
func start(t *testing.T, drv sandbox.Driver, bins binaries, opts ...specOption) *env {
	t.Helper()
	code := filepath.Join(t.TempDir(), "code")
	if err := os.Mkdir(code, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(bins.probe, filepath.Join(code, "bootstrap")); err != nil {
		copyFile(t, bins.probe, filepath.Join(code, "bootstrap"))
	}
	rt := filepath.Join(t.TempDir(), "runtime")
	if err := os.Mkdir(rt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rt, "README"), []byte("runtime dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, drv: drv, bins: bins, stderr: &lockedBuffer{}, frames: make(chan agentproto.Frame, 64)}
	e.spec = sandbox.Spec{
		ID:          newID(),
		AgentBinary: bins.agent,
		CodeDir:     code,
		RuntimeDir:  rt,
		MemoryMB:    256,
		PidsLimit:   256,
		TmpMB:       64,
		Env:         []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Stderr:      e.stderr,
	}
	for _, o := range opts {
		o(&e.spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	sb, err := drv.Create(ctx, e.spec)
	if err != nil {
		t.Fatalf("Create: %v\nagent stderr:\n%s", err, e.stderr)
	}
	t.Logf("created sandbox %s in %v", e.spec.ID, time.Since(t0))
	e.sb = sb
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := sb.Destroy(ctx); err != nil {
			t.Errorf("Destroy in cleanup: %v", err)
		}
		checkNothingLeft(t, e.spec, bins)
	})
	// Registered after the destroy cleanup so it runs before it, while the
	// sandbox can still report stats.
	t.Cleanup(e.diagnose)
	e.w = agentproto.NewWriter(sb.Control())
	go e.readFrames()
	return e
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func (e *env) readFrames() {
	defer close(e.frames)
	r := agentproto.NewReader(e.sb.Control())
	for {
		f, err := r.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				e.addLog(fmt.Sprintf("control channel: %v", err))
			}
			return
		}
		if f.Type == agentproto.TypeLog {
			if l, err := f.Log(); err == nil {
				e.addLog(fmt.Sprintf("[%s %s] %s", l.Stream, l.RequestID, l.Line))
			}
			continue
		}
		e.frames <- f
	}
}

func (e *env) addLog(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.logs = append(e.logs, s)
}

// diagnose dumps what helps explain a failure: agent stderr, function
// logs, stats.
func (e *env) diagnose() {
	if !e.t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := e.sb.Stats(ctx)
	e.t.Logf("diagnostics for %s: stats=%+v (err=%v)", e.spec.ID, st, err)
	select {
	case <-e.sb.Done():
		e.t.Logf("agent exited: %v", e.sb.ExitErr())
	default:
		e.t.Logf("agent still running")
	}
	e.t.Logf("agent stderr:\n%s", e.stderr)
	e.mu.Lock()
	e.t.Logf("function logs:\n%s", strings.Join(e.logs, "\n"))
	e.mu.Unlock()
}

// next returns the next non-Log frame, failing the test after d.
func (e *env) next(d time.Duration) agentproto.Frame {
	e.t.Helper()
	select {
	case f, ok := <-e.frames:
		if !ok {
			e.t.Fatalf("control channel closed (agent exit: %v)", e.sb.ExitErr())
		}
		return f
	case <-time.After(d):
		e.t.Fatalf("no message from the agent within %v", d)
	}
	panic("unreachable")
}

// initialise waits for Hello, sends Init for the probe and waits for InitDone.
func (e *env) initialise() {
	e.t.Helper()
	f := e.next(10 * time.Second)
	if f.Type != agentproto.TypeHello {
		e.t.Fatalf("first message is %v, want Hello", f.Type)
	}
	var h agentproto.Hello
	if err := f.DecodeJSON(&h); err != nil {
		e.t.Fatal(err)
	}
	if h.Version != agentproto.Version {
		e.t.Fatalf("Hello.Version = %d, want %d", h.Version, agentproto.Version)
	}
	if err := e.w.Init(initMessage(e.spec.MemoryMB)); err != nil {
		e.t.Fatalf("sending Init: %v", err)
	}
	f = e.next(15 * time.Second)
	if f.Type != agentproto.TypeInitDone {
		e.t.Fatalf("after Init got %v (%s), want InitDone", f.Type, f.Body)
	}
}

// runtimeAPIAddr is where the agent serves the Runtime API inside each
// sandbox, as on Lambda.
const runtimeAPIAddr = "127.0.0.1:9001"

func initMessage(memoryMB int) agentproto.Init {
	return agentproto.Init{
		Bootstrap: []string{"/var/task/bootstrap"},
		Env: []string{
			"AWS_LAMBDA_FUNCTION_NAME=probe",
			"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
			fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", memoryMB),
			"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/probe",
			"AWS_LAMBDA_LOG_STREAM_NAME=2026/01/01/[$LATEST]00000000000000000000000000000000",
			"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
			"AWS_LAMBDA_RUNTIME_API=" + runtimeAPIAddr,
			"AWS_REGION=us-east-1",
			"AWS_DEFAULT_REGION=us-east-1",
			"LAMBDA_TASK_ROOT=/var/task",
			"LAMBDA_RUNTIME_DIR=/var/runtime",
			"_HANDLER=bootstrap",
			"TZ=:UTC",
			"LANG=en_US.UTF-8",
			"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		},
		Dir:             "/var/task",
		FunctionName:    "probe",
		FunctionVersion: "$LATEST",
		Handler:         "bootstrap",
		RuntimeAPIAddr:  runtimeAPIAddr,
		InitTimeoutMs:   10000,
	}
}

// probeReq is the probe's event; see testdata/probe.
type probeReq struct {
	Action string          `json:"action"`
	N      int             `json:"n,omitempty"`
	Path   string          `json:"path,omitempty"`
	Addr   string          `json:"addr,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// probeResp is the probe's answer.
type probeResp struct {
	OK   bool            `json:"ok"`
	Err  string          `json:"err,omitempty"`
	N    int64           `json:"n,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// outcome is what came back for one invoke: a Result, or the runtime's exit.
type outcome struct {
	result *agentproto.Result
	exit   *agentproto.RuntimeExit
}

// send sends one Invoke with the given function timeout and returns its
// request ID.
func (e *env) send(req probeReq, timeout time.Duration) string {
	e.t.Helper()
	payload, err := json.Marshal(req)
	if err != nil {
		e.t.Fatal(err)
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	err = e.w.Invoke(agentproto.Invoke{
		RequestID:   id,
		DeadlineMs:  time.Now().Add(timeout).UnixMilli(),
		InvokedARN:  "arn:aws:lambda:us-east-1:000000000000:function:probe",
		ContentType: "application/json",
		Payload:     payload,
	})
	if err != nil {
		e.t.Fatalf("sending Invoke: %v", err)
	}
	return id
}

// await waits up to d for the Result of id or a RuntimeExit.
func (e *env) await(id string, d time.Duration) outcome {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f := e.next(time.Until(deadline))
		switch f.Type {
		case agentproto.TypeResult:
			r, err := f.Result()
			if err != nil {
				e.t.Fatal(err)
			}
			if r.RequestID != id {
				e.t.Fatalf("Result for %q, want %q", r.RequestID, id)
			}
			return outcome{result: &r}
		case agentproto.TypeRuntimeExit:
			var x agentproto.RuntimeExit
			if err := f.DecodeJSON(&x); err != nil {
				e.t.Fatal(err)
			}
			return outcome{exit: &x}
		default:
			e.t.Fatalf("unexpected %v during invoke: %s", f.Type, f.Body)
		}
	}
}

// invoke runs one probe action and requires a successful Result.
func (e *env) invoke(req probeReq) probeResp {
	e.t.Helper()
	o := e.await(e.send(req, 10*time.Second), 15*time.Second)
	if o.exit != nil {
		e.t.Fatalf("%s: runtime exited: %+v", req.Action, *o.exit)
	}
	if o.result.Error {
		e.t.Fatalf("%s: function error %s: %s", req.Action, o.result.ErrorType, o.result.Body)
	}
	var resp probeResp
	if err := json.Unmarshal(o.result.Body, &resp); err != nil {
		e.t.Fatalf("%s: decoding response %q: %v", req.Action, o.result.Body, err)
	}
	return resp
}

// waitDone waits up to d for the agent to exit.
func waitDone(t *testing.T, sb sandbox.Sandbox, d time.Duration) {
	t.Helper()
	select {
	case <-sb.Done():
	case <-time.After(d):
		t.Fatalf("agent of %s still running %v later", sb.ID(), d)
	}
}

// fileID identifies an executable across mount namespaces.
type fileID struct{ dev, ino uint64 }

func statID(path string) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

// checkNothingLeft fails t if anything of the sandbox survives on the host: a
// process running the agent or the probe (compared by inode, so a process in
// another mount namespace is found) or naming the sandbox on its command
// line, a cgroup, a mount or a state or temp directory named after its ID.
func checkNothingLeft(t *testing.T, spec sandbox.Spec, bins binaries) {
	t.Helper()
	for _, p := range leftovers(spec, bins) {
		t.Errorf("sandbox %s left behind: %s", spec.ID, p)
	}
}

func leftovers(spec sandbox.Spec, bins binaries) []string {
	var found []string
	exes := map[fileID]bool{}
	for _, p := range []string{bins.agent, bins.probe} {
		if id, ok := statID(p); ok {
			exes[id] = true
		}
	}
	self := fmt.Sprint(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid := ent.Name()
		if pid[0] < '0' || pid[0] > '9' || pid == self {
			continue
		}
		if id, ok := statID("/proc/" + pid + "/exe"); ok && exes[id] {
			found = append(found, "process "+pid+" running the agent or probe")
			continue
		}
		if cmd, err := os.ReadFile("/proc/" + pid + "/cmdline"); err == nil && bytes.Contains(cmd, []byte(spec.ID)) {
			found = append(found, "process "+pid+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, spec.ID) || strings.Contains(l, spec.CodeDir) {
				found = append(found, "mount: "+l)
			}
		}
	}
	for _, root := range []struct {
		dir   string
		depth int
	}{{"/sys/fs/cgroup", 4}, {"/run", 4}, {os.TempDir(), 3}, {"/var/run", 4}, {"/var/lib", 3}} {
		found = append(found, namedPaths(root.dir, spec.ID, root.depth)...)
	}
	return found
}

// namedPaths lists paths under root, at most depth levels down, whose name
// contains id.
func namedPaths(root, id string, depth int) []string {
	var found []string
	base := strings.Count(filepath.Clean(root), string(filepath.Separator))
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.Contains(d.Name(), id) {
			found = append(found, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		if d.IsDir() && strings.Count(p, string(filepath.Separator))-base >= depth {
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
