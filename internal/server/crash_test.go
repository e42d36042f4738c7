package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// TestServer_Kill9LeavesNoOrphans runs `ignis server` as a real process,
// starts sandboxes, kills the server with SIGKILL, restarts it on the same
// data directory and checks that no sandbox process or cgroup of the first
// run survives and that the server serves again.
func TestServer_Kill9LeavesNoOrphans(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	bins := servertest.Build(t)
	data := t.TempDir()
	worker := fmt.Sprintf("crashtest-%d", os.Getpid())
	start := func() *servertest.Process {
		return servertest.StartProcess(t, bins, servertest.FreeAddr(t), data, "--worker-id", worker)
	}

	srv := start()
	client := srv.Lambda
	ctx := context.Background()
	createSleeper(t, client, "orphans")
	// Two sandboxes, both busy when the server dies.
	for range 2 {
		go client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("orphans"), Payload: []byte(`{"sleep": 5}`)}) //nolint:errcheck // dies with the server
	}
	waitFor(t, 20*time.Second, func() bool { return len(agentProcs(bins.Agent, worker)) >= 2 }, "two sandboxes to run")

	before := cgroupsOf(worker)
	if len(before) == 0 {
		t.Fatal("found no sandbox cgroups before the kill")
	}
	srv.Kill9(t)

	client = start().Lambda
	waitFor(t, 10*time.Second, func() bool { return len(agentProcs(bins.Agent, worker)) == 0 }, "no sandbox process of the killed server")
	after := map[string]bool{}
	for _, c := range cgroupsOf(worker) {
		after[c] = true
	}
	for _, c := range before {
		if after[c] {
			t.Errorf("cgroup %s of the killed server still holds processes", c)
		}
	}
	out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("orphans")})
	if err != nil || out.FunctionError != nil || string(out.Payload) != `"ok"` {
		t.Fatalf("invoke after restart: %v %v %s", err, out.FunctionError, out.Payload)
	}
	if n := len(agentProcs(bins.Agent, worker)); n != 1 {
		t.Fatalf("%d sandbox processes after one invoke on the restarted server, want 1", n)
	}
}

// createSleeper creates a Python function that sleeps the event's "sleep"
// seconds, then returns "ok".
func createSleeper(t *testing.T, client *lambda.Client, name string) {
	t.Helper()
	zip := servertest.Zip(t, map[string][]byte{"app.py": []byte("import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 'ok'\n")})
	if _, err := client.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Role: aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zip},
	}); err != nil {
		t.Fatal(err)
	}
}

// agentProcs lists the pids running the agent binary, seen from the host
// (agent) or from inside a sandbox's mount namespace, in cgroups of worker
// (other tests on this host run sandboxes too).
func agentProcs(agent, worker string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && (strings.TrimSuffix(exe, " (deleted)") == agent || exe == sandbox.AgentPath) {
			cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
			if !strings.Contains(string(cg), "/ignis-"+worker+"/") {
				continue
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupsOf lists the sandbox cgroups under the worker's parent cgroup, in
// any controller hierarchy, that still hold processes.
func cgroupsOf(worker string) []string {
	var left []string
	matches, _ := filepath.Glob("/sys/fs/cgroup/*/ignis-" + worker + "/*/cgroup.procs")
	more, _ := filepath.Glob("/sys/fs/cgroup/ignis-" + worker + "/*/cgroup.procs")
	for _, m := range append(matches, more...) {
		if b, err := os.ReadFile(m); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			left = append(left, filepath.Dir(m))
		}
	}
	return left
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
