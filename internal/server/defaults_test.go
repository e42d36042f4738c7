package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// TestServer_Defaults_SyncAlways reads the sync policy back from the
// embedded NATS server's own report of what is in force, so a change that
// drops it (a new option struct, a default flipped) cannot pass silently:
// every acknowledgement Ignis gives (a 202, a journal entry) assumes it.
func TestServer_Defaults_SyncAlways(t *testing.T) {
	for _, tc := range []struct {
		sync embednats.Sync
		want bool
	}{
		{server.DefaultConfig().Sync, true},
		{embednats.SyncInterval, false},
	} {
		t.Run(string(tc.sync), func(t *testing.T) {
			srv := servertest.Start(t, "", func(c *server.Config) { c.Sync = tc.sync })
			v, err := srv.NATSVarz()
			if err != nil {
				t.Fatal(err)
			}
			if v.JetStream.Config == nil {
				t.Fatal("JetStream is not enabled")
			}
			if got := v.JetStream.Config.SyncAlways; got != tc.want {
				t.Errorf("sync %q: JetStream sync_always = %v, want %v", tc.sync, got, tc.want)
			}
		})
	}
}

// TestServer_RelativeDataDir is the README's quick start in-process: the
// default, relative --data works, and keeps working after the process
// changes directory, because the server resolves it once at start-up.
func TestServer_RelativeDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	wd := t.TempDir()
	t.Chdir(wd)
	srv := servertest.Start(t, "", func(c *server.Config) { c.DataDir = server.DefaultConfig().DataDir })
	if want := filepath.Join(wd, "ignis-data"); srv.DataDir() != want {
		t.Errorf("DataDir = %q, want %q", srv.DataDir(), want)
	}
	t.Chdir(t.TempDir())

	ctx := context.Background()
	code := servertest.Zip(t, map[string][]byte{"app.py": []byte("def handler(event, context):\n    return {'hello': event['name']}\n")})
	if _, err := srv.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: code},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("hello"), Payload: []byte(`{"name":"ignis"}`), LogType: types.LogTypeTail,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil || string(out.Payload) != `{"hello": "ignis"}` {
		t.Errorf("invoke: FunctionError=%v payload=%s", aws.ToString(out.FunctionError), out.Payload)
	}
	if _, err := os.Stat(filepath.Join(wd, "ignis-data", "nats")); err != nil {
		t.Errorf("state is not under the directory --data named at start-up: %v", err)
	}
}
