// Package servertest starts a real Ignis server for tests: embedded
// JetStream in t.TempDir(), the API on a random 127.0.0.1 port, real
// sandboxes, and a real aws-sdk-go-v2 Lambda client signed with the
// server's credentials.
//
// Test binaries that invoke functions must call jail.MaybeRunInit first in
// TestMain: the jail driver re-executes the test binary as its setup stage.
package servertest

import (
	"archive/zip"
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ignis-run/ignis/internal/server"
)

// Credentials every test server uses.
const (
	AccessKeyID     = "AKIDSERVERTEST00001"
	SecretAccessKey = "servertest-secret-key-0001"
)

// Server is a running test server.
type Server struct {
	*server.Server
	Config server.Config
	Lambda *lambda.Client
	// Logs is a CloudWatch Logs client for the server's logs API.
	Logs *cloudwatchlogs.Client
}

// Start runs a server with cfg adjusted by edit (may be nil). Its data
// directory is dir, or a fresh temp dir when dir is "": pass the same dir to
// a second Start after Stop to test restarts. The server is stopped by
// t.Cleanup unless Stop was called.
func Start(t testing.TB, dir string, edit func(*server.Config)) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.AccessKeyID, cfg.SecretAccessKey = AccessKeyID, SecretAccessKey
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.Compute.AgentBinary = agentBinary(t)
	if edit != nil {
		edit(&cfg)
	}
	level := slog.LevelInfo
	if os.Getenv("IGNIS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
	s, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("starting server: %v", err)
	}
	ts := &Server{Server: s, Config: cfg, Lambda: NewLambdaClient(s.Endpoint()), Logs: cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})}
	t.Cleanup(func() { ts.Stop(t) })
	return ts
}

// Stop shuts the server down gracefully. Idempotent.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("closing server: %v", err)
	}
}

// NewLambdaClient returns an SDK client for endpoint with the test
// credentials and no retries (a retried Invoke would run twice); optFns
// adjust the options further (an HTTP client that dials from a test's
// network namespace).
func NewLambdaClient(endpoint string, optFns ...func(*lambda.Options)) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	}, optFns...)
}

// Zip packs files (name → content) into a zip; names ending in "bootstrap"
// or ".sh" are executable.
func Zip(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		mode := os.FileMode(0o644)
		if filepath.Base(name) == "bootstrap" || filepath.Ext(name) == ".sh" {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
