package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/server/servertest"
	"github.com/ignis-run/ignis/internal/testcluster"
)

// call is one invoke of a load run.
type call struct {
	start, end time.Time
	err        error
}

// load invokes fn on c with n clients until stop is closed and returns
// every call.
func load(c *lambda.Client, fn string, n int, stop <-chan struct{}) []call {
	var mu sync.Mutex
	var calls []call
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				cl := call{start: time.Now()}
				out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"rawPath":"/echo"}`)})
				cancel()
				cl.end = time.Now()
				if err == nil && out.FunctionError != nil {
					err = fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
				}
				cl.err = err
				mu.Lock()
				calls = append(calls, cl)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return calls
}

// retriable reports whether err is what a client may retry: a
// ServiceException (HTTP 5xx) in AWS's shape.
func retriable(err error) bool {
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	return errors.As(err, &ae) && ae.ErrorCode() == "ServiceException" &&
		errors.As(err, &re) && re.HTTPStatusCode() >= 500
}

// hostSandboxes names the sandboxes running on h (sandbox cgroups with
// processes under its --cgroup-parent).
func hostSandboxes(h *testcluster.Host) []string {
	var out []string
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/memory", h.Cgroup(), "sandboxes", "sb-*", "cgroup.procs"))
	for _, p := range dirs {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "" {
			out = append(out, filepath.Base(filepath.Dir(p)))
		}
	}
	return out
}

// fleetOf is `ignis fleet` against h, by worker ID.
func fleetOf(t *testing.T, c *testcluster.Cluster, h *testcluster.Host) map[string]api.FleetWorker {
	t.Helper()
	cmd := c.Command(t, servertest.Build(t).Ignis, "fleet", "--json", "--endpoint", h.Endpoint())
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+servertest.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+servertest.SecretAccessKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ignis fleet: %v: %s", err, out)
	}
	var fl struct{ Workers []api.FleetWorker }
	if err := json.Unmarshal(out, &fl); err != nil {
		t.Fatalf("ignis fleet: %v: %s", err, out)
	}
	m := map[string]api.FleetWorker{}
	for _, w := range fl.Workers {
		m[w.ID] = w
	}
	return m
}

// TestFleet_WorkerLossAndDrain: one frontend host and two worker hosts
// (separate network namespaces, half a CPU each, R3) under a steady load
// of 16 clients. SIGKILL one worker host: outside a window of twice the
// heartbeat TTL no invoke fails, inside it every failure is a retriable
// ServiceException and none waits past the function's timeout; then the
// dead host has no sandbox in the table and the live one runs exactly the
// sandboxes the table holds. Restarted, the host takes work again; SIGTERM
// on the other drains it with no failed invoke.
func TestFleet_WorkerLossAndDrain(t *testing.T) {
	// Long enough for a replicated bucket to elect a new leader (the
	// fleet bucket's may have been on the killed host) before the live
	// worker's registration, which it cannot refresh meanwhile, lapses.
	const ttl = 6 * time.Second
	c := testcluster.New(t, 3, testcluster.Options{Mode: testcluster.Namespaces, Args: []string{"--heartbeat-ttl", ttl.String()}})
	front, w2, w3 := c.Host(1), c.Host(2), c.Host(3)
	roles := map[*testcluster.Host][]string{front: {"frontend", "assignment"}, w2: {"worker"}, w3: {"worker"}}
	c.StartAll(t, func(h *testcluster.Host) []string { return c.ClusterArgs(h, roles[h]...) }, front, w2, w3)

	lc := front.Lambda()
	ctx := context.Background()
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("echo"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: buildFurlEcho(t)},
	}); err != nil {
		t.Fatal(err)
	}
	const timeout = 3 * time.Second // the function's (the default)

	run := func(d time.Duration, during func()) []call {
		stop := make(chan struct{})
		done := make(chan []call)
		go func() { done <- load(lc, "echo", 16, stop) }()
		if during != nil {
			during()
		}
		time.Sleep(d)
		close(stop)
		return <-done
	}
	warm := run(3*time.Second, nil)
	for _, cl := range warm {
		if cl.err != nil {
			t.Fatalf("warm-up invoke failed: %v", cl.err)
		}
	}
	if len(hostSandboxes(w2)) == 0 || len(hostSandboxes(w3)) == 0 {
		t.Fatalf("sandboxes after warm-up: %s %v, %s %v: want both worker hosts used", w2.Name(), hostSandboxes(w2), w3.Name(), hostSandboxes(w3))
	}

	// SIGKILL a worker host under load.
	var killed time.Time
	calls := run(4*ttl+3*time.Second, func() {
		time.Sleep(2 * time.Second)
		w2.Kill(t)
		killed = time.Now()
	})
	window := killed.Add(2 * ttl)
	failed := 0
	for _, cl := range calls {
		if cl.err == nil {
			continue
		}
		failed++
		switch {
		case cl.end.After(window):
			t.Errorf("invoke failed %v after the kill, past the window of 2 × TTL: %v", cl.end.Sub(killed), cl.err)
		case !retriable(cl.err):
			t.Errorf("invoke failed with a non-retriable error inside the window: %v", cl.err)
		}
		if took := cl.end.Sub(cl.start); took > timeout+3*time.Second {
			t.Errorf("a failed invoke waited %v, past the function's timeout (%v)", took, timeout)
		}
	}
	t.Logf("SIGKILL under load: %d invokes, %d failed (all inside the 2 × TTL window: %v)", len(calls), failed, 2*ttl)

	// The dead host is out of the table; the live one runs what the table says.
	fl := fleetOf(t, c, front)
	if w, ok := fl[w2.Name()]; ok && (w.Sandboxes > 0 || w.State != "Gone") {
		t.Errorf("the killed worker is still in the fleet: %+v", w)
	}
	live := hostSandboxes(w3)
	if got := fl[w3.Name()].Sandboxes; got != len(live) {
		t.Errorf("%s runs %d sandboxes %v, the table holds %d: orphans or ghosts", w3.Name(), len(live), live, got)
	}

	// Back again, it takes work; then SIGTERM drains the other one.
	w2.Start(t, w2.Args()...)
	if n := len(hostSandboxes(w2)); n != 0 {
		t.Errorf("the restarted worker host runs %d sandboxes before any invoke", n)
	}
	calls = run(3*time.Second, nil)
	calls = append(calls, run(3*time.Second, func() {
		time.Sleep(time.Second)
		w3.Stop(t) // returns once it exited: drained
	})...)
	for _, cl := range calls {
		if cl.err != nil {
			t.Errorf("invoke failed while a worker host drained: %v", cl.err)
		}
	}
	if len(hostSandboxes(w2)) == 0 {
		t.Errorf("the restarted worker host took no sandbox")
	}
	if left := hostSandboxes(w3); len(left) > 0 {
		t.Errorf("the drained worker host left sandboxes %v", left)
	}
	t.Logf("SIGTERM under load: %d invokes, none failed", len(calls))
}

// BenchmarkFleet_Scaling is the warm throughput of a Go echo at 32
// clients through one frontend host whose sandboxes run on 1, 2 and 3
// worker hosts (namespaces, testcluster). Each worker host has a quarter
// of a CPU, the frontend host one CPU: 1.75 of this machine's two, so
// that the workers, not the frontend or the machine, are the bound, and
// a worker host added is capacity added. Read invokes/s across the three:
//
//	go test ./internal/server -run '^$' -bench Fleet_Scaling -benchtime 6000x
func BenchmarkFleet_Scaling(b *testing.B) {
	for _, workers := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			cpu := []int{1000}
			for range workers {
				cpu = append(cpu, 250)
			}
			c := testcluster.New(b, 1+workers, testcluster.Options{Mode: testcluster.Namespaces, HostCPUMillis: cpu})
			c.StartAll(b, func(h *testcluster.Host) []string {
				if h == c.Host(1) {
					return c.ClusterArgs(h, "frontend", "assignment")
				}
				return c.ClusterArgs(h, "worker")
			}, c.Hosts()...)
			lc := c.Host(1).Lambda()
			ctx := context.Background()
			if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String("echo"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
				Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: buildFurlEcho(b)},
				// The hosts' quotas are the bound, not each sandbox's
				// (and on cgroup v1 a sandbox may not have more CPU than
				// its quarter-CPU host: at most about 440 MB).
				MemorySize: aws.Int32(256),
			}); err != nil {
				b.Fatal(err)
			}
			invoke := func(n int) (time.Duration, error) {
				var next atomic.Int64
				var first error
				var once sync.Once
				start := time.Now()
				var wg sync.WaitGroup
				for range 32 {
					wg.Go(func() {
						for next.Add(1) <= int64(n) {
							out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"rawPath":"/echo"}`)})
							if err == nil && out.FunctionError != nil {
								err = fmt.Errorf("function error: %s", out.Payload)
							}
							if err != nil {
								once.Do(func() { first = err })
							}
						}
					})
				}
				wg.Wait()
				return time.Since(start), first
			}
			if _, err := invoke(2000); err != nil { // 32 sandboxes, warm
				b.Fatal(err)
			}
			b.ResetTimer()
			took, err := invoke(b.N)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/took.Seconds(), "invokes/s")
			per := map[string]int{}
			for _, h := range c.Hosts()[1:] {
				per[h.Name()] = len(hostSandboxes(h))
			}
			b.Logf("%d worker hosts: %.0f invokes/s; sandboxes per host %v", workers, float64(b.N)/took.Seconds(), per)
		})
	}
}
