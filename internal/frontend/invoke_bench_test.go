package frontend_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/frontend"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/registry"
)

// echoInvoker answers every invoke with its payload.
type echoInvoker struct{}

func (echoInvoker) Invoke(_ context.Context, req *invoke.Request) (*invoke.Result, error) {
	return &invoke.Result{ExecutedVersion: req.Function.Primary.Version, Payload: req.Payload}, nil
}

// BenchmarkFrontend_Invoke measures the frontend's share of a warm invoke:
// ServeHTTP of an SDK-shaped, SigV4-signed Invoke request (request id,
// body read, signature recomputed with the SDK signer, routing, payload
// JSON check, registry Resolve over embedded JetStream, response headers)
// with an Invoker that echoes. No network: the request goes straight to
// ServeHTTP.
func BenchmarkFrontend_Invoke(b *testing.B) {
	ctx := context.Background()
	ns := natstest.Start(b, "")
	reg, err := registry.Open(ctx, registry.Config{
		JetStream: ns.JetStream(),
		Runtimes:  registry.StaticRuntimes{"provided.al2023"},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	fe, err := frontend.New(frontend.Config{
		Registry:    reg,
		Credentials: frontend.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK},
		Invoker:     echoInvoker{},
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: fe}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	endpoint := "http://" + ln.Addr().String()
	c := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(testAK, testSK, "")})
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("bench"), Role: aws.String(testRole), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: makeZip(b, map[string]string{"bootstrap": "#!/bin/sh\n"})},
	}); err != nil {
		b.Fatal(err)
	}

	for _, size := range []int{100, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			body := append(append([]byte(`{"p":"`), bytes.Repeat([]byte("x"), size-8)...), '"', '}')
			req, err := http.NewRequest(http.MethodPost, endpoint+"/2015-03-31/functions/bench/invocations", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = int64(len(body))
			sum := sha256.Sum256(body)
			req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK},
				req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
				b.Fatal(err)
			}
			req.RequestURI = req.URL.RequestURI()
			rd := bytes.NewReader(body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rd.Reset(body)
				r := req.Clone(ctx)
				r.Body = readCloser{rd}
				w := httptest.NewRecorder()
				fe.ServeHTTP(w, r)
				if w.Code != http.StatusOK || w.Body.Len() != len(body) {
					b.Fatalf("status %d: %.300s", w.Code, w.Body.Bytes())
				}
			}
		})
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func sizeName(n int) string {
	if n >= 1<<10 {
		return "64KB"
	}
	return "100B"
}
