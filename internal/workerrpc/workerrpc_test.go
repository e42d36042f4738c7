package workerrpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/logs"
	"github.com/ignis-run/ignis/internal/registry"
	"github.com/ignis-run/ignis/internal/runtimes"
	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/server/servertest"
	"github.com/ignis-run/ignis/internal/worker"
	"github.com/ignis-run/ignis/internal/workerrpc"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the jail driver re-executes this binary as its setup stage
	os.Exit(m.Run())
}

// workers is the boundary every implementation serves.
type workers interface {
	assignment.Workers
	invoke.Workers
}

// env is one real worker (jail sandboxes, code from a real registry on an
// embedded NATS) and the specs of the functions it can run.
type env struct {
	nc     *nats.Conn
	worker *worker.Worker
	// echo returns its event; sleep sleeps e["sleep"] seconds; broken
	// fails at import.
	echo, sleep, broken fnspec.Spec
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	ctx := t.Context()
	dir := t.TempDir()
	ns, err := embednats.Start(ctx, embednats.Config{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	reg, err := registry.Open(ctx, registry.Config{JetStream: ns.JetStream(), Runtimes: &registry.HostRuntimes{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	store, err := logs.Open(ctx, ns.Conn(), logs.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })

	id := fmt.Sprintf("rpc-%d", os.Getpid())
	d, err := jail.New(jail.Config{StateDir: filepath.Join(dir, "jail"), CgroupParent: "ignis-" + id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	runtimeDir := filepath.Join(dir, "runtime")
	if err := runtimes.Install(runtimeDir); err != nil {
		t.Fatal(err)
	}
	wcfg := worker.DefaultConfig()
	wcfg.ID, wcfg.DataDir, wcfg.AgentBinary, wcfg.RuntimeDir = id, filepath.Join(dir, "worker"), servertest.Build(t).Agent, runtimeDir
	w, err := worker.New(wcfg, d, reg, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })

	e := &env{nc: ns.Conn(), worker: w}
	for _, f := range []struct {
		spec *fnspec.Spec
		name string
		code string
	}{
		{&e.echo, "echo", "def handler(e, c):\n    return e\n"},
		{&e.sleep, "sleep", "import time\ndef handler(e, c):\n    time.sleep(e['sleep'])\n    return 'slept'\n"},
		{&e.broken, "broken", "raise RuntimeError('broken at import')\n"},
	} {
		cfg, err := reg.CreateFunction(ctx, registry.CreateFunctionInput{
			Name:    f.name,
			ZipFile: servertest.Zip(t, map[string][]byte{"app.py": []byte(f.code)}),
			Config: registry.ConfigInput{
				Role: ptr("arn:aws:iam::000000000000:role/test"), Runtime: ptr("python3.11"), Handler: ptr("app.handler"),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		*f.spec = fnspec.Spec{
			FunctionName: cfg.Name, Version: cfg.Version, Runtime: cfg.Runtime, Handler: cfg.Handler,
			MemoryMB: cfg.MemorySize, Timeout: time.Duration(cfg.Timeout) * time.Second,
			EphemeralMB: cfg.EphemeralStorageSize, CodeSha256: cfg.CodeSha256,
		}
	}
	return e
}

func ptr[T any](v T) *T { return &v }

// serve serves e's worker on e.nc and returns a client over a connection
// of its own, as another node's would be.
func (e *env) serve(t *testing.T) *workerrpc.Client {
	t.Helper()
	srv, err := workerrpc.Serve(e.nc, e.worker, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return workerrpc.NewClient(e.nc)
}

// TestWorkers runs the conformance suite on every implementation of the
// worker boundary: in process, over NATS, and the router either way.
func TestWorkers(t *testing.T) {
	e := newEnv(t)
	remote := e.serve(t)
	local := invoke.NewLocal(e.worker)
	for _, tc := range []struct {
		name string
		ws   workers
	}{
		{"local", local},
		{"remote", remote},
		{"router/local", workerrpc.NewRouter(local, remote)},
		{"router/remote", workerrpc.NewRouter(nil, remote)},
	} {
		t.Run(tc.name, func(t *testing.T) { testWorkers(t, e, tc.ws) })
	}
}

var sandboxSeq int

func newSandboxID() string {
	sandboxSeq++
	return fmt.Sprintf("sb-%d-%d", os.Getpid(), sandboxSeq)
}

func testWorkers(t *testing.T, e *env, ws workers) {
	id := e.worker.ID()
	ctx := t.Context()
	create := func(t *testing.T, spec fnspec.Spec) string {
		t.Helper()
		sb := newSandboxID()
		spec.Key = spec.FunctionName + ":test"
		created, err := ws.CreateSandbox(ctx, id, assignment.CreateRequest{SandboxID: sb, Function: spec.FunctionName, Key: spec.Key, MemoryMB: spec.MemoryMB, Spec: spec})
		if err != nil {
			t.Fatalf("CreateSandbox: %v", err)
		}
		if !json.Valid(created.Handle) {
			t.Errorf("CreateSandbox handle %q is not JSON", created.Handle)
		}
		t.Cleanup(func() { ws.DestroySandbox(context.Background(), id, sb) })
		return sb
	}

	t.Run("lifecycle", func(t *testing.T) {
		sb := create(t, e.echo)
		list, err := ws.ListSandboxes(ctx, id)
		if err != nil || !listed(list, sb) {
			t.Fatalf("ListSandboxes = %v, %v; want %s in it", list, err, sb)
		}
		for i, payload := range [][]byte{[]byte(`"one"`), []byte(`[2]`)} {
			res, err := ws.Invoke(ctx, id, sb, worker.InvokeRequest{RequestID: fmt.Sprintf("req-%d", i), Payload: payload, Tail: true})
			if err != nil || res.FunctionError != "" || !bytes.Equal(res.Payload, payload) {
				t.Fatalf("Invoke %d = %s, %q, %v; want the payload back", i, res.Payload, res.FunctionError, err)
			}
			if len(res.LogTail) == 0 || !strings.Contains(string(res.LogTail), "req-"+fmt.Sprint(i)) {
				t.Errorf("Invoke %d log tail %q lacks its request id", i, res.LogTail)
			}
			if res.Duration <= 0 || res.MaxMemory == 0 || res.Dead {
				t.Errorf("Invoke %d result: duration %v, max memory %d, dead %v", i, res.Duration, res.MaxMemory, res.Dead)
			}
		}
		if err := ws.DestroySandbox(ctx, id, sb); err != nil {
			t.Fatalf("DestroySandbox: %v", err)
		}
		if err := ws.DestroySandbox(ctx, id, sb); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("second DestroySandbox = %v, want nil or not found", err)
		}
		if list, _ := ws.ListSandboxes(ctx, id); listed(list, sb) {
			t.Errorf("ListSandboxes after destroy still has %s", sb)
		}
		if _, err := ws.Invoke(ctx, id, sb, worker.InvokeRequest{RequestID: "gone", Payload: []byte(`{}`)}); !errdefs.IsNotFound(err) {
			t.Errorf("Invoke of a destroyed sandbox = %v, want not found", err)
		}
	})

	t.Run("request id", func(t *testing.T) {
		sb := create(t, e.echo)
		for _, rid := range []string{"", "../next", "a/b", strings.Repeat("r", 65)} {
			if _, err := ws.Invoke(ctx, id, sb, worker.InvokeRequest{RequestID: rid, Payload: []byte(`1`)}); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Invoke with request id %q = %v, want invalid argument", rid, err)
			}
		}
		if res, err := ws.Invoke(ctx, id, sb, worker.InvokeRequest{RequestID: "after", Payload: []byte(`1`)}); err != nil || string(res.Payload) != "1" {
			t.Errorf("Invoke after refused ones = %s, %v", res.Payload, err)
		}
	})

	t.Run("six megabytes both ways", func(t *testing.T) {
		sb := create(t, e.echo)
		// A JSON string comes back byte for byte; 6 MB is Lambda's limit.
		payload := append(append([]byte(`"`), bytes.Repeat([]byte("p"), 6<<20-100)...), '"')
		res, err := ws.Invoke(ctx, id, sb, worker.InvokeRequest{RequestID: "big", Payload: payload})
		if err != nil || !bytes.Equal(res.Payload, payload) {
			t.Fatalf("Invoke of %d bytes = %d bytes back (%.200s), %q, %v", len(payload), len(res.Payload), res.Payload, res.FunctionError, err)
		}
	})

	t.Run("init failure", func(t *testing.T) {
		spec := e.broken
		spec.Key = "broken:test"
		_, err := ws.CreateSandbox(ctx, id, assignment.CreateRequest{SandboxID: newSandboxID(), Function: spec.FunctionName, Key: spec.Key, MemoryMB: spec.MemoryMB, Spec: spec})
		var ie *worker.InitError
		if !errors.As(err, &ie) || !strings.Contains(string(ie.Body), "broken at import") || len(ie.LogTail) == 0 {
			t.Fatalf("CreateSandbox of a broken function = %v, want an InitError with its message and log", err)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		sb := create(t, e.sleep)
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := ws.Invoke(dctx, id, sb, worker.InvokeRequest{RequestID: "late", Payload: []byte(`{"sleep": 20}`)})
		if err == nil {
			t.Fatal("Invoke past its caller's deadline succeeded")
		}
		if waited := time.Since(start); waited > 10*time.Second {
			t.Errorf("Invoke returned %v after its caller's deadline", waited)
		}
	})

	t.Run("unknown worker", func(t *testing.T) {
		_, err := ws.ListSandboxes(ctx, "no-such-worker")
		if !errdefs.IsNotFound(err) && !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("ListSandboxes of an unknown worker = %v, want not found or unavailable", err)
		}
		_, err = ws.Invoke(ctx, "no.such>worker", "sb", worker.InvokeRequest{})
		if !errdefs.IsNotFound(err) && !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("Invoke on a worker ID that is no subject token = %v, want not found or unavailable", err)
		}
	})
}

func listed(list []assignment.WorkerSandbox, id string) bool {
	for _, s := range list {
		if s.ID == id {
			return true
		}
	}
	return false
}

// TestClient_ForgetEndsCallsInFlight: an invoke on a worker the fleet
// declares gone ends at once with a retriable error, not at the caller's
// deadline.
func TestClient_ForgetEndsCallsInFlight(t *testing.T) {
	e := newEnv(t)
	c := e.serve(t)
	spec := e.sleep
	spec.Key = "sleep:test"
	sb := newSandboxID()
	if _, err := c.CreateSandbox(t.Context(), e.worker.ID(), assignment.CreateRequest{SandboxID: sb, Function: spec.FunctionName, Key: spec.Key, MemoryMB: spec.MemoryMB, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(t.Context(), e.worker.ID(), sb, worker.InvokeRequest{RequestID: "forgotten", Payload: []byte(`{"sleep": 30}`)})
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // the call is on its way or running
	c.Forget(e.worker.ID())
	select {
	case err := <-done:
		if !errors.Is(err, workerrpc.ErrWorkerGone) || !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("Invoke after Forget = %v, want ErrWorkerGone (unavailable)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Invoke still running 10 s after Forget")
	}
}

// TestServer_HostileCalls: malformed calls from the bus get an error
// answer and leave the worker serving.
func TestServer_HostileCalls(t *testing.T) {
	e := newEnv(t)
	c := e.serve(t)
	ctx := t.Context()
	id := e.worker.ID()
	for _, m := range []*nats.Msg{
		{Subject: "ignis.worker." + id + ".invoke", Header: nats.Header{"Ignis-Call": []string{"{not json"}}},
		{Subject: "ignis.worker." + id + ".create", Data: []byte("{not json")},
		{Subject: "ignis.worker." + id + ".create", Data: []byte(`{"SandboxID":"../../etc","Spec":{"CodeSha256":"../x"}}`)},
		{Subject: "ignis.worker." + id + ".create", Data: []byte(`{"SandboxID":"../../escape","Spec":` + string(mustJSON(t, e.echo)) + `}`)},
		{Subject: "ignis.worker." + id + ".format-disk"},
		{Subject: "ignis.worker." + id + ".invoke", Header: nats.Header{"Ignis-Call": []string{`{"sandbox":"../../x"}`}}},
	} {
		reply, err := e.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			t.Fatalf("%s: no answer: %v", m.Subject, err)
		}
		if reply.Header.Get("Ignis-Error") == "" {
			t.Errorf("%s %q: answered without an error: %s", m.Subject, m.Data, reply.Data)
		}
	}
	if _, err := c.ListSandboxes(ctx, id); err != nil {
		t.Errorf("worker stopped serving after hostile calls: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
