package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/runtimes"
)

// Binaries built once by TestMain.
var (
	agentBin  string // ignis-agent, CGO_ENABLED=0
	goFuncBin string // testdata/gofunc, an aws-lambda-go function
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ignis-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "ignis-agent")
	goFuncBin = filepath.Join(dir, "gofunc")
	for _, b := range []struct{ out, pkg string }{
		{agentBin, "github.com/ignis-run/ignis/cmd/ignis-agent"},
		{goFuncBin, "./testdata/gofunc"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fn is a function laid out on the host as a sandbox would see it.
type fn struct {
	name, runtime, handler string
	taskRoot, optRoot      string
	runtimeDir             string
	bootstrap              []string
	userVars               map[string]string
	initTimeoutMs          int64
}

// newFn makes a function with empty code, opt and runtime directories.
func newFn(tb testing.TB, runtime, handler string) *fn {
	tb.Helper()
	root := tb.TempDir()
	f := &fn{name: "fn-" + strings.ReplaceAll(tb.Name(), "/", "-"), runtime: runtime, handler: handler,
		taskRoot: filepath.Join(root, "task"), optRoot: filepath.Join(root, "opt"), runtimeDir: filepath.Join(root, "runtime"),
		initTimeoutMs: 20000}
	if len(f.name) > 64 {
		f.name = f.name[:64]
	}
	for _, d := range []string{f.taskRoot, f.optRoot, f.runtimeDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := runtimes.Install(f.runtimeDir); err != nil {
		tb.Fatal(err)
	}
	argv, err := runtimes.ResolveAt(f.runtimeDir, runtimes.DefaultBinDir, runtime, handler)
	if err != nil {
		tb.Fatal(err)
	}
	f.bootstrap = argv
	return f
}

// write puts a file into the function's code.
func (f *fn) write(tb testing.TB, name, content string, mode os.FileMode) {
	tb.Helper()
	p := filepath.Join(f.taskRoot, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		tb.Fatal(err)
	}
}

// copyFile copies src to dst with mode.
func copyFile(tb testing.TB, src, dst string, mode os.FileMode) {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		tb.Fatal(err)
	}
}

// fixture copies a shared acceptance fixture into the code directory.
func (f *fn) fixture(tb testing.TB, name string) {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "acceptance", "fixtures", name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Skipf("acceptance fixtures not found beside the repo: %v", err)
	}
	for _, e := range ents {
		copyFile(tb, filepath.Join(dir, e.Name()), filepath.Join(f.taskRoot, e.Name()), 0o644)
	}
}

func (f *fn) init() agentproto.Init {
	env := runtimes.Env(runtimes.EnvInput{
		FunctionName: f.name, MemoryMB: 128, Handler: f.handler, Runtime: f.runtime,
		TaskRoot: f.taskRoot, RuntimeDir: f.runtimeDir, UserVars: f.userVars,
	})
	return agentproto.Init{
		Bootstrap: f.bootstrap, Env: env, Dir: f.taskRoot,
		FunctionName: f.name, FunctionVersion: "$LATEST", Handler: f.handler,
		RuntimeAPIAddr: "127.0.0.1:0", InitTimeoutMs: f.initTimeoutMs,
	}
}

// agentProc is a running ignis-agent subprocess driven over agentproto.
type agentProc struct {
	tb     testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	w      *agentproto.Writer
	frames chan agentproto.Frame
	stderr *bytes.Buffer
	logs   []agentproto.Log
	hello  agentproto.Hello
	waited chan error
	seq    atomic.Int64
}

// start runs the agent for f and waits for Hello.
func (f *fn) start(tb testing.TB) *agentProc {
	tb.Helper()
	cmd := exec.Command(agentBin, "-task-root", f.taskRoot, "-opt-root", f.optRoot, "-log-level", "debug")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &agentProc{tb: tb, cmd: cmd, stdin: stdin, w: agentproto.NewWriter(stdin),
		frames: make(chan agentproto.Frame, 1024), stderr: &bytes.Buffer{}, waited: make(chan error, 1)}
	cmd.Stderr = p.stderr // read only after Wait
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		r := agentproto.NewReader(stdout)
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				close(p.frames)
				return
			}
			p.frames <- fr
		}
	}()
	go func() { p.waited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.waited
		if tb.Failed() {
			tb.Logf("agent stderr:\n%s", p.stderr.String())
		}
	})
	fr := p.next(agentproto.TypeHello, 10*time.Second)
	if err := fr.DecodeJSON(&p.hello); err != nil {
		tb.Fatal(err)
	}
	return p
}

// next returns the next frame that is not a Log (Logs are collected), and
// fails unless it has type want (0: any).
func (p *agentProc) next(want agentproto.Type, timeout time.Duration) agentproto.Frame {
	p.tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case fr, ok := <-p.frames:
			if !ok {
				p.tb.Fatalf("agent closed stdout while waiting for %v", want)
			}
			if fr.Type == agentproto.TypeLog {
				l, err := fr.Log()
				if err != nil {
					p.tb.Fatal(err)
				}
				l.Line = append([]byte(nil), l.Line...)
				p.logs = append(p.logs, l)
				continue
			}
			if want != 0 && fr.Type != want {
				p.tb.Fatalf("got %v %s, want %v", fr.Type, fr.Body, want)
			}
			return fr
		case <-t.C:
			p.tb.Fatalf("timeout waiting for %v", want)
		}
	}
}

// drainLogs collects Log frames that arrive within d.
func (p *agentProc) drainLogs(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case fr, ok := <-p.frames:
			if !ok {
				return
			}
			if fr.Type == agentproto.TypeLog {
				l, _ := fr.Log()
				l.Line = append([]byte(nil), l.Line...)
				p.logs = append(p.logs, l)
			} else {
				p.tb.Fatalf("unexpected %v %s", fr.Type, fr.Body)
			}
		case <-t.C:
			return
		}
	}
}

// initOK sends Init and requires InitDone.
func (p *agentProc) initOK(m agentproto.Init) agentproto.InitDone {
	p.tb.Helper()
	if err := p.w.Init(m); err != nil {
		p.tb.Fatal(err)
	}
	fr := p.next(0, 30*time.Second)
	if fr.Type != agentproto.TypeInitDone {
		p.tb.Fatalf("init: got %v %s", fr.Type, fr.Body)
	}
	var d agentproto.InitDone
	_ = fr.DecodeJSON(&d)
	return d
}

// initErr sends Init and requires InitError.
func (p *agentProc) initErr(m agentproto.Init) agentproto.InitError {
	p.tb.Helper()
	if err := p.w.Init(m); err != nil {
		p.tb.Fatal(err)
	}
	fr := p.next(agentproto.TypeInitError, 30*time.Second)
	var e agentproto.InitError
	if err := fr.DecodeJSON(&e); err != nil {
		p.tb.Fatal(err)
	}
	return e
}

// send writes an Invoke and returns its request id.
func (p *agentProc) send(payload string) string {
	p.tb.Helper()
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", p.seq.Add(1))
	err := p.w.Invoke(agentproto.Invoke{RequestID: id, DeadlineMs: time.Now().Add(30 * time.Second).UnixMilli(),
		InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:fn", Payload: []byte(payload)})
	if err != nil {
		p.tb.Fatal(err)
	}
	return id
}

// invoke sends one event and returns its Result.
func (p *agentProc) invoke(payload string) (string, agentproto.Result) {
	p.tb.Helper()
	id := p.send(payload)
	fr := p.next(agentproto.TypeResult, 30*time.Second)
	res, err := fr.Result()
	if err != nil {
		p.tb.Fatal(err)
	}
	if res.RequestID != id {
		p.tb.Fatalf("result for %q, want %q", res.RequestID, id)
	}
	return id, res
}

// shutdown sends Shutdown, requires ShutdownDone and a clean exit.
func (p *agentProc) shutdown() {
	p.tb.Helper()
	if err := p.w.Shutdown(agentproto.Shutdown{Reason: "spindown", DeadlineMs: time.Now().Add(2 * time.Second).UnixMilli()}); err != nil {
		p.tb.Fatal(err)
	}
	for {
		// A RuntimeExit may still be on its way (e.g. after an InitError).
		if fr := p.next(0, 10*time.Second); fr.Type == agentproto.TypeShutdownDone {
			break
		} else if fr.Type != agentproto.TypeRuntimeExit {
			p.tb.Fatalf("got %v %s, want ShutdownDone", fr.Type, fr.Body)
		}
	}
	select {
	case err := <-p.waited:
		p.waited <- err
		if err != nil {
			p.tb.Fatalf("agent exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		p.tb.Fatal("agent did not exit after ShutdownDone")
	}
}

// logText returns the collected lines of stream tagged with id ("" = all).
func (p *agentProc) logText(stream, id string) string {
	var b strings.Builder
	for _, l := range p.logs {
		if (stream == "" || l.Stream == stream) && (id == "" || l.RequestID == id) {
			b.Write(l.Line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// decode unmarshals a result body.
func decode(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decoding %q: %v", b, err)
	}
	return m
}

// logsUntil collects Log frames until the text of stream/id contains want
// (or timeout) and returns that text. Output travels through pipes, not
// the HTTP answer, so it may trail the Result.
func (p *agentProc) logsUntil(stream, id, want string, timeout time.Duration) string {
	p.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := p.logText(stream, id)
		if strings.Contains(got, want) || time.Now().After(deadline) {
			return got
		}
		p.drainLogs(20 * time.Millisecond)
	}
}
