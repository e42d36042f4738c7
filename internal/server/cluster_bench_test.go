package server_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/server"
)

// BenchmarkCluster_WarmInvoke is one client's warm invoke of a Go echo
// through the frontend of a node that runs the sandbox itself (local),
// and of a node whose sandboxes run on a worker-only node of its cluster
// (remote: the invoke crosses a NATS route there and back). Both setups
// run in this process, side by side, so their ratio is what to read:
//
//	go test ./internal/server -run '^$' -bench Cluster_WarmInvoke -benchtime 3000x -count 5
func BenchmarkCluster_WarmInvoke(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("sandboxes need root")
	}
	local := clusterConfigs(b, 1)[0]
	local.Cluster = server.ClusterConfig{} // a node alone, as `make run` starts it
	pair := clusterConfigs(b, 2, []string{"frontend", "assignment"}, []string{"worker"})
	setups := []struct {
		name string
		cfgs []server.Config
	}{{"local", []server.Config{local}}, {"remote", pair}}
	echo := buildFurlEcho(b)
	for _, s := range setups {
		nodes := startNodes(b, s.cfgs...)
		c := client(nodes[0])
		ctx := context.Background()
		if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("echo"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
			Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: echo},
			// A whole vCPU: at 128 MB a closed loop measures the CPU
			// quota's throttling, not the path.
			MemorySize: aws.Int32(1769),
		}); err != nil {
			b.Fatal(err)
		}
		in := &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"rawPath":"/echo"}`)}
		for range 20 { // the sandbox, warm
			if out, err := c.Invoke(ctx, in); err != nil || out.FunctionError != nil {
				b.Fatalf("warm-up: %v", err)
			}
		}
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if out, err := c.Invoke(ctx, in); err != nil || out.FunctionError != nil {
					b.Fatalf("invoke: %v", err)
				}
			}
		})
	}
}
