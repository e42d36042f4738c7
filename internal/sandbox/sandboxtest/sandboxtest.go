// Package sandboxtest is the conformance suite every sandbox.Driver must
// pass: the definition of a driver that works.
//
// A driver's test file is a few lines:
//
//	func TestConformance(t *testing.T) {
//		sandboxtest.Run(t, func(t *testing.T) sandbox.Driver { return newTestDriver(t) })
//	}
//
// The suite plays the worker. It builds the real ignis-agent
// (CGO_ENABLED=0 go build ./cmd/ignis-agent) and a probe function
// (testdata/probe, built with aws-lambda-go) once per Run, installs the probe
// as a provided runtime's /var/task/bootstrap in a fresh code directory for
// each sandbox, and drives the agent over agentproto: Hello → Init → InitDone
// → Invoke → Result. The probe's event selects an action (echo, sleep,
// allocate, exit, read a path, connect, fork bomb, fill /tmp, …), so limits
// and isolation are observed from inside the sandbox.
//
// Subtests: invalid_spec, create_init_invoke, duplicate_id,
// many_invokes_same_sandbox, function_error, timeout (the suite destroys the
// sandbox at the deadline, as a worker does), oom, crash,
// destroy_leaves_nothing, recover_after_restart, layers_and_extra_mounts,
// escape (/etc/shadow, a host file, the host's loopback and other
// addresses, a host abstract unix socket, host processes, signalling a host
// process, writing /var/task, /dev/shm and the rest of the read-only tree,
// filling /tmp, and privileged syscalls, each of which must fail with EPERM
// or ENOSYS), sandboxes_isolated_from_each_other (another sandbox's /tmp,
// processes, Runtime API and listeners, signals), fork_bomb.
//
// Every sandbox is destroyed in t.Cleanup, even when a subtest fails, and the
// host is then searched for anything it left behind (processes, cgroups,
// mounts, state directories named after its ID). A failing subtest logs the
// agent's stderr, the function's log lines and the sandbox's stats.
//
// Bench measures a driver's start (to Hello, to InitDone of the probe)
// beside the same agent and probe started natively, in the same run.
package sandboxtest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/sandboxnet/sandboxnettest"
)

// Run runs the conformance suite as subtests of t. newDriver is called once
// per subtest (twice in recover_after_restart, to stand for a restarted
// worker) and returns a driver ready for Create that attaches sandboxes
// through n; it may use t.TempDir and t.Cleanup. The suite runs with
// sandbox networking on, so that the escape and isolation subtests try the
// host and other sandboxes over a real link; n's nameserver is a world
// namespace (sandboxnettest.World) that the network subtest reaches.
func Run(t *testing.T, newDriver func(t *testing.T, n *sandboxnet.Network) sandbox.Driver) {
	bins := buildBinaries(t)
	world := sandboxnettest.NewWorld(t)
	n := sandboxnettest.NewNetwork(t, sandboxnet.Config{Nameservers: []netip.Addr{world.Addr}})
	cases := []struct {
		name string
		fn   func(t *testing.T, drv sandbox.Driver, bins binaries)
	}{
		{"invalid_spec", testInvalidSpec},
		{"create_init_invoke", testCreateInitInvoke},
		{"duplicate_id", testDuplicateID},
		{"many_invokes_same_sandbox", testManyInvokes},
		{"function_error", testFunctionError},
		{"timeout", testTimeout},
		{"oom", testOOM},
		{"crash", testCrash},
		{"destroy_leaves_nothing", testDestroyLeavesNothing},
		{"recover_after_restart", func(t *testing.T, drv sandbox.Driver, bins binaries) {
			testRecover(t, drv, newDriver(t, n), bins)
		}},
		{"layers_and_extra_mounts", testLayersAndExtraMounts},
		{"escape", testEscape},
		{"sandboxes_isolated_from_each_other", testMutualIsolation},
		{"fork_bomb", testForkBomb},
		{"network", func(t *testing.T, drv sandbox.Driver, bins binaries) { testNetwork(t, drv, bins, world) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDriver(t, n), bins) })
	}
}

func testInvalidSpec(t *testing.T, drv sandbox.Driver, bins binaries) {
	good := sandbox.Spec{ID: newID(), AgentBinary: bins.agent, CodeDir: t.TempDir(), RuntimeDir: t.TempDir(), MemoryMB: 128}
	for _, tc := range []struct {
		name string
		mod  func(*sandbox.Spec)
	}{
		{"empty_id", func(s *sandbox.Spec) { s.ID = "" }},
		{"bad_id", func(s *sandbox.Spec) { s.ID = "Has/Slash" }},
		{"long_id", func(s *sandbox.Spec) { s.ID = strings.Repeat("a", 65) }},
		{"no_memory", func(s *sandbox.Spec) { s.MemoryMB = 0 }},
		{"relative_code", func(s *sandbox.Spec) { s.CodeDir = "code" }},
		{"missing_agent", func(s *sandbox.Spec) { s.AgentBinary = "/nonexistent/ignis-agent" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := good
			tc.mod(&spec)
			sb, err := drv.Create(context.Background(), spec)
			if err == nil {
				sb.Destroy(context.Background())
				t.Fatalf("Create accepted an invalid spec")
			}
			if !errors.Is(err, sandbox.ErrInvalidSpec) {
				t.Fatalf("Create error = %v, want ErrInvalidSpec", err)
			}
		})
	}
}

func testCreateInitInvoke(t *testing.T, drv sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	if h := e.sb.Handle(); h.Driver != drv.Name() || h.ID != e.spec.ID || e.sb.ID() != e.spec.ID {
		t.Errorf("Handle() = %+v, ID() = %q; want driver %q, id %q", h, e.sb.ID(), drv.Name(), e.spec.ID)
	}
	e.initialise()
	resp := e.invoke(probeReq{Action: "echo", Data: json.RawMessage(`{"hello":"world"}`)})
	if !resp.OK || string(resp.Data) != `{"hello":"world"}` {
		t.Fatalf("echo = %+v", resp)
	}
	resp = e.invoke(probeReq{Action: "whoami"})
	var who struct {
		Hostname string   `json:"hostname"`
		Cwd      string   `json:"cwd"`
		Env      []string `json:"env"`
		CapEff   string   `json:"capEff"`
		UID      int      `json:"uid"`
	}
	if err := json.Unmarshal(resp.Data, &who); err != nil {
		t.Fatal(err)
	}
	t.Logf("inside: uid=%d hostname=%q cwd=%q capEff=%s", who.UID, who.Hostname, who.Cwd, who.CapEff)
	if who.Cwd != sandbox.TaskRoot {
		t.Errorf("cwd = %q, want %q", who.Cwd, sandbox.TaskRoot)
	}
	if !contains(who.Env, "AWS_LAMBDA_FUNCTION_NAME=probe") {
		t.Errorf("runtime env lacks AWS_LAMBDA_FUNCTION_NAME: %q", who.Env)
	}
	// The runtime dir is readable at /var/runtime and the agent at AgentPath.
	if r := e.invoke(probeReq{Action: "read", Path: sandbox.RuntimeRoot + "/README"}); !r.OK {
		t.Errorf("reading %s/README: %s", sandbox.RuntimeRoot, r.Err)
	}
	if r := e.invoke(probeReq{Action: "read", Path: sandbox.AgentPath}); !r.OK {
		t.Errorf("reading %s: %s", sandbox.AgentPath, r.Err)
	}
	if l, ok := e.sb.(sandbox.CPULimiter); ok {
		if err := l.LimitCPU(500); err != nil {
			t.Errorf("LimitCPU: %v", err)
		}
		if r := e.invoke(probeReq{Action: "echo", Data: json.RawMessage(`"limited"`)}); !r.OK {
			t.Errorf("echo after LimitCPU = %+v", r)
		}
	}
	st, err := e.sb.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	t.Logf("stats: %+v", st)
	if st.MemoryBytes == 0 || st.PidsCurrent == 0 {
		t.Errorf("Stats = %+v, want non-zero memory and pids", st)
	}
}

// testDuplicateID checks a second Create with a live sandbox's ID fails and
// leaves the first one working.
func testDuplicateID(t *testing.T, drv sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	e.initialise()
	dup := e.spec
	dup.Stderr = nil
	if sb, err := drv.Create(context.Background(), dup); err == nil {
		sb.Destroy(context.Background())
		t.Fatalf("Create accepted the ID of a live sandbox")
	} else {
		t.Logf("duplicate refused: %v", err)
	}
	if r := e.invoke(probeReq{Action: "echo", Data: json.RawMessage(`"still here"`)}); !r.OK {
		t.Fatalf("first sandbox after the duplicate Create: %+v", r)
	}
}

func testManyInvokes(t *testing.T, drv sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	e.initialise()
	for i := 0; i < 50; i++ {
		data, _ := json.Marshal(map[string]int{"i": i})
		resp := e.invoke(probeReq{Action: "echo", Data: data})
		if !resp.OK || string(resp.Data) != string(data) {
			t.Fatalf("invoke %d: echo = %+v, want %s", i, resp, data)
		}
	}
}

func testFunctionError(t *testing.T, drv sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	e.initialise()
	o := e.await(e.send(probeReq{Action: "error"}, 5*time.Second), 10*time.Second)
	if o.result == nil || !o.result.Error {
		t.Fatalf("error action: got %+v, want an error Result", o)
	}
	// The sandbox keeps serving after a handled error.
	if resp := e.invoke(probeReq{Action: "echo", Data: json.RawMessage(`1`)}); !resp.OK {
		t.Fatalf("echo after error = %+v", resp)
	}
}

// testTimeout plays the worker at a function timeout: when the deadline
// passes it destroys the sandbox, which must be gone promptly.
func testTimeout(t *testing.T, drv sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	e.initialise()
	const timeout = 300 * time.Millisecond
	e.send(probeReq{Action: "sleep", N: 60_000}, timeout)
	select {
	case f := <-e.frames:
		t.Fatalf("got %v before the deadline: %s", f.Type, f.Body)
	case <-time.After(timeout):
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.sb.Destroy(ctx); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	waitDone(t, e.sb, time.Second)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Destroy took %v", d)
	} else {
		t.Logf("destroyed %v after the deadline", d)
	}
	checkNothingLeft(t, e.spec, bins)
	if _, err := e.sb.Stats(context.Background()); !errors.Is(err, sandbox.ErrGone) {
		t.Errorf("Stats after Destroy: %v, want ErrGone", err)
	}
	// Idempotent.
	if err := e.sb.Destroy(context.Background()); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// testOOM: a function that asks for more than its memory is killed before
// it holds more than MemoryMB, whether it asks all at once or creeps up a
// megabyte at a time, yet gets close to all of it; the kill is counted and
// a new sandbox from the same driver works. The driver may kill the runtime
// (the agent reports its exit) or the whole sandbox (it ends, as Lambda
// replaces the environment).
func testOOM(t *testing.T, drv sandbox.Driver, bins binaries) {
	const limitMB = 128
	limit := uint64(limitMB << 20)
	for _, c := range []struct {
		name string
		req  probeReq
	}{
		{"at_once", probeReq{Action: "alloc", N: 512}},
		{"1mb_steps", probeReq{Action: "grow", N: 512}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A full CPU: at 128 MB's share (7%) touching the memory takes seconds.
			opt := func(s *sandbox.Spec) { s.MemoryMB, s.CPUMillis = limitMB, 1000 }
			e := start(t, drv, bins, opt)
			e.initialise()
			e.send(c.req, 20*time.Second)
			e.awaitOOM(20 * time.Second)
			st, err := e.sb.Stats(context.Background())
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			t.Logf("stats: %+v", st)
			if st.OOMKills == 0 {
				t.Errorf("Stats.OOMKills = 0 after an out-of-memory kill")
			}
			// The hard bound: never above the limit, not even briefly.
			if st.MaxMemoryBytes > limit {
				t.Errorf("MaxMemoryBytes = %d, above the %d limit", st.MaxMemoryBytes, limit)
			}
			if st.MaxMemoryBytes < limit*9/10 {
				t.Errorf("MaxMemoryBytes = %d: killed before using 90%% of the %d limit", st.MaxMemoryBytes, limit)
			}
			// The environment is replaced: the next invoke runs in a new
			// sandbox.
			if err := e.sb.Destroy(context.Background()); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			next := start(t, drv, bins, opt)
			next.initialise()
			if resp := next.invoke(probeReq{Action: "echo", Data: json.RawMessage(`"again"`)}); !resp.OK || string(resp.Data) != `"again"` {
				t.Errorf("invoke after out of memory: %+v", resp)
			}
		})
	}
}

// awaitOOM waits up to d for the memory limit's kill: a RuntimeExit by
// SIGKILL, or the end of the sandbox with an error. The function's own
// Result, should one come, is skipped: the agent may answer the invoke
// before it reports the exit.
func (e *env) awaitOOM(d time.Duration) {
	e.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-e.frames:
			if !ok {
				waitDone(e.t, e.sb, 5*time.Second)
				e.t.Logf("sandbox ended: %v", e.sb.ExitErr())
				if e.sb.ExitErr() == nil {
					e.t.Errorf("sandbox ended without an error after an out-of-memory kill")
				}
				return
			}
			switch f.Type {
			case agentproto.TypeResult:
				r, err := f.Result()
				if err == nil && !r.Error {
					e.t.Errorf("allocating beyond the limit succeeded: %s", r.Body)
				}
			case agentproto.TypeRuntimeExit:
				var x agentproto.RuntimeExit
				if err := f.DecodeJSON(&x); err != nil {
					e.t.Fatal(err)
				}
				e.t.Logf("runtime exit: %+v", x)
				if x.Signal != "killed" && !strings.Contains(x.Status, "killed") {
					e.t.Errorf("RuntimeExit = %+v, want killed by SIGKILL", x)
				}
				return
			default:
				e.t.Fatalf("unexpected %v after an allocation beyond the limit: %s", f.Type, f.Body)
			}
		case <-timeout:
			e.t.Fatalf("no out-of-memory kill within %v", d)
		}
	}
}

func testCrash(t *testing.T, drv sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	e.initialise()
	o := e.await(e.send(probeReq{Action: "exit", N: 3}, 5*time.Second), 10*time.Second)
	if o.exit == nil {
		o = e.await("", 10*time.Second)
	}
	if o.exit == nil {
		t.Fatalf("exit 3: got %+v, want RuntimeExit", o)
	}
	if o.exit.Status != "exit status 3" || o.exit.ExitCode != 3 {
		t.Errorf("RuntimeExit = %+v, want exit status 3", *o.exit)
	}
}

func testDestroyLeavesNothing(t *testing.T, drv sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	e.initialise()
	// A process outside the runtime's own tree of waits must die too.
	if resp := e.invoke(probeReq{Action: "spawn"}); !resp.OK {
		t.Fatalf("spawn: %+v", resp)
	}
	if err := e.sb.Destroy(context.Background()); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	waitDone(t, e.sb, time.Second)
	checkNothingLeft(t, e.spec, bins)
	done := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { done <- e.sb.Destroy(context.Background()) }()
	}
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			t.Errorf("repeated Destroy: %v", err)
		}
	}
}

// testRecover stands for a worker restart: a second driver recovers the
// persisted handle. A driver that can reattach must serve an invoke through
// the recovered sandbox; one that cannot must remove everything and report
// ErrGone.
func testRecover(t *testing.T, drv, restarted sandbox.Driver, bins binaries) {
	e := start(t, drv, bins)
	e.initialise()
	raw, err := json.Marshal(e.sb.Handle())
	if err != nil {
		t.Fatal(err)
	}
	var h sandbox.Handle
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sb, err := restarted.Recover(ctx, h)
	if restarted.Capabilities().Reattach && err == nil {
		t.Cleanup(func() { sb.Destroy(context.Background()) })
		if sb.ID() != e.spec.ID {
			t.Errorf("recovered ID = %q, want %q", sb.ID(), e.spec.ID)
		}
		e.sb = sb
		go e.readFrames()
		e.invoke(probeReq{Action: "echo", Data: json.RawMessage(`"again"`)})
		return
	}
	if !errors.Is(err, sandbox.ErrGone) {
		t.Fatalf("Recover = %v, want ErrGone", err)
	}
	waitDone(t, e.sb, 5*time.Second)
	checkNothingLeft(t, e.spec, bins)
	if _, err := restarted.Recover(ctx, h); !errors.Is(err, sandbox.ErrGone) {
		t.Errorf("second Recover = %v, want ErrGone", err)
	}
}

// testLayersAndExtraMounts checks /opt is the layers merged in order (a
// later layer's file wins) and an extra mount appears at its host path, both
// read-only. A driver that cannot merge layers must reject two with
// ErrInvalidSpec; it is then checked with one.
func testLayersAndExtraMounts(t *testing.T, drv sandbox.Driver, bins binaries) {
	l1, l2 := t.TempDir(), t.TempDir()
	for _, f := range []struct{ path, content string }{
		{l1 + "/a", "from layer 1"}, {l1 + "/b", "from layer 1"}, {l2 + "/b", "from layer 2"},
	} {
		if err := os.WriteFile(f.path, []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not under /tmp: that is the sandbox's own.
	extra, err := os.MkdirTemp("/var/tmp", "sandboxtest-extra-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(extra) })
	if err := os.Chmod(extra, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(extra+"/lib.txt", []byte("extra"), 0o644); err != nil {
		t.Fatal(err)
	}
	layers := []string{l1, l2}
	probe, err := drv.Create(context.Background(), sandbox.Spec{
		ID: newID(), AgentBinary: bins.agent, CodeDir: t.TempDir(), MemoryMB: 128, LayerDirs: layers,
	})
	switch {
	case errors.Is(err, sandbox.ErrInvalidSpec):
		t.Logf("driver cannot merge layers (%v); checking one", err)
		layers = []string{l2}
	case err != nil:
		t.Fatalf("Create with two layers: %v", err)
	default:
		probe.Destroy(context.Background())
	}
	e := start(t, drv, bins, func(s *sandbox.Spec) { s.LayerDirs, s.ExtraMounts = layers, []string{extra} })
	e.initialise()
	want := map[string]string{sandbox.OptRoot + "/b": "from layer 2", extra + "/lib.txt": "extra"}
	if len(layers) == 2 {
		want[sandbox.OptRoot+"/a"] = "from layer 1"
	}
	for path, content := range want {
		r := e.invoke(probeReq{Action: "read", Path: path})
		if got := strings.Trim(string(r.Data), `"`); !r.OK || got != content {
			t.Errorf("read %s = %q (%s), want %q", path, got, r.Err, content)
		}
	}
	for _, path := range []string{sandbox.OptRoot + "/new", extra + "/new"} {
		if r := e.invoke(probeReq{Action: "touch", Path: path, Data: json.RawMessage(`"x"`)}); r.OK {
			t.Errorf("wrote %s", path)
		}
	}
}

// testEscape runs the isolation probes in one sandbox; each must fail.
func testEscape(t *testing.T, drv sandbox.Driver, bins binaries) {
	hostDir := t.TempDir()
	secret := hostDir + "/secret"
	if err := writeFile(secret, "host secret"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAndClose(ln)
	// Listening on every host address, for connect_host_addresses.
	any, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer any.Close()
	go acceptAndClose(any)
	abstract, err := net.Listen("unix", "@sandboxtest-"+newID())
	if err != nil {
		t.Fatal(err)
	}
	defer abstract.Close()
	go acceptAndClose(abstract)
	e := start(t, drv, bins, func(s *sandbox.Spec) { s.TmpMB = 16 })
	e.initialise()

	t.Run("read_etc_shadow", func(t *testing.T) {
		if r := e.invoke(probeReq{Action: "read", Path: "/etc/shadow"}); r.OK {
			t.Errorf("read /etc/shadow: %d bytes", r.N)
		}
	})
	t.Run("read_host_file", func(t *testing.T) {
		if r := e.invoke(probeReq{Action: "read", Path: secret}); r.OK {
			t.Errorf("read host file %s: %d bytes", secret, r.N)
		}
	})
	t.Run("connect_host_loopback", func(t *testing.T) {
		if r := e.invoke(probeReq{Action: "connect", Addr: ln.Addr().String()}); r.OK {
			t.Errorf("connected to the host's %s", ln.Addr())
		} else {
			t.Logf("connect: %s", r.Err)
		}
	})
	t.Run("host_processes", func(t *testing.T) {
		r := e.invoke(probeReq{Action: "procs"})
		if !r.OK {
			t.Fatalf("listing /proc: %s", r.Err)
		}
		var ps []struct {
			PID  int    `json:"pid"`
			Comm string `json:"comm"`
		}
		json.Unmarshal(r.Data, &ps)
		t.Logf("processes visible inside: %+v", ps)
		if len(ps) > 8 {
			t.Errorf("%d processes visible, want only the sandbox's own", len(ps))
		}
		for _, p := range ps {
			if p.Comm != "ignis-agent" && p.Comm != "bootstrap" && p.Comm != "exe" {
				t.Errorf("foreign process visible: %+v", p)
			}
		}
	})
	t.Run("write_var_task", func(t *testing.T) {
		if r := e.invoke(probeReq{Action: "writetask"}); r.OK {
			t.Errorf("wrote to %s", sandbox.TaskRoot)
		}
	})
	t.Run("fill_tmp", func(t *testing.T) {
		r := e.invoke(probeReq{Action: "writetmp", N: 64})
		if r.OK {
			t.Fatalf("wrote %d bytes to a 16 MB /tmp", r.N)
		}
		t.Logf("/tmp full after %d bytes: %s", r.N, r.Err)
		if r.N > 16<<20 {
			t.Errorf("wrote %d bytes to a 16 MB /tmp", r.N)
		}
	})
	t.Run("write_read_only_paths", func(t *testing.T) {
		// Lambda has no /dev/shm and a read-only root: the only writable
		// place is /tmp, whose size is limited (fill_tmp).
		for _, p := range []string{"/dev/shm/probe", sandbox.TaskRoot + "/probe",
			sandbox.RuntimeRoot + "/probe", "/etc/probe", "/probe"} {
			if r := e.invoke(probeReq{Action: "touch", Path: p, Data: json.RawMessage(`"x"`)}); r.OK {
				t.Errorf("wrote %s", p)
			} else {
				t.Logf("writing %s: %s", p, r.Err)
			}
		}
	})
	t.Run("connect_host_addresses", func(t *testing.T) {
		for _, addr := range hostAddrs(t, any.Addr().(*net.TCPAddr).Port) {
			if r := e.invoke(probeReq{Action: "connect", Addr: addr}); r.OK {
				t.Errorf("connected to the host's %s", addr)
			} else {
				t.Logf("connect %s: %s", addr, r.Err)
			}
		}
	})
	t.Run("connect_host_abstract_unix", func(t *testing.T) {
		// Abstract unix sockets have no file to protect them: only the
		// network namespace scopes them (containerd-shim, CVE-2020-15257).
		if r := e.invoke(probeReq{Action: "connect", Addr: abstract.Addr().String()}); r.OK {
			t.Errorf("connected to the host's abstract socket %s", abstract.Addr())
		} else {
			t.Logf("connect %s: %s", abstract.Addr(), r.Err)
		}
	})
	t.Run("signal_host_process", func(t *testing.T) {
		victim := startVictim(t)
		r := e.invoke(probeReq{Action: "signal", N: victim.pid()})
		if r.OK {
			t.Errorf("SIGKILL to host pid %d was delivered", victim.pid())
		} else if r.Err != "ESRCH" && r.Err != "EPERM" {
			t.Errorf("SIGKILL to host pid %d: %s, want ESRCH or EPERM", victim.pid(), r.Err)
		}
		// Every process the sandbox may signal: its own only.
		e.invoke(probeReq{Action: "signal", N: -1})
		victim.checkAlive(t)
	})
	t.Run("privileged_syscalls", func(t *testing.T) {
		checkDenied(t, e.invoke(probeReq{Action: "syscalls"}))
	})
	// The sandbox is still healthy after the probes.
	if r := e.invoke(probeReq{Action: "echo", Data: json.RawMessage(`"ok"`)}); !r.OK {
		t.Errorf("echo after escape probes = %+v", r)
	}
}

// testMutualIsolation runs two sandboxes side by side (created
// concurrently) and has B attack A the ways a function could: read A's /tmp,
// see or signal A's processes, reach A's Runtime API or any other socket A
// listens on. The Runtime API of each is 127.0.0.1:9001 in its own network
// namespace, so B reaching "127.0.0.1:9001" proves nothing: A listens on a
// port and an abstract socket B cannot know otherwise, which A reaches and
// neither B nor the host may, and nothing listens on 9001 in the host's
// network namespace.
func testMutualIsolation(t *testing.T, drv sandbox.Driver, bins binaries) {
	envs := make(chan *env, 2)
	var wg sync.WaitGroup
	// The second sandbox runs its own copies of the binaries: the leak
	// check after each one's destruction identifies processes by inode.
	for _, bs := range []binaries{bins, bins.copy(t)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs <- startNoFatal(t, drv, bs)
		}()
	}
	wg.Wait()
	close(envs)
	var es []*env
	for e := range envs {
		if e == nil {
			t.FailNow()
		}
		es = append(es, e)
	}
	a, b := es[0], es[1]
	a.initialise()
	b.initialise()

	t.Run("read_other_tmp", func(t *testing.T) {
		name := "/tmp/mine-" + newID()
		if r := a.invoke(probeReq{Action: "touch", Path: name, Data: json.RawMessage(`"a"`)}); !r.OK {
			t.Fatalf("writing %s in A: %s", name, r.Err)
		}
		if r := b.invoke(probeReq{Action: "read", Path: name}); r.OK {
			t.Errorf("B read A's %s", name)
		}
		if r := a.invoke(probeReq{Action: "read", Path: name}); !r.OK {
			t.Errorf("A cannot read back its %s: %s", name, r.Err)
		}
	})
	t.Run("other_processes", func(t *testing.T) {
		ra, rb := a.invoke(probeReq{Action: "procs"}), b.invoke(probeReq{Action: "procs"})
		if ra.N > 8 || rb.N > 8 {
			t.Errorf("processes visible: A %d, B %d; want only each sandbox's own", ra.N, rb.N)
		}
	})
	t.Run("runtime_api_of_other", func(t *testing.T) {
		// The Runtime API A's function uses works from A.
		if r := a.invoke(probeReq{Action: "connect", Addr: runtimeAPIAddr}); !r.OK {
			t.Fatalf("A cannot reach its own Runtime API at %s: %s", runtimeAPIAddr, r.Err)
		}
		// No sandbox's listener is in the host's network namespace, where
		// every other sandbox's escape attempt would look for it.
		if c, err := net.DialTimeout("tcp", runtimeAPIAddr, time.Second); err == nil {
			c.Close()
			t.Errorf("something listens on the host's %s", runtimeAPIAddr)
		}
		addrs := []string{"127.0.0.1:0", "@sandboxtest-" + newID()}
		if drv.Capabilities().Network {
			addrs = append(addrs, "0.0.0.0:0") // and B tries A's link address
		}
		for _, addr := range addrs {
			r := a.invoke(probeReq{Action: "listen", Addr: addr})
			if !r.OK {
				t.Fatalf("A listening on %s: %s", addr, r.Err)
			}
			var got string
			json.Unmarshal(r.Data, &got)
			if host, port, err := net.SplitHostPort(got); err == nil && net.ParseIP(host).IsUnspecified() {
				// On every address: B tries A's link address.
				got = net.JoinHostPort(a.linkAddr(), port)
			}
			if r := a.invoke(probeReq{Action: "connect", Addr: got}); !r.OK {
				t.Fatalf("A cannot reach its own %s: %s", got, r.Err)
			}
			if r := b.invoke(probeReq{Action: "connect", Addr: got}); r.OK {
				t.Errorf("B reached A's %s", got)
			} else {
				t.Logf("B connecting to A's %s: %s", got, r.Err)
			}
			network := "tcp"
			if got[0] == '@' {
				network = "unix"
			}
			if c, err := net.DialTimeout(network, got, time.Second); err == nil {
				c.Close()
				t.Errorf("the host reached A's %s", got)
			}
		}
	})
	t.Run("signal_other", func(t *testing.T) {
		// A's processes by host pid, where the driver runs them as host
		// processes (the jail); then everything B may signal.
		for _, pid := range hostPIDs(a.bins.probe) {
			if r := b.invoke(probeReq{Action: "signal", N: pid}); r.OK {
				t.Errorf("B delivered SIGKILL to A's process (host pid %d)", pid)
			} else {
				t.Logf("B signalling A's host pid %d: %s", pid, r.Err)
			}
		}
		b.invoke(probeReq{Action: "signal", N: -1})
		if r := a.invoke(probeReq{Action: "echo", Data: json.RawMessage(`"alive"`)}); !r.OK {
			t.Errorf("A after B's kill(-1, SIGKILL): %+v", r)
		}
	})
}

// testForkBomb checks the pids limit stops a fork bomb and the host can
// still start processes.
func testForkBomb(t *testing.T, drv sandbox.Driver, bins binaries) {
	const limit = 64
	e := start(t, drv, bins, func(s *sandbox.Spec) { s.PidsLimit = limit })
	e.initialise()
	o := e.await(e.send(probeReq{Action: "forkbomb", N: 10_000}, 30*time.Second), 30*time.Second)
	switch {
	case o.exit != nil:
		// The Go runtime aborts when it cannot create a thread; that is the
		// limit working too.
		t.Logf("probe died under the fork bomb: %+v", *o.exit)
	case o.result != nil && o.result.Error:
		t.Logf("fork bomb reported an error: %s", o.result.Body)
	default:
		var r probeResp
		json.Unmarshal(o.result.Body, &r)
		if r.OK {
			t.Fatalf("fork bomb started %d processes unhindered", r.N)
		}
		t.Logf("fork bomb stopped after %d processes: %s", r.N, r.Err)
		if r.N >= limit {
			t.Errorf("%d processes started under a limit of %d", r.N, limit)
		}
	}
	if st, err := e.sb.Stats(context.Background()); err == nil && st.PidsCurrent > limit {
		t.Errorf("PidsCurrent = %d above the limit %d", st.PidsCurrent, limit)
	}
	if out, err := exec.Command("true").CombinedOutput(); err != nil {
		t.Errorf("host cannot start a process after the fork bomb: %v %s", err, out)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// linkAddr is the sandbox's IPv4 address on its network link.
func (e *env) linkAddr() string {
	e.t.Helper()
	r := e.invoke(probeReq{Action: "addrs"})
	var ifs map[string][]string
	if err := json.Unmarshal(r.Data, &ifs); !r.OK || err != nil {
		e.t.Fatalf("listing interfaces: %s %v", r.Err, err)
	}
	for name, addrs := range ifs {
		if name != "lo" && len(addrs) > 0 {
			return addrs[0]
		}
	}
	e.t.Fatalf("the sandbox has no network link: %v", ifs)
	return ""
}

// testNetwork checks egress like a Lambda function outside a VPC: the
// world and its DNS names are reachable, the metadata address is not, and
// a sandbox with network "none" has its loopback alone, without a route.
// (The host and other sandboxes are tried by escape and
// sandboxes_isolated_from_each_other.)
func testNetwork(t *testing.T, drv sandbox.Driver, bins binaries, w sandboxnettest.World) {
	e := start(t, drv, bins)
	e.initialise()
	egress := func(t *testing.T) {
		if !drv.Capabilities().Network {
			t.Skipf("the %s driver has no sandbox networking on this host", drv.Name())
		}
	}
	t.Run("world", func(t *testing.T) {
		egress(t)
		if r := e.invoke(probeReq{Action: "connect", Addr: w.Server.String()}); !r.OK {
			t.Errorf("connecting to the world at %s: %s", w.Server, r.Err)
		}
	})
	t.Run("dns", func(t *testing.T) {
		egress(t)
		r := e.invoke(probeReq{Action: "resolve", Addr: sandboxnettest.WorldName})
		var addrs []string
		json.Unmarshal(r.Data, &addrs)
		if !r.OK || !contains(addrs, w.Addr.String()) {
			t.Errorf("resolving %s: %v %s; want %s", sandboxnettest.WorldName, addrs, r.Err, w.Addr)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		if _, err := sandboxnettest.Dial(t, "", w.MetadataServer); err != nil {
			t.Fatalf("control: the host cannot reach %s: %v", w.MetadataServer, err)
		}
		if r := e.invoke(probeReq{Action: "connect", Addr: w.MetadataServer.String()}); r.OK {
			t.Errorf("a sandbox reached the metadata address %s", w.MetadataServer)
		}
	})
	t.Run("none", func(t *testing.T) {
		// Its own copies of the binaries: the leak check identifies processes
		// by inode, and e still runs.
		n := start(t, drv, bins.copy(t), func(s *sandbox.Spec) { s.Network = fnspec.Network{Mode: fnspec.NetworkNone} })
		n.initialise()
		r := n.invoke(probeReq{Action: "addrs"})
		var ifs map[string][]string
		json.Unmarshal(r.Data, &ifs)
		for name, addrs := range ifs {
			if name != "lo" && len(addrs) > 0 {
				t.Errorf("a sandbox without network has %s %v", name, addrs)
			}
		}
		if r.N != 0 {
			t.Errorf("a sandbox without network has %d routes", r.N)
		}
		if r := n.invoke(probeReq{Action: "connect", Addr: w.Server.String()}); r.OK {
			t.Errorf("a sandbox without network reached the world at %s", w.Server)
		}
	})
}
