package server_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// BenchmarkServer_AsyncInvoke is the client's wait for a 202 from an
// asynchronous Invoke (the event is then on disk under sync=always), under
// each sync policy. The function's reserved concurrency is 0, so the
// pollers leave the events queued and the figure is the enqueue path alone:
// SigV4, the registry lookup and the JetStream publish and ack.
func BenchmarkServer_AsyncInvoke(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("the server's worker needs root")
	}
	for _, sync := range []embednats.Sync{embednats.SyncAlways, embednats.SyncInterval} {
		b.Run("sync="+string(sync), func(b *testing.B) {
			srv := servertest.Start(b, "", func(c *server.Config) { c.Sync = sync })
			ctx := context.Background()
			code := servertest.Zip(b, map[string][]byte{"app.py": []byte("def handler(event, context):\n    return 1\n")})
			if _, err := srv.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String("q"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
				Runtime: types.RuntimePython311, Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: code},
			}); err != nil {
				b.Fatal(err)
			}
			if _, err := srv.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{
				FunctionName: aws.String("q"), ReservedConcurrentExecutions: aws.Int32(0),
			}); err != nil {
				b.Fatal(err)
			}
			in := &lambda.InvokeInput{FunctionName: aws.String("q"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"k":"v"}`)}
			for b.Loop() {
				out, err := srv.Lambda.Invoke(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
				if out.StatusCode != 202 {
					b.Fatalf("status %d, want 202", out.StatusCode)
				}
			}
		})
	}
}
