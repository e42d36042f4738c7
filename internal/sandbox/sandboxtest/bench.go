package sandboxtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/sandboxnet/sandboxnettest"
)

// benchMemoryMB is Lambda's 1-vCPU size; the sandboxes get every CPU of the
// host (CPUMillis) so that the comparison with a native, unthrottled start
// measures the driver rather than a CPU quota.
const benchMemoryMB = 1769

// settle is an untimed pause after each iteration so that one start is not
// measured while the host is still busy with the previous one's teardown
// (or a driver's background preparation): the figure is a start on a host
// that is not also churning, for the driver and the native start alike.
const settle = 100 * time.Millisecond

// Bench measures a driver against the same agent and probe started natively
// (no sandbox), in one run so the ratio is meaningful on a noisy machine:
//
//	create_to_hello      Create until the agent's Hello
//	create_to_initdone   Create until InitDone of the probe (a provided Go runtime)
//	native_to_hello      the agent as a plain child process, until Hello
//	native_to_initdone   the same until InitDone
//
// Destroy (or killing the native agent) is outside the timed region.
//
// The create_ benchmarks run twice: .../loopback with a driver without a
// network, .../egress with one, each sandbox attached (the cost of the
// link and its rules on a start).
func Bench(b *testing.B, newDriver func(b *testing.B, n *sandboxnet.Network) sandbox.Driver) {
	bins := buildBinaries(b)
	code := filepath.Join(b.TempDir(), "code")
	if err := os.Mkdir(code, 0o755); err != nil {
		b.Fatal(err)
	}
	copyFileTB(b, bins.probe, filepath.Join(code, "bootstrap"))
	rt := filepath.Join(b.TempDir(), "runtime")
	if err := os.Mkdir(rt, 0o755); err != nil {
		b.Fatal(err)
	}
	var egress *sandboxnet.Network
	for _, init := range []bool{false, true} {
		for _, net := range []string{"loopback", "egress"} {
			name := map[bool]string{false: "create_to_hello", true: "create_to_initdone"}[init] + "/" + net
			b.Run(name, func(b *testing.B) {
				var n *sandboxnet.Network
				if net == "egress" {
					if egress == nil {
						egress = sandboxnettest.NewNetwork(b, sandboxnet.Config{})
					}
					n = egress
				}
				drv := newDriver(b, n)
				var ds durations
				for i := 0; i < b.N; i++ {
					spec := sandbox.Spec{
						ID: newID(), AgentBinary: bins.agent, CodeDir: code, RuntimeDir: rt,
						MemoryMB: benchMemoryMB, CPUMillis: runtime.NumCPU() * 1000,
					}
					t0 := time.Now()
					sb, err := drv.Create(context.Background(), spec)
					if err != nil {
						b.Fatal(err)
					}
					err = handshake(sb.Control(), init, initMessage(benchMemoryMB))
					ds = append(ds, time.Since(t0))
					b.StopTimer()
					if derr := sb.Destroy(context.Background()); derr != nil {
						b.Fatal(derr)
					}
					if err != nil {
						b.Fatal(err)
					}
					time.Sleep(settle)
					b.StartTimer()
				}
				ds.report(b)
			})
		}
	}
	for _, init := range []bool{false, true} {
		name := map[bool]string{false: "native_to_hello", true: "native_to_initdone"}[init]
		b.Run(name, func(b *testing.B) {
			var ds durations
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				msg := initMessage(benchMemoryMB)
				msg.Bootstrap = []string{filepath.Join(code, "bootstrap")}
				msg.Dir = code
				msg.RuntimeAPIAddr = freeAddr(b)
				for j, kv := range msg.Env {
					if len(kv) > 23 && kv[:23] == "AWS_LAMBDA_RUNTIME_API=" {
						msg.Env[j] = "AWS_LAMBDA_RUNTIME_API=" + msg.RuntimeAPIAddr
					}
				}
				b.StartTimer()
				d, err := nativeOnce(bins.agent, init, msg)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, d)
				time.Sleep(settle)
			}
			ds.report(b)
		})
	}
}

// nativeOnce starts the agent as a plain child process, runs the
// handshake, and kills it; it returns the time to the handshake's end.
func nativeOnce(agent string, init bool, msg agentproto.Init) (time.Duration, error) {
	cmd := exec.Command(agent)
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	err = handshakeRW(out, in, init, msg)
	d := time.Since(t0)
	cmd.Process.Kill()
	cmd.Wait()
	return d, err
}

// durations are per-iteration times; the median is reported beside the
// mean because one slow start on a shared machine skews the mean.
type durations []time.Duration

func (ds durations) report(b *testing.B) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)*9/10].Microseconds())/1000, "p90-ms")
}

// handshake reads Hello and, with init, sends Init and waits for InitDone.
func handshake(ctl io.ReadWriter, init bool, msg agentproto.Init) error {
	return handshakeRW(ctl, ctl, init, msg)
}

func handshakeRW(r io.Reader, w io.Writer, init bool, msg agentproto.Init) error {
	fr := agentproto.NewReader(r)
	next := func() (agentproto.Frame, error) {
		for {
			f, err := fr.ReadFrame()
			if err != nil || f.Type != agentproto.TypeLog {
				return f, err
			}
		}
	}
	f, err := next()
	if err != nil {
		return fmt.Errorf("waiting for Hello: %w", err)
	}
	if f.Type != agentproto.TypeHello {
		return fmt.Errorf("got %v, want Hello", f.Type)
	}
	if !init {
		return nil
	}
	if err := agentproto.NewWriter(w).Init(msg); err != nil {
		return err
	}
	if f, err = next(); err != nil {
		return fmt.Errorf("waiting for InitDone: %w", err)
	}
	if f.Type != agentproto.TypeInitDone {
		return fmt.Errorf("got %v (%s), want InitDone", f.Type, f.Body)
	}
	return nil
}

// freeAddr picks a free port on 127.0.0.1 for a natively run agent.
func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func copyFileTB(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		tb.Fatal(err)
	}
}
