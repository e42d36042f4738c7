package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// echo is the test function's response.
type echo struct {
	Event     json.RawMessage `json:"event"`
	RequestID string          `json:"request_id"`
}

func decodeEcho(t *testing.T, stdout string) echo {
	t.Helper()
	if !strings.HasSuffix(stdout, "\n") {
		t.Errorf("stdout %q does not end in a newline", stdout)
	}
	var e echo
	if err := json.Unmarshal([]byte(stdout), &e); err != nil {
		t.Fatalf("decoding stdout %q: %v", stdout, err)
	}
	return e
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compacting %s: %v", b, err)
	}
	return buf.String()
}

func TestInvokeCommand(t *testing.T) {
	s := startServer(t)
	invoke := func(t *testing.T, args ...string) result {
		t.Helper()
		return run(t, append(append([]string{"invoke"}, s.flags()...), args...)...)
	}

	t.Run("payload", func(t *testing.T) {
		r := invoke(t, s.fn, `{"k": "v"}`)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if e := decodeEcho(t, r.stdout); compactJSON(t, e.Event) != `{"k":"v"}` || e.RequestID == "" {
			t.Errorf("response %+v", e)
		}
	})
	t.Run("default payload", func(t *testing.T) {
		r := invoke(t, s.fn)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if e := decodeEcho(t, r.stdout); compactJSON(t, e.Event) != `{}` {
			t.Errorf("event %s, want {}", e.Event)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := newInvokeCommand(&env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }})
		cmd.SetIn(strings.NewReader(`{"from": "stdin"}`))
		cmd.SetArgs(append(s.flags(), s.fn, "-"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cmd.ExecuteContext(ctx); err != nil {
			t.Fatalf("invoke: %v (stderr %q)", err, stderr.String())
		}
		if e := decodeEcho(t, stdout.String()); compactJSON(t, e.Event) != `{"from":"stdin"}` {
			t.Errorf("event %s", e.Event)
		}
	})
	t.Run("function error", func(t *testing.T) {
		r := invoke(t, s.fn, `{"raise": "boom-17"}`)
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		var fe struct{ ErrorMessage, ErrorType string }
		if err := json.Unmarshal([]byte(r.stdout), &fe); err != nil || fe.ErrorMessage != "boom-17" || fe.ErrorType != "ValueError" {
			t.Errorf("stdout %q: %+v, %v", r.stdout, fe, err)
		}
		if want := "ignis: function " + s.fn + " failed (Unhandled)\n"; r.stderr != want {
			t.Errorf("stderr %q, want %q", r.stderr, want)
		}
	})
	t.Run("tail", func(t *testing.T) {
		r := invoke(t, "--tail", s.fn, `{"print": "tail-marker-42"}`)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		e := decodeEcho(t, r.stdout)
		for _, want := range []string{"START RequestId: " + e.RequestID, "tail-marker-42\n", "REPORT RequestId: " + e.RequestID} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q", want)
			}
		}
	})
	t.Run("qualifier", func(t *testing.T) {
		if r := invoke(t, "--qualifier", "$LATEST", s.fn); r.code != 0 {
			t.Errorf("$LATEST: exit %d, stderr %q", r.code, r.stderr)
		}
		r := invoke(t, "--qualifier", "7", s.fn)
		if r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
			t.Errorf("version 7: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		r := invoke(t, "--dry-run", s.fn)
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "status 204") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("async", func(t *testing.T) {
		// The server may not queue events yet; either way the command
		// says what happened.
		r := invoke(t, "--async", s.fn)
		switch {
		case r.code == 0 && strings.Contains(r.stderr, "queued (status 202)"):
		case r.code == 1 && strings.HasPrefix(r.stderr, "ignis: invoking "+s.fn+": "):
		default:
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("async and dry run", func(t *testing.T) {
		if r := invoke(t, "--async", "--dry-run", s.fn); r.code != 2 {
			t.Errorf("exit %d, want 2", r.code)
		}
	})
	t.Run("missing function", func(t *testing.T) {
		r := invoke(t, "no-such-fn")
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "ignis: invoking no-such-fn: ResourceNotFoundException: ") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("credentials from env", func(t *testing.T) {
		t.Setenv(envAccessKeyID, servertest.AccessKeyID)
		t.Setenv(envSecretAccessKey, servertest.SecretAccessKey)
		t.Setenv(envEndpoint, s.Endpoint())
		t.Chdir(t.TempDir()) // no ./ignis-data
		if r := run(t, "invoke", s.fn); r.code != 0 {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("explicit data dir wins over env", func(t *testing.T) {
		t.Setenv(envAccessKeyID, "AKIDWRONG")
		t.Setenv(envSecretAccessKey, "wrong")
		if r := invoke(t, s.fn); r.code != 0 {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Setenv(envAccessKeyID, "")
		t.Setenv(envSecretAccessKey, "")
		r := run(t, "invoke", "--endpoint", s.Endpoint(), "--data", t.TempDir(), s.fn)
		if r.code != 2 || !strings.Contains(r.stderr, "reading credentials") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		dir := t.TempDir()
		creds, _ := json.Marshal(server.Credentials{AccessKeyID: servertest.AccessKeyID, SecretAccessKey: "wrong"})
		if err := os.WriteFile(filepath.Join(dir, server.CredentialsFile), creds, 0o600); err != nil {
			t.Fatal(err)
		}
		r := run(t, "invoke", "--endpoint", s.Endpoint(), "--data", dir, s.fn)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "ignis: invoking "+s.fn+": ") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}
