package server_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/placement/fleet"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// TestServer_Close_LeavesNothing: a graceful Close destroys every sandbox
// (no process, no cgroup holding one) and removes the worker from the
// fleet at once, rather than leaving its registration to expire.
func TestServer_Close_LeavesNothing(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	ctx := context.Background()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Compute.Sandbox = server.SandboxJail
	cfg.Compute.WorkerID = fmt.Sprintf("closetest-%d", os.Getpid())
	worker := cfg.Compute.WorkerID

	s := start(t, cfg)
	c := client(s)
	createSleeper(t, c, "close")
	// Two invokes at once: two sandboxes, idle when Close comes.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("close"), Payload: []byte(`{"sleep": 1}`)})
			if err != nil || out.FunctionError != nil {
				t.Errorf("invoke: %v %v %s", err, out.FunctionError, out.Payload)
			}
		})
	}
	wg.Wait()
	if len(cgroupsOf(worker)) == 0 {
		t.Fatal("found no sandbox cgroups with processes after two invokes")
	}

	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := cgroupsOf(worker); len(left) > 0 {
		t.Errorf("sandbox cgroups still holding processes after Close: %v", left)
	}

	// Well within the registration's TTL, the worker is gone from the
	// fleet: a server started on the same data reads it.
	cfg2 := cfg
	cfg2.Compute.WorkerID = worker + "-2"
	cfg2.NATSListen = servertest.FreeAddr(t)
	s2 := start(t, cfg2)
	creds, _ := s2.Credentials()
	nc, err := nats.Connect("nats://"+cfg2.NATSListen, nats.UserInfo(creds.AccessKeyID, creds.SecretAccessKey))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := fleet.Open(ctx, js, fleet.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.Get(ctx, worker); !errdefs.IsNotFound(err) {
		t.Errorf("fleet.Get(%s) after Close = %v, want not found", worker, err)
	}
	if _, err := fl.Get(ctx, cfg2.Compute.WorkerID); err != nil {
		t.Errorf("fleet.Get(%s) of the running server: %v", cfg2.Compute.WorkerID, err)
	}
}
