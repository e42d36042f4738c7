package frontend_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/frontend"
	"github.com/ignis-run/ignis/internal/registry"
)

const (
	testAK   = "AKIDTESTFRONTEND0001"
	testSK   = "test-secret-key-frontend"
	testRole = "arn:aws:iam::000000000000:role/test"
)

// testServer is a frontend on a real loopback listener over a real
// embedded JetStream.
type testServer struct {
	endpoint string
	reg      *registry.Registry
	fe       *frontend.Frontend
}

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startServer starts the frontend; edits adjust its Config.
func startServer(t testing.TB, edits ...func(*frontend.Config)) *testServer {
	t.Helper()
	ctx := context.Background()
	ns := natstest.Start(t, "")
	log := slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg, err := registry.Open(ctx, registry.Config{
		JetStream: ns.JetStream(),
		Runtimes:  registry.StaticRuntimes{"provided.al2023", "provided.al2", "python3.11", "nodejs20.x"},
		Logger:    log,
	})
	if err != nil {
		t.Fatalf("opening registry: %v", err)
	}
	cfg := frontend.Config{
		Registry:    reg,
		Credentials: frontend.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK},
		Logger:      log,
	}
	for _, edit := range edits {
		edit(&cfg)
	}
	fe, err := frontend.New(cfg)
	if err != nil {
		t.Fatalf("frontend: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fe}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &testServer{endpoint: "http://" + ln.Addr().String(), reg: reg, fe: fe}
}

func (s *testServer) client(ak, sk string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(ak, sk, ""),
		BaseEndpoint:     aws.String(s.endpoint),
		RetryMaxAttempts: 1,
	})
}

// signedRequest sends a raw request signed like the SDK would.
func (s *testServer) signedRequest(t *testing.T, method, path string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.endpoint+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// makeZip builds a zip of name → content.
func makeZip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// errorCode returns the AWS error code of err, or "" when there is none.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
