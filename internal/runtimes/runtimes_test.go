package runtimes_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/runtimes"
)

func TestInstall_WritesBootstraps(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ { // idempotent
		if err := runtimes.Install(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{runtimes.PythonBootstrap, runtimes.NodeBootstrap} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name, runtime, handler string
		want                   []string
		wantErr                bool
	}{
		{name: "provided", runtime: "provided.al2023", handler: "ignored"},
		{name: "provided al2", runtime: "provided.al2", handler: ""},
		{name: "python", runtime: "python3.11", handler: "app.handler", want: []string{"/usr/bin/python3.11", "/var/runtime/python/bootstrap.py"}},
		{name: "node", runtime: "nodejs20.x", handler: "index.handler", want: []string{"/usr/bin/node", "/var/runtime/node/bootstrap.mjs"}},
		{name: "python bad handler", runtime: "python3.11", handler: "nohandler", wantErr: true},
		{name: "unknown", runtime: "java21", handler: "x.y", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runtimes.Resolve(tt.runtime, tt.handler)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("argv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSupported_ThisHost(t *testing.T) {
	got := runtimes.Supported()
	if !slices.Contains(got, "provided.al2023") || !slices.Contains(got, "provided.al2") {
		t.Fatalf("Supported() = %v", got)
	}
	if _, err := os.Stat("/usr/bin/python3.11"); err == nil && !slices.Contains(got, "python3.11") {
		t.Fatalf("python3.11 present but Supported() = %v", got)
	}
	t.Logf("Supported() = %v", got)
}

func TestDetect_FakeBinDir(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"python3.12", "python3.9", "python3.11-config", "python3"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "node"), []byte("#!/bin/sh\necho v22.3.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := []string{"provided.al2023", "provided.al2", "python3.9", "python3.12", "nodejs22.x"}
	if diff := cmp.Diff(want, runtimes.Detect(dir)); diff != "" {
		t.Fatalf("Detect (-want +got):\n%s", diff)
	}
}

func TestEnv(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	env := runtimes.Env(runtimes.EnvInput{
		FunctionName: "f", MemoryMB: 256, Handler: "app.handler", Runtime: "python3.11", Region: "eu-west-1",
		LogStream: "2026/05/01/[$LATEST]abc", Now: now,
		UserVars: map[string]string{"GREETING": "hi", "AWS_REGION": "evil", "_HANDLER": "evil", "LANG": "C.UTF-8", "TZ": "Europe/Paris"},
	})
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	want := map[string]string{
		"_HANDLER": "app.handler", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
		"AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "AWS_LAMBDA_FUNCTION_NAME": "f",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f",
		"AWS_LAMBDA_LOG_STREAM_NAME": "2026/05/01/[$LATEST]abc", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
		"LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime", "TZ": ":UTC",
		"GREETING": "hi", "LANG": "C.UTF-8", "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if !slices.IsSorted(env) {
		t.Errorf("env not sorted")
	}

	provided := runtimes.Env(runtimes.EnvInput{FunctionName: "g", Runtime: "provided.al2023", Version: "3", Now: now})
	for _, kv := range provided {
		if strings.HasPrefix(kv, "AWS_EXECUTION_ENV=") {
			t.Errorf("provided runtime has %s", kv)
		}
		if strings.HasPrefix(kv, "AWS_LAMBDA_LOG_STREAM_NAME=") && !strings.HasPrefix(kv, "AWS_LAMBDA_LOG_STREAM_NAME=2026/05/01/[3]") {
			t.Errorf("log stream %s", kv)
		}
	}
	node := runtimes.Env(runtimes.EnvInput{FunctionName: "n", Runtime: "nodejs20.x"})
	if !slices.ContainsFunc(node, func(kv string) bool { return strings.HasPrefix(kv, "NODE_PATH=/opt/nodejs/node20/node_modules:") }) {
		t.Errorf("node env lacks NODE_PATH: %v", node)
	}
}
