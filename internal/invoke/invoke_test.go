package invoke_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the jail driver re-executes this binary as its setup stage
	os.Exit(m.Run())
}

const role = "arn:aws:iam::000000000000:role/test"

func newServer(t *testing.T) *servertest.Server {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	return servertest.Start(t, "", func(c *server.Config) { c.Compute.Sandbox = server.SandboxJail })
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pyZip(t *testing.T) []byte {
	return servertest.Zip(t, map[string][]byte{"app.py": readFile(t, "testdata/py/app.py")})
}

var (
	goOnce sync.Once
	goBin  []byte
	goErr  error
)

func goZip(t *testing.T) []byte {
	t.Helper()
	goOnce.Do(func() {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("ignis-goecho-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", out, "./testdata/goecho")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			goErr = fmt.Errorf("building goecho: %v: %s", err, b)
			return
		}
		goBin, goErr = os.ReadFile(out)
		os.Remove(out)
	})
	if goErr != nil {
		t.Fatal(goErr)
	}
	return servertest.Zip(t, map[string][]byte{"bootstrap": goBin})
}

type fnOpts struct {
	runtime, handler string
	zip              []byte
	timeout, memory  int32
	env              map[string]string
}

func create(t *testing.T, s *servertest.Server, name string, o fnOpts) {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 10
	}
	if o.memory == 0 {
		o.memory = 128
	}
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Role:         aws.String(role),
		Runtime:      types.Runtime(o.runtime),
		Handler:      aws.String(o.handler),
		Code:         &types.FunctionCode{ZipFile: o.zip},
		Timeout:      aws.Int32(o.timeout),
		MemorySize:   aws.Int32(o.memory),
	}
	if o.env != nil {
		in.Environment = &types.Environment{Variables: o.env}
	}
	if _, err := s.Lambda.CreateFunction(context.Background(), in); err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
}

func createPy(t *testing.T, s *servertest.Server, name string, timeout, memory int32) {
	create(t, s, name, fnOpts{runtime: "python3.11", handler: "app.handler", zip: pyZip(t), timeout: timeout, memory: memory})
}

type pyOut struct {
	Sandbox       string          `json:"sandbox"`
	Calls         int             `json:"calls"`
	Start         float64         `json:"start"`
	End           float64         `json:"end"`
	RequestID     string          `json:"request_id"`
	FunctionName  string          `json:"function_name"`
	Version       string          `json:"function_version"`
	MemoryLimit   int             `json:"memory_limit_in_mb"`
	InvokedArn    string          `json:"invoked_arn"`
	Greeting      string          `json:"greeting"`
	Event         json.RawMessage `json:"event"`
	ClientContext bool            `json:"client_context"`
}

func invoke(t *testing.T, s *servertest.Server, in *lambda.InvokeInput) *lambda.InvokeOutput {
	t.Helper()
	out, err := s.Lambda.Invoke(context.Background(), in)
	if err != nil {
		t.Fatalf("invoke %s: %v", aws.ToString(in.FunctionName), err)
	}
	return out
}

func invokePy(t *testing.T, s *servertest.Server, name, payload string) pyOut {
	t.Helper()
	out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)})
	if out.FunctionError != nil {
		t.Fatalf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	var o pyOut
	if err := json.Unmarshal(out.Payload, &o); err != nil {
		t.Fatalf("decoding %s: %v", out.Payload, err)
	}
	return o
}

func TestInvoke_Runtimes(t *testing.T) {
	s := newServer(t)
	create(t, s, "rt-py", fnOpts{runtime: "python3.11", handler: "app.handler", zip: pyZip(t), memory: 192, env: map[string]string{"GREETING": "hi"}})
	create(t, s, "rt-node", fnOpts{runtime: "nodejs20.x", handler: "index.handler", zip: servertest.Zip(t, map[string][]byte{"index.mjs": readFile(t, "testdata/node/index.mjs")})})
	create(t, s, "rt-go", fnOpts{runtime: "provided.al2023", handler: "bootstrap", zip: goZip(t)})

	t.Run("python", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("rt-py"), Payload: []byte(`{"k":"v"}`)})
		if out.FunctionError != nil || out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" {
			t.Fatalf("status %d, error %v, version %v: %s", out.StatusCode, out.FunctionError, out.ExecutedVersion, out.Payload)
		}
		var o pyOut
		if err := json.Unmarshal(out.Payload, &o); err != nil {
			t.Fatal(err)
		}
		if o.FunctionName != "rt-py" || o.MemoryLimit != 192 || o.Greeting != "hi" || string(o.Event) != `{"k": "v"}` && string(o.Event) != `{"k":"v"}` || o.RequestID == "" {
			t.Fatalf("unexpected context: %+v", o)
		}
		if !strings.HasSuffix(o.InvokedArn, ":function:rt-py") {
			t.Errorf("invoked arn = %q", o.InvokedArn)
		}
	})
	t.Run("node", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("rt-node"), Payload: []byte(`{"k":"v"}`)})
		var o struct {
			Event     map[string]string `json:"event"`
			Fn        string            `json:"fn"`
			Mem       int               `json:"mem"`
			Remaining int               `json:"remaining"`
		}
		if err := json.Unmarshal(out.Payload, &o); err != nil || out.FunctionError != nil {
			t.Fatalf("%v %v: %s", err, out.FunctionError, out.Payload)
		}
		if o.Event["k"] != "v" || o.Fn != "rt-node" || o.Mem != 128 || o.Remaining <= 0 || o.Remaining > 10000 {
			t.Fatalf("unexpected: %+v", o)
		}
	})
	t.Run("go", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("rt-go"), Payload: []byte(`{"k":"v"}`)})
		var o struct {
			Event map[string]string `json:"event"`
			Fn    string            `json:"fn"`
		}
		if err := json.Unmarshal(out.Payload, &o); err != nil || out.FunctionError != nil {
			t.Fatalf("%v %v: %s", err, out.FunctionError, out.Payload)
		}
		if o.Event["k"] != "v" || o.Fn != "rt-go" {
			t.Fatalf("unexpected: %+v", o)
		}
	})
}

func TestInvoke_WarmReuse(t *testing.T) {
	s := newServer(t)
	createPy(t, s, "warm", 10, 128)
	a := invokePy(t, s, "warm", `{}`)
	b := invokePy(t, s, "warm", `{}`)
	if a.Sandbox != b.Sandbox || b.Calls != a.Calls+1 {
		t.Fatalf("second invoke ran in sandbox %s (calls %d), first in %s (calls %d)", b.Sandbox, b.Calls, a.Sandbox, a.Calls)
	}
	if a.RequestID == b.RequestID {
		t.Fatal("two invokes shared a request id")
	}
}

func TestInvoke_ParallelOnSeparateSandboxes(t *testing.T) {
	s := newServer(t)
	createPy(t, s, "par", 10, 128)
	const n = 4
	outs := make([]pyOut, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = invokePy(t, s, "par", `{"sleep": 1}`)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	latestStart, earliestEnd := 0.0, outs[0].End
	for _, o := range outs {
		seen[o.Sandbox] = true
		latestStart = max(latestStart, o.Start)
		earliestEnd = min(earliestEnd, o.End)
	}
	if len(seen) != n {
		t.Fatalf("%d concurrent invokes ran in %d sandboxes", n, len(seen))
	}
	if latestStart >= earliestEnd {
		t.Fatalf("invokes did not overlap: latest start %.3f, earliest end %.3f", latestStart, earliestEnd)
	}
}

func TestInvoke_WeightedAlias(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	createPy(t, s, "canary", 10, 128)
	for i, g := range []string{"one", "two"} {
		if _, err := s.Lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("canary"), Environment: &types.Environment{Variables: map[string]string{"GREETING": g}},
		}); err != nil {
			t.Fatal(err)
		}
		v, err := s.Lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("canary")})
		if err != nil || aws.ToString(v.Version) != fmt.Sprint(i+1) {
			t.Fatalf("publish: %v %v", err, v)
		}
	}
	if _, err := s.Lambda.CreateAlias(ctx, &lambda.CreateAliasInput{
		FunctionName: aws.String("canary"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.3}},
	}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	counts := map[string]int{}
	for range n {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("canary"), Qualifier: aws.String("live"), Payload: []byte(`{}`)})
		var o pyOut
		if err := json.Unmarshal(out.Payload, &o); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"1": "one", "2": "two"}[aws.ToString(out.ExecutedVersion)]
		if o.Greeting != want || o.Version != aws.ToString(out.ExecutedVersion) {
			t.Fatalf("executed version %s ran config %q (version %s)", aws.ToString(out.ExecutedVersion), o.Greeting, o.Version)
		}
		counts[o.Version]++
	}
	// Binomial(200, 0.3): mean 60, sd 6.5; ±4 sd.
	if c := counts["2"]; c < 34 || c > 86 {
		t.Fatalf("version 2 got %d of %d invokes, want about 60", c, n)
	}
}

func TestInvoke_FunctionErrors(t *testing.T) {
	s := newServer(t)
	createPy(t, s, "errs", 1, 128)
	tests := []struct {
		name, payload, errorType, contains string
	}{
		{"unhandled_exception", `{"raise":"bad"}`, "ValueError", "asked to fail: bad"},
		{"timeout", `{"sleep":3}`, "Sandbox.Timedout", "Task timed out after 1.0"},
		{"crash", `{"exit":3}`, "Runtime.ExitError", "exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("errs"), Payload: []byte(tt.payload)})
			if aws.ToString(out.FunctionError) != "Unhandled" || out.StatusCode != 200 {
				t.Fatalf("status %d, function error %v: %s", out.StatusCode, out.FunctionError, out.Payload)
			}
			var e struct{ ErrorType, ErrorMessage string }
			if err := json.Unmarshal(out.Payload, &e); err != nil {
				t.Fatal(err)
			}
			if e.ErrorType != tt.errorType || !strings.Contains(e.ErrorMessage, tt.contains) {
				t.Fatalf("error %+v, want type %s containing %q", e, tt.errorType, tt.contains)
			}
			// The platform stays healthy: the next invoke works.
			invokePy(t, s, "errs", `{}`)
		})
	}
}

// TestInvoke_OutOfMemory: under either driver, a 128 MB function that
// asks for 400 MB, at once or a megabyte at a time, fails with
// Runtime.OutOfMemory, its REPORT line's Max Memory Used is at most 128 MB,
// and the next invoke runs in a new environment.
func TestInvoke_OutOfMemory(t *testing.T) {
	for _, drv := range []string{server.SandboxJail, server.SandboxGVisor} {
		t.Run(drv, func(t *testing.T) {
			if os.Getuid() != 0 {
				t.Skip("sandboxes need root")
			}
			if _, err := exec.LookPath("runsc"); err != nil && drv == server.SandboxGVisor {
				t.Skipf("runsc not installed: %v", err)
			}
			s := servertest.Start(t, "", func(c *server.Config) { c.Compute.Sandbox = drv })
			createPy(t, s, "oom", 30, 128)
			before := invokePy(t, s, "oom", `{}`)
			for _, payload := range []string{`{"alloc_mb":400}`, `{"grow_mb":400}`} {
				out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("oom"), Payload: []byte(payload), LogType: types.LogTypeTail})
				var e struct{ ErrorType, ErrorMessage string }
				if err := json.Unmarshal(out.Payload, &e); err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.FunctionError) != "Unhandled" || e.ErrorType != "Runtime.OutOfMemory" || !strings.Contains(e.ErrorMessage, "Runtime exited with error: signal: killed") {
					t.Fatalf("%s: function error %v: %+v, want Runtime.OutOfMemory", payload, out.FunctionError, e)
				}
				raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
				if err != nil {
					t.Fatal(err)
				}
				var used int
				if i := strings.Index(string(raw), "Max Memory Used: "); i < 0 {
					t.Fatalf("%s: no Max Memory Used in the log tail:\n%s", payload, raw)
				} else if _, err := fmt.Sscanf(string(raw[i:]), "Max Memory Used: %d MB", &used); err != nil || used > 128 || used < 100 {
					t.Errorf("%s: Max Memory Used: %d MB (%v), want 100-128:\n%s", payload, used, err, raw)
				}
				after := invokePy(t, s, "oom", `{}`)
				if after.Sandbox == before.Sandbox {
					t.Errorf("%s: the next invoke ran in the environment that ran out of memory", payload)
				}
				before = after
			}
		})
	}
}

func TestInvoke_Throttling(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	createPy(t, s, "thr", 10, 128)
	if _, err := s.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("thr"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("thr"), Payload: []byte(`{}`)})
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Fatalf("reserved 0: err = %v, want TooManyRequestsException with reason ReservedFunctionConcurrentInvocationLimitExceeded", err)
	}

	// Reserved 1: while one invoke runs, a second is throttled.
	if _, err := s.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("thr"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	// The slow invoke retries until it holds the only slot; meanwhile the
	// probes below must be throttled at least once.
	done := make(chan error)
	go func() {
		for {
			_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("thr"), Payload: []byte(`{"sleep":2}`)})
			var tm *types.TooManyRequestsException
			if !errors.As(err, &tm) {
				done <- err
				return
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err = s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("thr"), Payload: []byte(`{}`)})
		if errors.As(err, &tm) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Fatalf("reserved 1 with one in flight: err = %v, want a throttle", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("slow invoke: %v", err)
	}
}

// A reservation set through a server applies to that server's very next
// invoke: the invoke path waits for the registry watch to deliver the
// revision it wrote (read-your-writes), instead of racing it.
func TestInvoke_ReservationReadYourWrites(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	createPy(t, s, "ryw", 10, 128)
	invokePy(t, s, "ryw", `{}`) // a warm sandbox, so allowed invokes are quick
	for i := range 25 {
		if _, err := s.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("ryw"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ryw"), Payload: []byte(`{}`)})
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) {
			t.Fatalf("round %d: invoke right after reserving 0: err = %v, want a throttle", i, err)
		}
		if _, err := s.Lambda.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("ryw")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ryw"), Payload: []byte(`{}`)}); err != nil {
			t.Fatalf("round %d: invoke right after deleting the reservation: %v", i, err)
		}
	}
}

// TestInvoke_AccountLimit fills the account's unreserved pool (100, the
// smallest AWS allows) with slow invokes; one more is throttled with
// ConcurrentInvocationLimitExceeded while a function with its own
// reservation still runs.
func TestInvoke_AccountLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	s := servertest.Start(t, "", func(c *server.Config) {
		c.Compute.Sandbox = server.SandboxJail
		c.AccountConcurrency = 101
	})
	ctx := context.Background()
	create(t, s, "pool", fnOpts{runtime: "provided.al2023", handler: "bootstrap", zip: goZip(t), timeout: 60})
	create(t, s, "reserved", fnOpts{runtime: "provided.al2023", handler: "bootstrap", zip: goZip(t)})
	if _, err := s.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("reserved"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	const pool = 100 // 101 minus the one reserved
	var wg sync.WaitGroup
	errs := make(chan error, pool)
	for range pool {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each holds its slot long enough for the test to see the throttle.
			out, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pool"), Payload: []byte(`{"sleep_ms": 5000}`)})
			if err == nil && out.FunctionError != nil {
				err = fmt.Errorf("function error: %s", out.Payload)
			}
			errs <- err
		}()
	}
	defer wg.Wait()

	deadline := time.Now().Add(90 * time.Second)
	for s.InFlight("pool") < pool {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d slow invokes in flight", s.InFlight("pool"), pool)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pool"), Payload: []byte(`{}`)})
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) {
		t.Fatalf("invoke with the pool full: err = %v, want TooManyRequestsException", err)
	}
	if tm.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded {
		t.Fatalf("reason = %s, want ConcurrentInvocationLimitExceeded", tm.Reason)
	}
	// The reservation is not part of the exhausted pool.
	if out, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("reserved"), Payload: []byte(`{}`)}); err != nil || out.FunctionError != nil {
		t.Fatalf("reserved function while the pool is full: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("pool invoke: %v", err)
		}
	}
}

func TestInvoke_Limits(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	createPy(t, s, "lim", 10, 256)

	t.Run("request_too_large", func(t *testing.T) {
		big := append(append([]byte(`"`), bytes.Repeat([]byte("a"), 6*1024*1024)...), '"')
		_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("lim"), Payload: big})
		var tl *types.RequestTooLargeException
		if !errors.As(err, &tl) {
			t.Fatalf("err = %v, want RequestTooLargeException", err)
		}
	})
	t.Run("response_too_large", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("lim"), Payload: []byte(`{"big_mb":7}`)})
		if aws.ToString(out.FunctionError) != "Unhandled" || !bytes.Contains(out.Payload, []byte("Function.ResponseSizeTooLarge")) {
			t.Fatalf("function error %v: %.200s", out.FunctionError, out.Payload)
		}
	})
	t.Run("invalid_json", func(t *testing.T) {
		_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("lim"), Payload: []byte(`{nope`)})
		var ic *types.InvalidRequestContentException
		if !errors.As(err, &ic) {
			t.Fatalf("err = %v, want InvalidRequestContentException", err)
		}
	})
	t.Run("dry_run", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("lim"), InvocationType: types.InvocationTypeDryRun})
		if out.StatusCode != 204 {
			t.Fatalf("status %d, want 204", out.StatusCode)
		}
	})
	t.Run("unknown_function", func(t *testing.T) {
		_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), Payload: []byte(`{}`)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("err = %v, want ResourceNotFoundException", err)
		}
	})
	t.Run("tail", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("lim"), Payload: []byte(`{"print":"tail-marker-42"}`), LogType: types.LogTypeTail})
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if err != nil {
			t.Fatal(err)
		}
		log := string(raw)
		if !strings.Contains(log, "tail-marker-42") || !strings.Contains(log, "\nREPORT RequestId: ") || !strings.Contains(log, "START RequestId: ") {
			t.Fatalf("log tail missing marker or START/REPORT:\n%s", log)
		}
	})
	t.Run("client_context", func(t *testing.T) {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"a":"b"}}`))
		o := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("lim"), Payload: []byte(`{}`), ClientContext: aws.String(cc)})
		var p pyOut
		if err := json.Unmarshal(o.Payload, &p); err != nil || !p.ClientContext {
			t.Fatalf("client context not delivered: %v %s", err, o.Payload)
		}
	})
}

// TestInvoke_ExactlyOnce fires 500 invokes at concurrency 16 and checks that
// every request id ran exactly once.
func TestInvoke_ExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	s := newServer(t)
	create(t, s, "once", fnOpts{runtime: "provided.al2023", handler: "bootstrap", zip: goZip(t)})
	const total, conc = 500, 16
	var mu sync.Mutex
	ran := map[string]int{}
	var wg sync.WaitGroup
	work := make(chan int)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out, err := s.Lambda.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("once"), Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))})
				if err != nil || out.FunctionError != nil {
					t.Errorf("invoke %d: %v %v", i, err, out)
					continue
				}
				var o struct {
					RequestID string `json:"request_id"`
					Event     struct{ I int }
				}
				if err := json.Unmarshal(out.Payload, &o); err != nil || o.Event.I != i {
					t.Errorf("invoke %d got %s", i, out.Payload)
					continue
				}
				mu.Lock()
				ran[o.RequestID]++
				mu.Unlock()
			}
		}()
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(ran) != total {
		t.Fatalf("%d distinct request ids ran, want %d", len(ran), total)
	}
	for id, n := range ran {
		if n != 1 {
			t.Fatalf("request %s ran %d times", id, n)
		}
	}

	// The logs must show one START per request id: a retried invoke would
	// run twice under the same id.
	starts := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		clear(starts)
		var token *string
		for {
			page, err := s.Logs.FilterLogEvents(context.Background(), &cloudwatchlogs.FilterLogEventsInput{
				LogGroupName: aws.String("/aws/lambda/once"), FilterPattern: aws.String(`"START RequestId"`), NextToken: token,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				f := strings.Fields(aws.ToString(e.Message))
				if len(f) >= 3 {
					starts[f[2]]++
				}
			}
			if token = page.NextToken; token == nil {
				break
			}
		}
		if len(starts) >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for id := range ran {
		if starts[id] != 1 {
			t.Fatalf("request %s has %d START lines in its log, want 1", id, starts[id])
		}
	}
	if len(starts) != total {
		t.Fatalf("%d request ids in the log, want %d", len(starts), total)
	}
}
