package gvisor

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/sandboxnet/sandboxnettest"
)

// nativeSandbox runs the agent as a plain host process: the baseline the
// sandboxed figures are compared with, measured in the same run.
type nativeSandbox struct {
	cmd  *exec.Cmd
	r    *os.File
	w    *os.File
	done chan struct{}
}

func (n *nativeSandbox) Read(p []byte) (int, error)  { return n.r.Read(p) }
func (n *nativeSandbox) Write(p []byte) (int, error) { return n.w.Write(p) }

// startNative starts the agent with the function's code dir as its task
// root. The agent's Runtime API listens on a free port.
func startNative(b *testing.B, bins testBins, spec sandbox.Spec) *nativeSandbox {
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	cmd := exec.Command(bins.agent)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, io.Discard
	cmd.Env = spec.Env
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	inR.Close()
	outW.Close()
	n := &nativeSandbox{cmd: cmd, r: outR, w: inW, done: make(chan struct{})}
	go func() { cmd.Wait(); close(n.done) }()
	return n
}

func (n *nativeSandbox) stop() {
	n.cmd.Process.Kill()
	<-n.done
	n.r.Close()
	n.w.Close()
}

// BenchmarkStart measures sandbox create → agent Hello and create →
// InitDone for a provided Go function (aws-lambda-go), under gVisor and
// natively (the agent as a host process), in the same run.
func BenchmarkStart(b *testing.B) {
	bins := buildBins(b)
	spec := fnSpec(b, bins, "")
	// Natively the bootstrap is at its host path, not /var/task.
	hostBootstrap := filepath.Join(spec.CodeDir, "bootstrap")
	b.Run("native/hello", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n := startNative(b, bins, spec)
			nc := newNativeConn(b, n)
			nc.hello()
			n.stop()
		}
	})
	b.Run("native/initdone", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n := startNative(b, bins, spec)
			nc := newNativeConn(b, n)
			nc.hello()
			nc.initNative(hostBootstrap, spec.CodeDir)
			n.stop()
		}
	})
	drivers := map[string]*Driver{"gvisor": newTestDriver(b)}
	// With a network link per sandbox, where this runsc can (see
	// ProbeNetwork): the cost of the namespace, the link and its rules.
	egress := newTestDriverWith(b, Config{Network: sandboxnettest.NewNetwork(b, sandboxnet.Config{})})
	if err := egress.ProbeNetwork(context.Background()); err == nil {
		drivers["gvisor-egress"] = egress
	}
	for _, name := range []string{"gvisor", "gvisor-egress"} {
		d, ok := drivers[name]
		if !ok {
			continue
		}
		for _, stage := range []string{"hello", "initdone"} {
			b.Run(name+"/"+stage, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					s := spec
					s.ID = "bench-" + randomHex(4)
					sb, err := d.Create(context.Background(), s)
					if err != nil {
						b.Fatal(err)
					}
					c := newConn(b, sb)
					c.hello()
					if stage == "initdone" {
						c.init()
					}
					b.StopTimer()
					sb.Destroy(context.Background())
					b.StartTimer()
				}
			})
		}
	}
}
