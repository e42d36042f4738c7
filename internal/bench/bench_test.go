package bench

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the jail driver re-executes this binary as its setup stage
	os.Exit(m.Run())
}

// TestLambdaGoPin keeps the Go echo's pinned aws-lambda-go in step with
// the Ignis module, so that it builds from the same module cache.
func TestLambdaGoPin(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), lambdaGoModule+" "+lambdaGoVersion+" ") && !strings.Contains(string(mod), lambdaGoModule+" "+lambdaGoVersion+"\n") {
		t.Errorf("go.mod does not require %s %s: update lambdaGoVersion and lambdaGoSum", lambdaGoModule, lambdaGoVersion)
	}
	sum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(lambdaGoSum), "\n") {
		if !strings.Contains(string(sum), l+"\n") {
			t.Errorf("go.sum lacks %q: update lambdaGoSum", l)
		}
	}
}

func TestLabelledShare(t *testing.T) {
	// Covered end to end by the cli test; here only the empty profile.
	if _, _, err := labelledShare(nil, clientLabel); err == nil {
		t.Fatal("decoding an empty profile succeeded")
	}
}

func TestPayload(t *testing.T) {
	for _, n := range []int{10, 100, 64 << 10} {
		if got := len(payload(n)); got != n {
			t.Errorf("payload(%d) has %d bytes", n, got)
		}
	}
}

// BenchmarkInvoke_InProcess is the whole warm path in one process: the
// aws-sdk-go-v2 client signs and sends an Invoke over loopback HTTP to a
// real server (frontend, registry, assignment, worker), which runs it in a
// jail sandbox holding the Go echo. allocs/op counts client and server.
func BenchmarkInvoke_InProcess(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("sandboxes need root")
	}
	ctx := context.Background()
	fns, err := buildFunctions(ctx, b.TempDir(), []string{RuntimeGo})
	if err != nil {
		b.Fatal(err)
	}
	s := servertest.Start(b, "", func(c *server.Config) { c.Compute.Sandbox = server.SandboxJail })
	c := newLambdaClient(&Target{Endpoint: s.Endpoint(), AccessKeyID: servertest.AccessKeyID, SecretAccessKey: servertest.SecretAccessKey})
	if err := deploy(ctx, c, "bench-go", fns[0], 1769); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{100, 64 << 10} {
		b.Run(size2name(size), func(b *testing.B) {
			do := lambdaInvoker(c, "bench-go", payload(size))
			if err := do(ctx); err != nil { // cold start
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := do(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	_, _ = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("bench-go")})
}

func size2name(n int) string { return strings.ReplaceAll(size(n), " ", "") }

func TestCompareCold(t *testing.T) {
	r := &Report{Cold: []ColdStart{
		{Driver: "native", Runtime: "go", TotalMs: 30, Phases: &Phases{SandboxCreateMs: 12, RuntimeInitMs: 15, FirstResponseMs: 2}},
		{Driver: "jail", Runtime: "go", TotalMs: 41, Phases: &Phases{PlacementMs: 2, SandboxCreateMs: 18, RuntimeInitMs: 16, FirstResponseMs: 3}},
		{Driver: "gvisor", Runtime: "python", TotalMs: 300},
	}}
	r.compareCold()
	if r.Cold[0].Driver != "jail" || r.Cold[1].Driver != "gvisor" || r.Cold[2].Driver != "native" {
		t.Fatalf("order %s %s %s, want the native row last", r.Cold[0].Driver, r.Cold[1].Driver, r.Cold[2].Driver)
	}
	b := r.Cold[0].BeyondNative
	if b == nil || b.TotalMs != 11 || b.DriverMs != 8 {
		t.Fatalf("jail go beyond native = %+v, want total 11, driver 8", b)
	}
	if r.Cold[1].BeyondNative != nil || r.Cold[2].BeyondNative != nil {
		t.Fatalf("a start without a native one, or a native one, got a comparison: %+v", r.Cold)
	}
	var sb strings.Builder
	if err := r.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "+11.0") || !strings.Contains(sb.String(), "+8.0") {
		t.Fatalf("table lacks the comparison:\n%s", sb.String())
	}
}
