package async_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/server/servertest"
)

// TestAsync_SurvivesSIGKILL runs `ignis server` as a real process, queues
// 300 events, kills the server with SIGKILL while pollers are working,
// restarts it on the same data directory and proves through the
// CloudWatch Logs API that every accepted event ran at least once.
func TestAsync_SurvivesSIGKILL(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	bins := servertest.Build(t)
	data := t.TempDir()
	addr := servertest.FreeAddr(t)
	endpoint := "http://" + addr
	lam := servertest.NewLambdaClient(endpoint)
	cw := cloudwatchlogs.New(cloudwatchlogs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(servertest.AccessKeyID, servertest.SecretAccessKey, ""),
	})
	start := func() *servertest.Process {
		t.Helper()
		return servertest.StartProcess(t, bins, addr, data,
			"--worker-id", fmt.Sprintf("asyncdur-%d", os.Getpid()),
			"--async-pollers", "8", "--async-retry-delay", "1s", "--log-level", "warn")
	}
	ctx := context.Background()
	srv := start()
	_, err := lam.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("durable"), Role: aws.String(role), Runtime: types.Runtime("python3.11"),
		Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: pyZip(t)}, Timeout: aws.Int32(10),
	})
	if err != nil {
		t.Fatal(err)
	}

	const total = 300
	send := func(i int) error {
		_, err := lam.Invoke(ctx, &lambda.InvokeInput{
			FunctionName: aws.String("durable"), InvocationType: types.InvocationTypeEvent,
			Payload: fmt.Appendf(nil, `{"mark":"m%d","sleep":0.05}`, i),
		})
		return err
	}
	ranCount := func() (map[string]int, int) {
		seen := map[string]int{}
		lines := 0
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/durable"), FilterPattern: aws.String(`"RUN "`)}
		for p := cloudwatchlogs.NewFilterLogEventsPaginator(cw, in); p.HasMorePages(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				return seen, lines
			}
			for _, e := range page.Events {
				f := strings.Fields(aws.ToString(e.Message))
				if len(f) == 3 {
					seen[f[2]]++
					lines++
				}
			}
		}
		return seen, lines
	}

	// First half, then SIGKILL while the pollers work through it.
	next := 0
	for ; next < total/2; next++ {
		if err := send(next); err != nil {
			t.Fatalf("event %d: %v", next, err)
		}
	}
	eventually(t, 2*time.Minute, "some events to run", func() bool {
		seen, _ := ranCount()
		return len(seen) >= 10
	})
	seen, _ := ranCount()
	if len(seen) == total/2 {
		t.Fatal("every event ran before the kill; the test proves nothing")
	}
	t.Logf("SIGKILL after %d of %d accepted events ran", len(seen), next)
	srv.Kill9(t)

	start()
	for ; next < total; next++ {
		if err := send(next); err != nil {
			t.Fatalf("event %d after restart: %v", next, err)
		}
	}
	eventually(t, 4*time.Minute, "every event to run", func() bool {
		seen, _ := ranCount()
		return len(seen) == total
	})
	seen, lines := ranCount()
	for i := range total {
		if seen[fmt.Sprintf("m%d", i)] == 0 {
			t.Fatalf("event m%d never ran", i)
		}
	}
	t.Logf("all %d events ran (%d runs: %d duplicates, allowed by at-least-once)", total, lines, lines-total)
}
