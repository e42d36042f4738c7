package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/server"
)

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func start(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func client(s *server.Server) *lambda.Client {
	creds, _ := s.Credentials()
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		BaseEndpoint:     aws.String(s.Endpoint()),
		RetryMaxAttempts: 1,
	})
}

func testZip(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("bootstrap")
	w.Write([]byte("#!/bin/sh\necho hi\n"))
	zw.Close()
	return buf.Bytes()
}

func TestServer_Restart_KeepsEverything(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	ctx := context.Background()

	s1 := start(t, cfg)
	creds1, generated := s1.Credentials()
	if !generated {
		t.Error("first start did not generate credentials")
	}
	c := client(s1)
	zip := testZip(t)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("keep"), Role: aws.String("arn:aws:iam::000000000000:role/r"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &types.FunctionCode{ZipFile: zip}, Timeout: aws.Int32(9), Publish: true,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("keep"), Timeout: aws.Int32(11)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("keep")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("keep"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.3}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("keep"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	before, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("keep")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := start(t, cfg)
	creds2, generated := s2.Credentials()
	if generated || creds2 != creds1 {
		t.Errorf("restart did not reuse the stored credentials")
	}
	c = client(s2)
	after, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("keep")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before.Versions, after.Versions, cmp.AllowUnexported(), cmp.FilterPath(func(p cmp.Path) bool {
		return strings.HasSuffix(p.String(), "noSmithyDocumentSerde")
	}, cmp.Ignore())); diff != "" {
		t.Errorf("versions changed across restart (-before +after):\n%s", diff)
	}
	a, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("keep"), Name: aws.String("live")})
	if err != nil || aws.ToString(a.FunctionVersion) != "1" || a.RoutingConfig.AdditionalVersionWeights["2"] != 0.3 {
		t.Errorf("alias after restart: %v %+v", err, a)
	}
	v1, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("keep"), Qualifier: aws.String("1")})
	if err != nil || aws.ToInt32(v1.Timeout) != 9 {
		t.Errorf("version 1 after restart: %v", err)
	}
	rc, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("keep")})
	if err != nil || aws.ToInt32(rc.ReservedConcurrentExecutions) != 5 {
		t.Errorf("concurrency after restart: %v", err)
	}
	g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("keep")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(aws.ToString(g.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, zip) {
		t.Errorf("code blob after restart: %d bytes, want %d", len(got), len(zip))
	}
	// Version numbers continue after a restart.
	c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("keep"), Timeout: aws.Int32(13)})
	v3, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("keep")})
	if err != nil || aws.ToString(v3.Version) != "3" {
		t.Errorf("publish after restart: %v %s", err, aws.ToString(v3.Version))
	}
}

func TestServer_Start_ExplicitCredentialsAreNotStored(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDEXPLICIT", "explicit-secret"
	s := start(t, cfg)
	if creds, generated := s.Credentials(); generated || creds.AccessKeyID != "AKIDEXPLICIT" {
		t.Errorf("credentials = %+v generated %v", creds, generated)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, server.CredentialsFile)); !os.IsNotExist(err) {
		t.Errorf("explicit credentials were written to disk: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client(s).ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
		t.Errorf("ListFunctions: %v", err)
	}
}

func TestConfig_Validate_Scenarios(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*server.Config)
		wantErr bool
	}{
		{"defaults", func(*server.Config) {}, false},
		{"no data dir", func(c *server.Config) { c.DataDir = "" }, true},
		{"bad listen", func(c *server.Config) { c.Listen = "nope" }, true},
		{"half credentials", func(c *server.Config) { c.AccessKeyID = "AK" }, true},
		{"bad account", func(c *server.Config) { c.AccountID = "12" }, true},
		{"tiny concurrency", func(c *server.Config) { c.AccountConcurrency = 10 }, true},
		{"bad nats listen", func(c *server.Config) { c.NATSListen = "x" }, true},
		{"jail", func(c *server.Config) { c.Compute.Sandbox = server.SandboxJail }, false},
		{"gvisor", func(c *server.Config) { c.Compute.Sandbox = server.SandboxGVisor }, false},
		{"unknown sandbox driver", func(c *server.Config) { c.Compute.Sandbox = "microvm" }, true},
		{"empty sandbox driver", func(c *server.Config) { c.Compute.Sandbox = "" }, true},
		{"cluster", func(c *server.Config) {
			c.AccessKeyID, c.SecretAccessKey = "AK", "SK"
			c.Cluster.Listen, c.Cluster.Peers = "127.0.0.1:6222", []string{"127.0.0.1:6222", "127.0.0.1:6223"}
		}, false},
		{"cluster without the key pair", func(c *server.Config) { c.Cluster.Listen = "127.0.0.1:6222" }, true},
		{"worker node", func(c *server.Config) {
			c.AccessKeyID, c.SecretAccessKey = "AK", "SK"
			c.Cluster.NATSURLs, c.Cluster.Roles = []string{"nats://127.0.0.1:4222"}, []string{"worker"}
		}, false},
		{"worker node alone", func(c *server.Config) { c.Cluster.Roles = []string{"worker"} }, true},
		{"frontend without assignment", func(c *server.Config) {
			c.AccessKeyID, c.SecretAccessKey = "AK", "SK"
			c.Cluster.NATSURLs, c.Cluster.Roles = []string{"nats://127.0.0.1:4222"}, []string{"frontend", "worker"}
		}, true},
		{"unknown role", func(c *server.Config) { c.Cluster.Roles = []string{"scheduler"} }, true},
		{"peers without a listener", func(c *server.Config) { c.Cluster.Peers = []string{"127.0.0.1:6222"} }, true},
		{"embedded and external nats", func(c *server.Config) {
			c.AccessKeyID, c.SecretAccessKey = "AK", "SK"
			c.Cluster.Listen, c.Cluster.NATSURLs = "127.0.0.1:6222", []string{"nats://127.0.0.1:4222"}
		}, true},
		{"node id not a subject token", func(c *server.Config) { c.Cluster.NodeID = "a.b" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := server.DefaultConfig()
			tt.mutate(&c)
			if err := c.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// A deployed code package reaches the worker's code cache before any
// invoke asks for it, on create and on a code update: the first cold start
// after a deploy then does not wait for the unpacking.
func TestServer_PrefetchesDeployedCode(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	ctx := context.Background()
	s := start(t, cfg)
	c := client(s)
	cached := func(t *testing.T, codeSha256 *string) {
		t.Helper()
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(codeSha256))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(cfg.DataDir, "worker", "code", hex.EncodeToString(raw))
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "bootstrap")); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("code %s not in the worker's cache (%s) 20 s after the deploy, with no invoke", aws.ToString(codeSha256), dir)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	created, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("prefetch"), Role: aws.String("arn:aws:iam::000000000000:role/r"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &types.FunctionCode{ZipFile: testZip(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	cached(t, created.CodeSha256)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("bootstrap")
	w.Write([]byte("#!/bin/sh\necho v2\n"))
	zw.Close()
	updated, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("prefetch"), ZipFile: buf.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(updated.CodeSha256) == aws.ToString(created.CodeSha256) {
		t.Fatal("the update kept the code hash")
	}
	cached(t, updated.CodeSha256)
}
