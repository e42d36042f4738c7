package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the jail driver re-executes this binary as its setup stage
	os.Exit(m.Run())
}

// testServer is a running server with one Python function, fn, and a data
// directory holding its credentials for the client commands' --data.
type testServer struct {
	*servertest.Server
	fn, dataDir string
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	s := servertest.Start(t, "", func(c *server.Config) { c.Compute.Sandbox = server.SandboxJail })
	dataDir := t.TempDir()
	creds, _ := json.Marshal(server.Credentials{AccessKeyID: servertest.AccessKeyID, SecretAccessKey: servertest.SecretAccessKey})
	if err := os.WriteFile(filepath.Join(dataDir, server.CredentialsFile), creds, 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := os.ReadFile("testdata/py/app.py")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, fn: "cli-py", dataDir: dataDir}
	_, err = s.Lambda.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(ts.fn),
		Role:         aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime:      types.RuntimePython311,
		Handler:      aws.String("app.handler"),
		Code:         &types.FunctionCode{ZipFile: servertest.Zip(t, map[string][]byte{"app.py": app})},
		Timeout:      aws.Int32(10),
		MemorySize:   aws.Int32(128),
	})
	if err != nil {
		t.Fatalf("creating %s: %v", ts.fn, err)
	}
	return ts
}

// flags are the client flags that point a command at s.
func (s *testServer) flags() []string {
	return []string{"--endpoint", s.Endpoint(), "--data", s.dataDir}
}

// result is what one run of the command line produced.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the command line with a one-minute bound.
func run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, args, &stdout, &stderr)
	t.Logf("ignis %q: exit %d\nstdout: %s\nstderr: %s", args, code, stdout.String(), stderr.String())
	return result{code, stdout.String(), stderr.String()}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
