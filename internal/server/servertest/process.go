package servertest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Binaries are ignis and ignis-agent built from this checkout.
type Binaries struct{ Ignis, Agent string }

var (
	binOnce sync.Once
	bins    Binaries
	binErr  error
)

// Build builds ignis and ignis-agent (CGO_ENABLED=0) once per test binary,
// for tests that run `ignis server` as a separate process (kill -9, restart).
func Build(t testing.TB) Binaries {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ignis-bin-")
		if err != nil {
			binErr = err
			return
		}
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..", "..")
		b := Binaries{Ignis: filepath.Join(dir, "ignis"), Agent: filepath.Join(dir, "ignis-agent")}
		for out, pkg := range map[string]string{b.Ignis: "./cmd/ignis", b.Agent: "./cmd/ignis-agent"} {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if o, err := cmd.CombinedOutput(); err != nil {
				binErr = &buildError{pkg: pkg, err: err, out: o}
				return
			}
		}
		bins = b
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

type buildError struct {
	pkg string
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "building " + e.pkg + ": " + e.err.Error() + "\n" + string(e.out)
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
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &Process{Cmd: cmd, Endpoint: "http://" + addr, Lambda: NewLambdaClient("http://" + addr)}
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

// Kill9 kills the server with SIGKILL and reaps it.
func (p *Process) Kill9(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Cmd.Wait()
}
