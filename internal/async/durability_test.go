package async_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	bin := t.TempDir()
	for _, cmd := range [][]string{
		{"go", "build", "-o", filepath.Join(bin, "ignis"), "../../cmd/ignis"},
		{"go", "build", "-o", filepath.Join(bin, "ignis-agent"), "../../cmd/ignis-agent"},
	} {
		c := exec.Command(cmd[0], cmd[1:]...)
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	data := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	endpoint := "http://" + addr
	lam := servertest.NewLambdaClient(endpoint)
	cw := cloudwatchlogs.New(cloudwatchlogs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(servertest.AccessKeyID, servertest.SecretAccessKey, ""),
	})
	run := 0
	start := func() *exec.Cmd {
		t.Helper()
		run++
		logf, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("server-%d.log", run)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(bin, "ignis"), "server",
			"--listen", addr, "--data", data, "--sandbox", "jail",
			"--agent", filepath.Join(bin, "ignis-agent"),
			"--worker-id", fmt.Sprintf("asyncdur-%d", os.Getpid()),
			"--access-key-id", servertest.AccessKeyID, "--secret-access-key", servertest.SecretAccessKey,
			"--async-pollers", "8", "--async-retry-delay", "1s", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("server run %d log:\n%s", run, b)
			}
		})
		eventually(t, 2*time.Minute, "the server to serve", func() bool {
			_, err := lam.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
			return err == nil
		})
		return cmd
	}
	ctx := context.Background()
	srv := start()
	_, err = lam.CreateFunction(ctx, &lambda.CreateFunctionInput{
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
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = srv.Process.Wait()

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
