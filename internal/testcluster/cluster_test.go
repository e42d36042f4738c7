package testcluster_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/server/servertest"
	"github.com/ignis-run/ignis/internal/testcluster"
)

// TestCluster runs one test body in every mode: hosts start, answer on
// their own addresses as separate servers, run a function in a sandbox,
// and keep it across a restart; kill, partition and the CPU quota where
// the mode has them.
func TestCluster(t *testing.T) {
	for _, tc := range []struct {
		mode  testcluster.Mode
		hosts int
	}{
		{testcluster.Namespaces, 3},
		{testcluster.Loopback, 2},
		{testcluster.InProcess, 2},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			c := testcluster.New(t, tc.hosts, testcluster.Options{Mode: tc.mode})
			exerciseHosts(t, c)
		})
	}
}

func exerciseHosts(t *testing.T, c *testcluster.Cluster) {
	ctx := context.Background()
	for _, h := range c.Hosts() {
		h.Start(t)
	}
	h1, h2 := c.Host(1), c.Host(2)

	t.Run("separate hosts", func(t *testing.T) {
		seen := map[string]bool{}
		for _, h := range c.Hosts() {
			ap := netip.MustParseAddrPort(h.Addr())
			if seen[ap.Addr().String()] {
				t.Errorf("%s shares address %s", h.Name(), ap.Addr())
			}
			seen[ap.Addr().String()] = true
			if c.Mode() == testcluster.Namespaces && !netip.MustParsePrefix("10.213.0.0/24").Contains(ap.Addr()) {
				t.Errorf("%s listens on %s, outside the cluster subnet", h.Name(), ap)
			}
			if _, err := h.Lambda().ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
				t.Errorf("%s: %v", h.Name(), err)
			}
		}
	})

	t.Run("function runs in a sandbox", func(t *testing.T) {
		createFunction(t, h1)
		invoke(t, h1)
		// Single-node servers, each with its own data: h2 knows nothing
		// of h1's function.
		_, err := h2.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
		if nf := (*types.ResourceNotFoundException)(nil); !errors.As(err, &nf) {
			t.Errorf("GetFunction on h2 = %v, want ResourceNotFoundException", err)
		}
	})

	t.Run("CPU quota", func(t *testing.T) {
		if !c.Capabilities().CPUQuota {
			t.Skipf("no CPU quota in %s mode", c.Mode())
		}
		for _, h := range c.Hosts() {
			if got := h.CPUQuota(t); got != 500 {
				t.Errorf("%s CPU quota = %d millis, want 500", h.Name(), got)
			}
		}
	})

	t.Run("partition and heal", func(t *testing.T) {
		if !c.Capabilities().Partition {
			t.Skipf("no partition in %s mode", c.Mode())
		}
		h2.Partition(t)
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := h2.Lambda().ListFunctions(qctx, &lambda.ListFunctionsInput{})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ListFunctions on partitioned h2 = %v, want a timeout", err)
		}
		for _, h := range c.Hosts() {
			if h == h2 {
				continue
			}
			if _, err := h.Lambda().ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
				t.Errorf("%s while h2 is partitioned: %v", h.Name(), err)
			}
		}
		if len(h2.PIDs(t)) == 0 {
			t.Error("h2's server stopped: a partition must leave it running")
		}
		h2.Heal(t)
		waitFor(t, 10*time.Second, "h2 to answer after Heal", func() bool {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := h2.Lambda().ListFunctions(qctx, &lambda.ListFunctionsInput{})
			return err == nil
		})
	})

	t.Run("kill and restart", func(t *testing.T) {
		if !c.Capabilities().Kill {
			t.Skipf("no kill in %s mode", c.Mode())
		}
		// The server, its prestarted setup stages and the warm sandbox of
		// the invoke above.
		pids := h1.PIDs(t)
		if len(pids) < 3 {
			t.Fatalf("h1 has processes %v, want the server, its stages and a sandbox", pids)
		}
		// The sandboxes are inside the host's cgroup (--cgroup-parent):
		// under its CPU quota, and reached by Kill.
		inSandbox := 0
		for _, pid := range pids {
			if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup")); err == nil &&
				strings.Contains(string(b), "/"+h1.Cgroup()+"/sandboxes/") {
				inSandbox++
			}
		}
		if inSandbox == 0 {
			t.Errorf("none of h1's processes %v is in a sandbox cgroup under %s/sandboxes", pids, h1.Cgroup())
		}
		h1.Kill(t)
		if left := h1.PIDs(t); len(left) > 0 {
			t.Errorf("processes %v left in h1's cgroup after Kill", left)
		}
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("process %d of h1 survived Kill", pid)
			}
		}
		if h1.Running() {
			t.Error("h1 still running after Kill")
		}
		h1.Restart(t)
		invoke(t, h1)
	})

	t.Run("stop and restart", func(t *testing.T) {
		h1.Stop(t)
		if _, err := h1.Lambda().ListFunctions(ctx, &lambda.ListFunctionsInput{}); err == nil {
			t.Error("stopped h1 still answers")
		}
		h1.Restart(t)
		invoke(t, h1)
	})
}

const helloPy = `def handler(event, context):
    return "hello " + event["name"]
`

func createFunction(t *testing.T, h *testcluster.Host) {
	t.Helper()
	_, err := h.Lambda().CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"),
		Code: &types.FunctionCode{ZipFile: servertest.Zip(t, map[string][]byte{"app.py": []byte(helloPy)})},
	})
	if err != nil {
		t.Fatalf("CreateFunction on %s: %v", h.Name(), err)
	}
}

func invoke(t *testing.T, h *testcluster.Host) {
	t.Helper()
	out, err := h.Lambda().Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String("hello"), Payload: []byte(`{"name": "` + h.Name() + `"}`)})
	if err != nil {
		t.Fatalf("Invoke on %s: %v", h.Name(), err)
	}
	if want := `"hello ` + h.Name() + `"`; out.FunctionError != nil || string(out.Payload) != want {
		t.Fatalf("Invoke on %s = %v %s, want %s", h.Name(), aws.ToString(out.FunctionError), out.Payload, want)
	}
}

// alive reports whether pid runs: it exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestNew_WithoutNamespacesFallsBackToLoopback: where `ip` cannot make
// network namespaces (here: it is not on PATH), the default mode runs the
// hosts on loopback addresses, and says that Partition is unavailable.
func TestNew_WithoutNamespacesFallsBackToLoopback(t *testing.T) {
	goBin, err := exec.LookPath("go") // servertest.Build needs it
	if err != nil {
		t.Skip(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(goBin, filepath.Join(bin, "go")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	c := testcluster.New(t, 2, testcluster.Options{})
	if c.Mode() != testcluster.Loopback {
		t.Fatalf("mode %s, want loopback", c.Mode())
	}
	if want := (testcluster.Capabilities{Kill: true, CPUQuota: true}); c.Capabilities() != want {
		t.Errorf("Capabilities() = %+v, want %+v", c.Capabilities(), want)
	}
	for _, h := range c.Hosts() {
		if ap := netip.MustParseAddrPort(h.Addr()); !ap.Addr().IsLoopback() || h.Netns() != "" {
			t.Errorf("%s at %s in namespace %q, want a loopback address and none", h.Name(), ap, h.Netns())
		}
	}
	c.Host(1).Start(t)
}
