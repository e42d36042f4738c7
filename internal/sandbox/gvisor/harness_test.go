package gvisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/sandbox"
)

// testBins are the agent and the test function, built once per test binary
// run (building under a 2-core shared machine costs seconds).
type testBins struct {
	agent, fn string
}

var (
	binsOnce sync.Once
	bins     testBins
	binsErr  error
	binsDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binsDir != "" {
		os.RemoveAll(binsDir)
	}
	os.Exit(code)
}

// buildBins builds ignis-agent and testdata/fn statically, or skips when
// the agent does not exist.
func buildBins(t testing.TB) testBins {
	t.Helper()
	binsOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binsErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if _, err := os.Stat(filepath.Join(root, "cmd", "ignis-agent")); err != nil {
			binsErr = fmt.Errorf("skip: %w", err)
			return
		}
		binsDir, binsErr = os.MkdirTemp("", "gvisor-test-bin-")
		if binsErr != nil {
			return
		}
		os.Chmod(binsDir, 0o755)
		b := testBins{agent: filepath.Join(binsDir, "ignis-agent"), fn: filepath.Join(binsDir, "fn")}
		for _, p := range []struct{ out, pkg string }{
			{b.agent, "./cmd/ignis-agent"},
			{b.fn, "./internal/sandbox/gvisor/testdata/fn"},
		} {
			cmd := exec.Command("go", "build", "-o", p.out, p.pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				binsErr = fmt.Errorf("building %s: %v\n%s", p.pkg, err, out)
				return
			}
		}
		bins = b
	})
	if binsErr != nil {
		if strings.HasPrefix(binsErr.Error(), "skip: ") {
			t.Skip(binsErr)
		}
		t.Fatal(binsErr)
	}
	return bins
}

// fnSpec returns a spec running testdata/fn as /var/task/bootstrap.
func fnSpec(t testing.TB, b testBins, id string) sandbox.Spec {
	t.Helper()
	dir, err := os.MkdirTemp("", "gvisor-test-code-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	code, rt := filepath.Join(dir, "code"), filepath.Join(dir, "runtime")
	for _, d := range []string{code, rt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fnb, err := os.ReadFile(b.fn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), fnb, 0o755); err != nil {
		t.Fatal(err)
	}
	return sandbox.Spec{
		ID: id, AgentBinary: b.agent, CodeDir: code, RuntimeDir: rt,
		MemoryMB: 256, Env: []string{"PATH=/usr/bin:/bin"},
	}
}

// conn is the worker side of one sandbox's control channel.
type conn struct {
	t      testing.TB
	sb     sandbox.Sandbox
	w      *agentproto.Writer
	frames chan agentproto.Frame
	stderr *bytes.Buffer
}

func newConn(t testing.TB, sb sandbox.Sandbox) *conn {
	c := &conn{t: t, sb: sb, w: agentproto.NewWriter(sb.Control()), frames: make(chan agentproto.Frame, 16)}
	go func() {
		defer close(c.frames)
		r := agentproto.NewReader(sb.Control())
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			if f.Type == agentproto.TypeLog {
				if l, err := f.Log(); err == nil {
					t.Logf("[%s %s] %s", sb.ID(), l.Stream, l.Line)
				}
				continue
			}
			c.frames <- f
		}
	}()
	return c
}

func (c *conn) next(want agentproto.Type, d time.Duration) agentproto.Frame {
	c.t.Helper()
	f, err := c.tryNext(want, d)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// tryNext is next, returning its failure rather than failing the test.
func (c *conn) tryNext(want agentproto.Type, d time.Duration) (agentproto.Frame, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			return f, fmt.Errorf("control channel of %s closed waiting for %v (exit: %v)", c.sb.ID(), want, c.sb.ExitErr())
		}
		if f.Type != want {
			return f, fmt.Errorf("got %v (%s), want %v", f.Type, f.Body, want)
		}
		return f, nil
	case <-time.After(d):
		return agentproto.Frame{}, fmt.Errorf("no %v from %s within %v", want, c.sb.ID(), d)
	}
}

func (c *conn) hello() {
	c.t.Helper()
	c.next(agentproto.TypeHello, 20*time.Second)
}

func (c *conn) init() { c.initAt("127.0.0.1:9001") }

// initAt sends Init with the Runtime API on addr and waits for InitDone.
func (c *conn) initAt(addr string) {
	c.t.Helper()
	if err := c.tryInitAt(addr); err != nil {
		c.t.Fatal(err)
	}
}

// tryInitAt is initAt, returning its failure rather than failing the test.
func (c *conn) tryInitAt(addr string) error {
	err := c.w.Init(agentproto.Init{
		Bootstrap: []string{"/var/task/bootstrap"},
		Env: []string{
			"AWS_LAMBDA_FUNCTION_NAME=fn", "AWS_LAMBDA_FUNCTION_VERSION=1",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001",
			"LAMBDA_TASK_ROOT=/var/task", "_HANDLER=bootstrap", "PATH=/usr/bin:/bin",
		},
		Dir: "/var/task", FunctionName: "fn", FunctionVersion: "1", Handler: "bootstrap",
		RuntimeAPIAddr: addr, InitTimeoutMs: 20000,
	})
	if err != nil {
		return fmt.Errorf("sending Init: %w", err)
	}
	_, err = c.tryNext(agentproto.TypeInitDone, 30*time.Second)
	return err
}

type fnResponse struct {
	Token   string `json:"token"`
	Invokes int    `json:"invokes"`
	Intact  bool   `json:"intact"`
	PID     int    `json:"pid"`
}

func (c *conn) invoke(id string) fnResponse {
	c.t.Helper()
	err := c.w.Invoke(agentproto.Invoke{
		RequestID: id, DeadlineMs: time.Now().Add(30 * time.Second).UnixMilli(),
		InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:fn", Payload: []byte(`{}`),
	})
	if err != nil {
		c.t.Fatalf("sending Invoke: %v", err)
	}
	f := c.next(agentproto.TypeResult, 30*time.Second)
	r, err := f.Result()
	if err != nil {
		c.t.Fatal(err)
	}
	if r.RequestID != id || r.Error {
		c.t.Fatalf("Result = %+v %s", r, r.Body)
	}
	var resp fnResponse
	if err := json.Unmarshal(r.Body, &resp); err != nil {
		c.t.Fatalf("decoding %s: %v", r.Body, err)
	}
	return resp
}

// destroy destroys sb and fails t if that takes long.
func destroy(t testing.TB, sb sandbox.Sandbox) {
	t.Helper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sb.Destroy(ctx); err != nil {
		t.Errorf("Destroy %s: %v", sb.ID(), err)
	}
	t.Logf("destroyed %s in %v", sb.ID(), time.Since(t0))
}

var _ = io.Discard

// nativeConn drives a natively started agent with the same messages.
type nativeConn struct {
	*conn
}

func newNativeConn(t testing.TB, rw io.ReadWriter) nativeConn {
	c := &conn{t: t, sb: nativeID{}, w: agentproto.NewWriter(rw), frames: make(chan agentproto.Frame, 16)}
	go func() {
		defer close(c.frames)
		r := agentproto.NewReader(rw)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			if f.Type != agentproto.TypeLog {
				c.frames <- f
			}
		}
	}()
	return nativeConn{c}
}

// initNative sends Init for the function at its host path, Runtime API on
// a free port.
func (c nativeConn) initNative(bootstrap, dir string) {
	c.t.Helper()
	err := c.w.Init(agentproto.Init{
		Bootstrap: []string{bootstrap},
		Env:       []string{"AWS_LAMBDA_FUNCTION_NAME=fn", "_HANDLER=bootstrap", "PATH=/usr/bin:/bin"},
		Dir:       dir, FunctionName: "fn", FunctionVersion: "1", Handler: "bootstrap",
		RuntimeAPIAddr: "127.0.0.1:0", InitTimeoutMs: 20000,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.next(agentproto.TypeInitDone, 30*time.Second)
}

// nativeID stands in for a sandbox in conn's error messages.
type nativeID struct{ sandbox.Sandbox }

func (nativeID) ID() string     { return "native" }
func (nativeID) ExitErr() error { return nil }
