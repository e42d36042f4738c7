package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// startNodes starts the servers of cfgs at once (a cluster's first start
// waits for a quorum of them) and closes them at the end of the test.
func startNodes(t testing.TB, cfgs ...server.Config) []*server.Server {
	t.Helper()
	srvs := make([]*server.Server, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		log := slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", cfg.Cluster.NodeID)
		s, err := server.New(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		srvs[i] = s
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs[i] = s.Start(ctx)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range srvs {
			s.Close(context.Background())
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("starting node %s: %v", cfgs[i].Cluster.NodeID, err)
		}
	}
	return srvs
}

// clusterConfigs returns the configs of n in-process nodes forming one
// embedded NATS cluster on loopback, with the jail driver.
func clusterConfigs(t testing.TB, n int, roles ...[]string) []server.Config {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		routes[i] = servertest.FreeAddr(t)
	}
	cfgs := make([]server.Config, n)
	for i := range cfgs {
		c := server.DefaultConfig()
		c.Listen = "127.0.0.1:0"
		c.DataDir = t.TempDir()
		c.AccessKeyID, c.SecretAccessKey = servertest.AccessKeyID, servertest.SecretAccessKey
		c.ShutdownTimeout = 10 * time.Second
		c.Compute.Sandbox = server.SandboxJail
		c.Compute.AgentBinary = servertest.Build(t).Agent
		c.Cluster.NodeID = fmt.Sprintf("n%d-%d", i+1, os.Getpid())
		c.Cluster.Listen, c.Cluster.Peers = routes[i], routes
		if i < len(roles) {
			c.Cluster.Roles = roles[i]
		}
		cfgs[i] = c
	}
	return cfgs
}

// sandboxesOf names the sandboxes (cgroups holding processes, in any
// hierarchy) under worker's parent cgroup.
func sandboxesOf(worker string) []string {
	seen := map[string]bool{}
	var out []string
	for _, cg := range cgroupsOf(worker) {
		if b := filepath.Base(cg); strings.HasPrefix(b, "sb-") && !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out
}

// TestCluster_RemoteWorker: a frontend node with no worker of its own runs
// every invoke on a worker-only node of its cluster: cold and warm, with
// payloads of Lambda's 6 MB limit both ways, a function error and an init
// failure carried back intact; the worker node answers no Lambda API, and
// stopping it leaves none of its sandboxes.
func TestCluster_RemoteWorker(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	cfgs := clusterConfigs(t, 2, []string{"frontend", "assignment"}, []string{"worker"})
	nodes := startNodes(t, cfgs...)
	front, work := nodes[0], nodes[1]
	workerID := cfgs[1].Cluster.NodeID
	c := client(front)
	ctx := context.Background()

	echo := servertest.Zip(t, map[string][]byte{"app.py": []byte(
		"import os\n" +
			"def handler(e, c):\n" +
			"    if e.get('fail'): raise ValueError('asked to fail')\n" +
			"    if 'size' in e: return 'x' * e['size']\n" +
			"    return {'echo': e, 'pid': os.getpid()}\n")})
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("remote"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: echo},
	}); err != nil {
		t.Fatal(err)
	}

	invoke := func(payload []byte) *lambda.InvokeOutput {
		t.Helper()
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("remote"), Payload: payload, LogType: types.LogTypeTail})
		if err != nil {
			t.Fatalf("invoke: %v", err)
		}
		return out
	}
	var first, second struct {
		Echo map[string]any `json:"echo"`
		PID  int            `json:"pid"`
	}
	out := invoke([]byte(`{"n": 1}`))
	if out.FunctionError != nil || json.Unmarshal(out.Payload, &first) != nil || first.Echo["n"] != 1.0 {
		t.Fatalf("cold invoke: %v %s", out.FunctionError, out.Payload)
	}
	if out.LogResult == nil || *out.LogResult == "" {
		t.Error("cold invoke: no log tail came back from the worker node")
	}
	if got := sandboxesOf(workerID); len(got) != 1 {
		t.Errorf("worker node holds sandboxes %v after one invoke, want 1", got)
	}
	if err := json.Unmarshal(invoke([]byte(`{"n": 2}`)).Payload, &second); err != nil || second.PID != first.PID {
		t.Errorf("warm invoke ran in pid %d, the first in %d (%v): want the same sandbox", second.PID, first.PID, err)
	}

	// Lambda's limits, both ways: a 6 MB request and a 6 MB response.
	big := append(append([]byte(`{"pad": "`), bytes.Repeat([]byte("p"), 6*1000*1000-20)...), `"}`...)
	if out := invoke(big); out.FunctionError != nil {
		t.Errorf("6 MB request: %v %.200s", out.FunctionError, out.Payload)
	}
	if out := invoke([]byte(fmt.Sprintf(`{"size": %d}`, 6*1000*1000-10))); out.FunctionError != nil || len(out.Payload) < 6*1000*1000-10 {
		t.Errorf("6 MB response: %v, %d bytes", out.FunctionError, len(out.Payload))
	}
	if out := invoke([]byte(`{"fail": true}`)); out.FunctionError == nil || !strings.Contains(string(out.Payload), "asked to fail") {
		t.Errorf("function error: %v %s, want Unhandled with the message", out.FunctionError, out.Payload)
	}

	// An init failure on the remote worker is the invoke's function error.
	bad := servertest.Zip(t, map[string][]byte{"app.py": []byte("raise RuntimeError('broken at import')\n")})
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("broken"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: bad},
	}); err != nil {
		t.Fatal(err)
	}
	bout, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("broken")})
	if err != nil || bout.FunctionError == nil || !strings.Contains(string(bout.Payload), "broken at import") {
		t.Errorf("init failure: %v %v %s", err, bout.FunctionError, bout.Payload)
	}

	// The worker node serves no Lambda API, and says so; both are ready.
	resp, err := http.Get(work.Endpoint() + "/2015-03-31/functions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("Lambda API on the worker node: HTTP %d, want 503", resp.StatusCode)
	}
	for _, n := range nodes {
		resp, err := http.Get(n.Endpoint() + server.ReadyPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s on %s: HTTP %d", server.ReadyPath, n.Endpoint(), resp.StatusCode)
		}
	}

	// `ignis fleet` on the frontend lists the worker node with its sandboxes.
	cmd := exec.Command(servertest.Build(t).Ignis, "fleet", "--json", "--endpoint", front.Endpoint())
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+servertest.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+servertest.SecretAccessKey)
	fout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ignis fleet: %v: %s", err, fout)
	}
	var fl struct{ Workers []api.FleetWorker }
	if err := json.Unmarshal(fout, &fl); err != nil || len(fl.Workers) != 1 || fl.Workers[0].ID != workerID ||
		fl.Workers[0].State != "Ready" || fl.Workers[0].Sandboxes < 1 || fl.Workers[0].MemoryMB == 0 {
		t.Errorf("ignis fleet = %s (%v), want the one worker node, ready, with its sandboxes", fout, err)
	}

	// Only members reach a node's NATS, and with it the workers' subjects:
	// no credentials, the API key pair's user with a wrong password, and
	// the route secret of another cluster are all refused.
	for _, n := range nodes {
		url := n.NATSURL()
		if url == "" {
			t.Fatalf("node %s has no NATS client port", n.Endpoint())
		}
		for _, opts := range [][]nats.Option{nil, {embednats.ClientAuth("not-the-secret")}, {nats.UserInfo(servertest.AccessKeyID, "wrong")}} {
			if nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(0), nats.Timeout(2*time.Second))...); err == nil {
				nc.Close()
				t.Errorf("a client without the cluster's secret connected to %s", url)
			}
		}
	}

	if err := work.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := cgroupsOf(workerID); len(left) > 0 {
		t.Errorf("sandbox cgroups left on the stopped worker node: %v", left)
	}
}
