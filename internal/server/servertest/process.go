package servertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Binaries are ignis and ignis-agent built from this checkout.
type Binaries struct{ Ignis, Agent string }

// Build builds ignis and ignis-agent (CGO_ENABLED=0) once per test binary,
// for tests that run `ignis server` as a separate process (kill -9, restart).
func Build(t testing.TB) Binaries {
	t.Helper()
	return Binaries{Ignis: ignisBin.path(t, "./cmd/ignis"), Agent: agentBinary(t)}
}

// agentBinary builds ignis-agent once per test binary.
func agentBinary(t testing.TB) string {
	t.Helper()
	return agentBin.path(t, "./cmd/ignis-agent")
}

var ignisBin, agentBin built

// built is one binary of this checkout, built (CGO_ENABLED=0) on first use
// by a test binary and shared by its tests.
type built struct {
	once sync.Once
	out  string
	err  error
}

func (b *built) path(t testing.TB, pkg string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "ignis-bin-")
		if err != nil {
			b.err = err
			return
		}
		_, here, _, _ := runtime.Caller(0)
		out := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = filepath.Join(filepath.Dir(here), "..", "..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %w\n%s", pkg, err, o)
			return
		}
		b.out = out
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.out
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is `ignis server` running as a separate process.
type Process struct {
	Cmd      *exec.Cmd
	Endpoint string
	Lambda   *lambda.Client
}

// StartProcess runs `ignis server --listen addr --data data` with the test
// credentials, the jail driver, the built agent and args, and waits (up to
// two minutes) until it answers ListFunctions. Its output goes to the test
// log; t.Cleanup kills it.
func StartProcess(t testing.TB, b Binaries, addr, data string, args ...string) *Process {
	t.Helper()
	argv := append([]string{"server", "--listen", addr, "--data", data, "--sandbox", "jail", "--agent", b.Agent,
		"--access-key-id", AccessKeyID, "--secret-access-key", SecretAccessKey}, args...)
	cmd := exec.Command(b.Ignis, argv...)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, Endpoint: "http://" + addr, Lambda: NewLambdaClient("http://" + addr)}
	t.Cleanup(p.stop)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := p.Lambda.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("ignis server at %s did not come up: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop shuts a server still running down as an operator would, with
// SIGTERM (SIGKILL after 30 s), so that it destroys its sandboxes and their
// cgroups: a test's SIGKILL left them behind on the host, under a worker
// ID no later server recovers.
func (p *Process) stop() {
	if p.Cmd.ProcessState != nil {
		return // already reaped (Kill9)
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = p.Cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-done
	}
}

// Kill9 kills the server with SIGKILL and reaps it.
func (p *Process) Kill9(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Cmd.Wait()
}
