package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// logLine is one line `ignis logs` prints.
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S.*$`)

// invokeFn invokes s.fn with payload through the CLI and returns the
// request ID.
func (s *testServer) invokeFn(t *testing.T, payload string) string {
	t.Helper()
	r := run(t, append(append([]string{"invoke"}, s.flags()...), s.fn, payload)...)
	if r.code != 0 {
		t.Fatalf("invoke: exit %d, stderr %q", r.code, r.stderr)
	}
	return decodeEcho(t, r.stdout).RequestID
}

// eventually retries f for up to 20 s: the worker appends logs
// asynchronously.
func eventually(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestLogsCommand(t *testing.T) {
	s := startServer(t)
	logs := func(t *testing.T, args ...string) result {
		t.Helper()
		return run(t, append(append([]string{"logs"}, s.flags()...), args...)...)
	}
	id := s.invokeFn(t, `{"print": "hello-from-logs"}`)

	t.Run("lines of an invoke", func(t *testing.T) {
		var r result
		eventually(t, func() bool {
			r = logs(t, s.fn)
			return r.code == 0 && strings.Contains(r.stdout, "REPORT RequestId: "+id)
		})
		want := []string{"START RequestId: " + id + " Version: $LATEST", "hello-from-logs", "END RequestId: " + id, "REPORT RequestId: " + id}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		var got []string
		for _, l := range lines {
			if !logLine.MatchString(l) {
				t.Errorf("line %q is not `<RFC 3339 timestamp> <message>`", l)
				continue
			}
			if msg := l[strings.IndexByte(l, ' ')+1:]; strings.Contains(msg, id) || msg == "hello-from-logs" {
				got = append(got, msg)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("lines of %s: %q, want %d lines", id, got, len(want))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("line %d = %q, want prefix %q", i, got[i], want[i])
			}
		}
	})
	t.Run("filter", func(t *testing.T) {
		r := logs(t, "--filter", "REPORT", s.fn)
		if r.code != 0 || !strings.Contains(r.stdout, "REPORT RequestId: "+id) {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
		for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
			if !strings.Contains(l, " REPORT RequestId: ") {
				t.Errorf("filtered line %q", l)
			}
		}
	})
	t.Run("since", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond)
		if r := logs(t, "--since", "1ms", s.fn); r.code != 0 || r.stdout != "" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
	t.Run("missing group", func(t *testing.T) {
		r := logs(t, "no-such-fn")
		if r.code != 1 || !strings.HasPrefix(r.stderr, "ignis: reading /aws/lambda/no-such-fn: ResourceNotFoundException: ") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("pages", func(t *testing.T) {
		// More events than one FilterLogEvents response holds (10,000).
		const batches, perBatch = 3, 5000
		cf := &clientFlags{endpoint: s.Endpoint(), dataDir: s.dataDir}
		client, err := cf.logsClient(&env{getenv: func(string) string { return "" }})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		group, stream := "/aws/lambda/paged", "2026/01/01/[$LATEST]00000000000000000000000000000000"
		if _, err := client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
		base := time.Now().Add(-time.Minute).UnixMilli()
		for b := range batches {
			evs := make([]types.InputLogEvent, perBatch)
			for i := range evs {
				n := b*perBatch + i
				evs[i] = types.InputLogEvent{Timestamp: aws.Int64(base + int64(n/100)), Message: aws.String(fmt.Sprintf("event %05d", n))}
			}
			if _, err := client.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: evs}); err != nil {
				t.Fatal(err)
			}
		}
		var lines []string
		eventually(t, func() bool {
			var stdout, stderr strings.Builder
			code := Main(ctx, append(append([]string{"logs"}, s.flags()...), "paged"), &stdout, &stderr)
			lines = strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			return code == 0 && len(lines) >= batches*perBatch
		})
		if len(lines) != batches*perBatch {
			t.Fatalf("%d lines, want %d", len(lines), batches*perBatch)
		}
		for n, l := range lines {
			if want := fmt.Sprintf("event %05d", n); !strings.HasSuffix(l, " "+want) {
				t.Fatalf("line %d = %q, want %q", n, l, want)
			}
		}
	})
	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var stdout, stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, append(append([]string{"logs", "--follow"}, s.flags()...), s.fn), &stdout, &stderr)
		}()
		// The earlier invoke shows first, then one made after following began.
		eventually(t, func() bool { return strings.Contains(stdout.String(), "REPORT RequestId: "+id) })
		later := s.invokeFn(t, `{"print": "appended-while-following"}`)
		eventually(t, func() bool { return strings.Contains(stdout.String(), "REPORT RequestId: "+later) })
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d after cancel, stderr %q", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("logs --follow did not stop after cancel")
		}
		out := stdout.String()
		t.Logf("logs --follow printed:\n%s", out)
		for _, want := range []string{"appended-while-following", "START RequestId: " + later} {
			if strings.Count(out, want) != 1 {
				t.Errorf("%q printed %d times, want once", want, strings.Count(out, want))
			}
		}
		if n := strings.Count(out, "REPORT RequestId: "+id); n != 1 {
			t.Errorf("earlier REPORT printed %d times, want once", n)
		}
	})
	t.Run("follow before the first invoke", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var stdout, stderr syncBuffer
		code := Main(ctx, append(append([]string{"logs", "--follow"}, s.flags()...), "no-such-fn"), &stdout, &stderr)
		if code != 0 || stdout.String() != "" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	})
}
