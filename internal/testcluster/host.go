package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// Timeouts of a host's life.
const (
	startTimeout = 2 * time.Minute
	// stopTimeout is how long Stop waits for a server to exit after
	// SIGTERM; servers run with a shorter --shutdown-timeout.
	stopTimeout     = 15 * time.Second
	shutdownTimeout = "5s"
)

// Host is one Ignis host of a cluster: hN, with its own address, data
// directory, network namespace and cgroup (by mode), kept across
// restarts. Not safe for concurrent use.
type Host struct {
	c       *Cluster
	index   int // N of hN
	name    string
	addr    string // host:port of the API
	route   string // host:port of its NATS route listener (ClusterArgs)
	dataDir string
	cgroup  string // <cluster id>/hN, relative to each hierarchy's root
	// netnsName and netns are its network namespace, in Namespaces mode.
	netnsName string
	netns     *os.File
	lambda    *lambda.Client

	args        []string       // of the last Start
	proc        *process       // the running server process, or nil
	inproc      *server.Server // the running in-process server, or nil
	partitioned bool
}

// process is a host's running `ignis server`.
type process struct {
	cmd    *exec.Cmd
	out    *lineWriter
	exited chan struct{} // closed once reaped
}

// Name is hN.
func (h *Host) Name() string { return h.name }

// Addr is the host:port of its API.
func (h *Host) Addr() string { return h.addr }

// Endpoint is the URL of its API.
func (h *Host) Endpoint() string { return "http://" + h.addr }

// Lambda is an SDK client for its API (servertest credentials, no
// retries), dialing through the cluster's HTTP client.
func (h *Host) Lambda() *lambda.Client { return h.lambda }

// DataDir is its --data directory, kept across restarts.
func (h *Host) DataDir() string { return h.dataDir }

// Netns names its network namespace; "" outside Namespaces mode.
func (h *Host) Netns() string { return h.netnsName }

// Cgroup is its cgroup, relative to the root of each hierarchy.
func (h *Host) Cgroup() string { return h.cgroup }

// Running reports whether its server was started and not stopped or
// killed since (it may have died on its own).
func (h *Host) Running() bool { return h.proc != nil || h.inproc != nil }

// Start runs the host's server, `ignis server` with the host's address,
// data directory, cgroup parent and CPU quota (--worker-cpu), the jail
// driver, the servertest credentials, then Options.Args and args (later
// flags win), and waits until it answers on server.ReadyPath. In-process hosts
// take no flags.
func (h *Host) Start(t testing.TB, args ...string) {
	t.Helper()
	if h.Running() {
		t.Fatalf("starting %s: already running", h.name)
	}
	h.args = args
	if h.c.mode == InProcess {
		if len(args)+len(h.c.opts.Args) > 0 {
			t.Fatalf("starting %s: in-process hosts take no flags (%q)", h.name, append(h.c.opts.Args, args...))
		}
		if err := h.startInProcess(); err != nil {
			t.Fatalf("starting %s: %v", h.name, err)
		}
		return
	}
	if err := h.spawnServer(args); err != nil {
		t.Fatalf("starting %s: %v", h.name, err)
	}
	if err := h.waitReady(h.proc.exited); err != nil {
		t.Fatalf("starting %s: %v", h.name, err)
	}
}

// spawnServer starts the host's `ignis server` process with args.
func (h *Host) spawnServer(args []string) error {
	if h.Running() {
		return errors.New("already running")
	}
	h.args = args
	argv := []string{"server", "--listen", h.addr, "--data", h.dataDir,
		"--sandbox", "jail", "--agent", h.c.bins.Agent,
		"--access-key-id", servertest.AccessKeyID, "--secret-access-key", servertest.SecretAccessKey,
		"--worker-id", h.name, "--cgroup-parent", h.cgroup + "/sandboxes",
		"--worker-cpu", strconv.Itoa(h.cpuMillis()), "--shutdown-timeout", shutdownTimeout}
	argv = append(append(argv, h.c.opts.Args...), args...)
	p, err := h.spawn(argv)
	if err != nil {
		return err
	}
	h.proc = p
	return nil
}

// spawn starts the server in the host's namespace and cgroup, from an OS
// thread of its own that waits for it: the thread is the server's parent
// for Pdeathsig, so the server dies with the test process.
func (h *Host) spawn(argv []string) (*process, error) {
	out := &lineWriter{w: h.c.t.Output(), prefix: h.name + ": "}
	cmd := exec.Command(h.c.bins.Ignis, argv...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, out: out, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		leave, err := h.enter(cmd)
		if err == nil {
			err = cmd.Start()
		}
		if lerr := leave(); lerr != nil {
			if err == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
			started <- errors.Join(err, lerr)
			return // still locked: the thread, in the host's namespace or cgroup, ends with the goroutine
		}
		started <- err
		if err == nil {
			cmd.Wait()
			out.flush()
			close(p.exited)
		}
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// enter moves the calling locked thread into the host's network namespace
// and cgroup (or arranges cmd to fork into the cgroup); leave undoes it.
func (h *Host) enter(cmd *exec.Cmd) (leave func() error, err error) {
	var leaves []func() error
	leave = func() error {
		var errs []error
		for i := len(leaves) - 1; i >= 0; i-- {
			errs = append(errs, leaves[i]())
		}
		return errors.Join(errs...)
	}
	if h.netns != nil {
		l, err := enterNetns(h.netns)
		leaves = append(leaves, l)
		if err != nil {
			return leave, err
		}
	}
	l, err := h.c.cg.enter(cmd, h.cgroup+"/server")
	leaves = append(leaves, l)
	return leave, err
}

// waitReady polls the server's readiness path (every node serves it,
// whatever its roles) until it answers, exits or startTimeout passes.
func (h *Host) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := h.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer at %s after %v: %w", h.addr, startTimeout, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited (%v) before answering at %s", h.proc.cmd.ProcessState, h.addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (h *Host) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.Endpoint()+server.ReadyPath, nil)
	if err != nil {
		return err
	}
	resp, err := h.c.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", server.ReadyPath, resp.StatusCode)
	}
	return nil
}

// cpuMillis is the host's CPU quota.
func (h *Host) cpuMillis() int {
	if i := h.index - 1; i < len(h.c.opts.HostCPUMillis) && h.c.opts.HostCPUMillis[i] > 0 {
		return h.c.opts.HostCPUMillis[i]
	}
	return h.c.opts.CPUMillis
}

// Args are the flags of the host's last Start.
func (h *Host) Args() []string { return h.args }

// RouteAddr is the host's NATS route address (ClusterArgs).
func (h *Host) RouteAddr() string { return h.route }

// startInProcess runs the host's server in the test process.
func (h *Host) startInProcess() error {
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.DataDir = h.addr, h.dataDir
	cfg.AccessKeyID, cfg.SecretAccessKey = servertest.AccessKeyID, servertest.SecretAccessKey
	cfg.ShutdownTimeout, _ = time.ParseDuration(shutdownTimeout)
	cc := &cfg.Compute
	cc.Sandbox, cc.AgentBinary, cc.WorkerID = server.SandboxJail, h.c.bins.Agent, h.name
	if h.c.cg != nil {
		cc.CgroupParent = h.cgroup + "/sandboxes"
	}
	log := slog.New(slog.NewTextHandler(&lineWriter{w: h.c.t.Output(), prefix: h.name + ": "}, nil))
	s, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		return err
	}
	h.inproc = s
	return nil
}

// Stop shuts the server down as an operator would: SIGTERM, then, after
// stopTimeout, SIGKILL; whatever it leaves in its cgroup is killed too.
// A stopped host stays stopped. No-op when not running.
func (h *Host) Stop(t testing.TB) {
	t.Helper()
	if err := h.stop(); err != nil {
		t.Fatalf("stopping %s: %v", h.name, err)
	}
}

func (h *Host) stop() error {
	switch {
	case h.inproc != nil:
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		err := h.inproc.Close(ctx)
		h.inproc = nil
		return err
	case h.proc != nil:
		h.proc.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.proc.exited:
		case <-time.After(stopTimeout):
		}
		return h.kill()
	}
	return nil
}

// Kill sends SIGKILL to every process of the host (its cgroup: the server
// and its sandboxes), until none is left, and reaps the server.
func (h *Host) Kill(t testing.TB) {
	t.Helper()
	h.need(t, h.c.Capabilities().Kill, "killing")
	if err := h.kill(); err != nil {
		t.Fatalf("killing %s: %v", h.name, err)
	}
}

func (h *Host) kill() error {
	// The server first: a host that dies dies at once, and a server
	// that outlived its sandboxes by a moment would still report them
	// crashed, which no dead host does.
	if p := h.proc; p != nil {
		p.cmd.Process.Kill()
	}
	err := h.c.cg.kill(h.cgroup)
	if p := h.proc; p != nil {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			err = errors.Join(err, fmt.Errorf("server %d not reaped 10 s after SIGKILL", p.cmd.Process.Pid))
		}
		h.proc = nil
	}
	return err
}

// Restart stops the host if it runs, then starts it with the flags of its
// last Start, on the same address and data.
func (h *Host) Restart(t testing.TB) {
	t.Helper()
	h.Stop(t)
	h.Start(t, h.args...)
}

// Partition drops every packet the host sends or is sent, until Heal. Its
// processes keep running, and it stays partitioned across restarts (Start
// waits for an answer: heal first). Idempotent.
func (h *Host) Partition(t testing.TB) {
	t.Helper()
	h.need(t, h.c.Capabilities().Partition, "partitioning")
	if h.partitioned {
		return
	}
	h.partitioned = true // Heal removes what was added
	sw := h.c.switchName
	if err := errors.Join(dropAll(h.netnsName, hostIface), dropAll(sw, h.name)); err != nil {
		t.Fatalf("partitioning %s: %v", h.name, err)
	}
}

// Heal ends a Partition. Idempotent.
func (h *Host) Heal(t testing.TB) {
	t.Helper()
	if !h.partitioned {
		return
	}
	sw := h.c.switchName
	if err := errors.Join(restore(h.netnsName, hostIface), restore(sw, h.name)); err != nil {
		t.Fatalf("healing %s: %v", h.name, err)
	}
	h.partitioned = false
}

// PIDs lists every process of the host: those in its cgroup.
func (h *Host) PIDs(t testing.TB) []int {
	t.Helper()
	h.need(t, h.c.Capabilities().Kill, "listing the processes of")
	pids, err := h.c.cg.procs(h.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// CPUQuota reads the host's CPU quota back from its cgroup, in
// thousandths of a CPU; 0 when unlimited.
func (h *Host) CPUQuota(t testing.TB) int {
	t.Helper()
	h.need(t, h.c.Capabilities().CPUQuota, "reading the CPU quota of")
	q, err := h.c.cg.cpuQuota(h.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// need fails the test when the cluster's mode lacks what op needs.
func (h *Host) need(t testing.TB, ok bool, op string) {
	t.Helper()
	if !ok {
		t.Fatalf("%s %s: not in %s mode", op, h.name, h.c.mode)
	}
}

// lineWriter writes whole lines, each with a prefix, to w: the output of
// several hosts interleaves line by line, each line saying whose it is.
type lineWriter struct {
	w      io.Writer
	prefix string

	mu  sync.Mutex
	buf []byte // guarded by mu: the unfinished last line
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.w.Write(append([]byte(l.prefix), l.buf[:i+1]...))
		l.buf = l.buf[i+1:]
	}
}

// flush writes an unfinished last line.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.w.Write(append([]byte(l.prefix), append(l.buf, '\n')...))
		l.buf = nil
	}
}
