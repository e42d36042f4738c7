package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// deploy creates function name from f (replacing a leftover of that name).
func deploy(ctx context.Context, c *lambda.Client, name string, f *function, memoryMB int32) error {
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Role:         aws.String("arn:aws:iam::000000000000:role/ignis-bench"),
		Runtime:      types.Runtime(f.runtime),
		Handler:      aws.String(f.handler),
		Code:         &types.FunctionCode{ZipFile: f.zip},
		Timeout:      aws.Int32(60),
		MemorySize:   aws.Int32(memoryMB),
	}
	_, err := c.CreateFunction(ctx, in)
	var exists *types.ResourceConflictException
	if errors.As(err, &exists) {
		cleanup(ctx, c, name)
		_, err = c.CreateFunction(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("bench: deploying %s: %w", name, err)
	}
	return nil
}

// cleanup deletes a benchmark function, ignoring errors.
func cleanup(ctx context.Context, c *lambda.Client, name string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, _ = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
}

// payload is a JSON document of exactly size bytes (at least 10).
func payload(size int) []byte {
	size = max(size, 10)
	b := make([]byte, 0, size)
	b = append(b, `{"p":"`...)
	b = append(b, bytes.Repeat([]byte("x"), size-len(b)-2)...)
	return append(b, `"}`...)
}

// invoker sends one request; it returns an error unless the reply is a
// success whose body has the payload's length.
type invoker func(ctx context.Context) error

func lambdaInvoker(c *lambda.Client, name string, body []byte) invoker {
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: body}
	return func(ctx context.Context) error {
		out, err := c.Invoke(ctx, in)
		if err != nil {
			return err
		}
		if out.FunctionError != nil {
			return fmt.Errorf("function error %s: %.200s", *out.FunctionError, out.Payload)
		}
		// Python re-encodes with ", " and ": " separators.
		if d := len(out.Payload) - len(body); d < 0 || d > 4 {
			return fmt.Errorf("echo returned %d bytes, sent %d", len(out.Payload), len(body))
		}
		return nil
	}
}

// loopback is the baseline: a plain net/http echo server and client on
// 127.0.0.1 in this process.
type loopback struct {
	srv    *http.Server
	url    string
	client *http.Client
}

func startLoopback(ctx context.Context) (*loopback, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: loopback baseline: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})}
	go func() { _ = srv.Serve(ln) }()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	return &loopback{srv: srv, url: "http://" + ln.Addr().String() + "/", client: &http.Client{Transport: tr}}, nil
}

func (l *loopback) close() { _ = l.srv.Close() }

func (l *loopback) invoker(body []byte) invoker {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := l.client.Do(req)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || n != int64(len(body)) {
			return fmt.Errorf("loopback: status %d, %d bytes", resp.StatusCode, n)
		}
		return nil
	}
}

// load is the outcome of a closed-loop run.
type load struct {
	lat     []time.Duration // sorted
	elapsed time.Duration
	errors  int
	sample  error // the first error, if any
}

func (l load) stats() Latency {
	if len(l.lat) == 0 {
		return Latency{}
	}
	q := func(p float64) time.Duration { return l.lat[min(len(l.lat)-1, int(p*float64(len(l.lat))))] }
	return Latency{
		Requests: len(l.lat),
		Errors:   l.errors,
		P50:      us(q(0.50)), P90: us(q(0.90)), P99: us(q(0.99)),
		PerSec: float64(len(l.lat)) / l.elapsed.Seconds(),
	}
}

// closedLoop runs conc workers, each sending requests back to back, for d
// (after warm requests per worker that are not measured). Worker
// goroutines carry the clientLabel pprof label.
func closedLoop(ctx context.Context, conc int, d time.Duration, warm int, do invoker) (load, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		lats  [][]time.Duration
		first error
		wg    sync.WaitGroup
		ready sync.WaitGroup
		stop  atomic.Bool
		nerr  atomic.Int64
		serr  error
	)
	startGate := make(chan struct{})
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	for range conc {
		wg.Add(1)
		ready.Add(1)
		go pprof.Do(ctx, pprof.Labels(clientLabel, "client"), func(ctx context.Context) {
			defer wg.Done()
			for range warm {
				if err := do(ctx); err != nil {
					ready.Done()
					fail(err)
					return
				}
			}
			ready.Done()
			<-startGate
			local := make([]time.Duration, 0, 4096)
			for !stop.Load() && ctx.Err() == nil {
				t0 := time.Now()
				if err := do(ctx); err != nil {
					if ctx.Err() != nil {
						break
					}
					// Counted, not fatal: one failed request must not void
					// a run; the report shows the count.
					if nerr.Add(1) == 1 {
						mu.Lock()
						serr = err
						mu.Unlock()
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local)
			mu.Unlock()
		})
	}
	ready.Wait()
	t0 := time.Now()
	close(startGate)
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	if first != nil {
		return load{}, first
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	l := load{lat: all, elapsed: elapsed, errors: int(nerr.Load()), sample: serr}
	if l.errors > 0 && l.errors*100 > len(all) {
		return l, fmt.Errorf("%d of %d requests failed, first: %w", l.errors, l.errors+len(all), serr)
	}
	return l, nil
}

// warmPoint measures one (runtime, payload, concurrency) point and the
// loopback baseline right before it.
func (r *runner) warmPoint(ctx context.Context, t *Target, driver, name, kind string, size, conc int) (WarmPoint, error) {
	body := payload(size)
	p := WarmPoint{Driver: driver, Runtime: kind, PayloadBytes: size, Concurrency: conc}
	base, err := closedLoop(ctx, conc, r.cfg.PointDuration, 20, r.loop.invoker(body))
	if err != nil {
		return p, fmt.Errorf("bench: loopback baseline: %w", err)
	}
	p.Baseline = base.stats()

	// A client of its own: its connections are dialed by the labelled
	// workers below, so their read and write loops carry the client label
	// too (an idle connection left by deploy would count as server CPU).
	do := lambdaInvoker(newLambdaClient(t), name, body)
	// Warm-up: conc sandboxes exist and every connection is open.
	if _, err := closedLoop(ctx, conc, 10*time.Millisecond, 5, do); err != nil {
		return p, fmt.Errorf("bench: warming %s: %w", name, err)
	}
	cpu := r.cpuProbe(t, kind, size, conc, driver)
	res, err := closedLoop(ctx, conc, r.cfg.PointDuration, 3, do)
	if err != nil {
		cpu.stop()
		return p, fmt.Errorf("bench: invoking %s: %w", name, err)
	}
	p.Ignis = res.stats()
	if res.sample != nil {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%s %s echo %d B c=%d: %d failed requests, first: %v", driver, kind, size, conc, res.errors, res.sample))
	}
	p.CPU = cpu.finish(len(res.lat))
	p.Ratio = Ratios{
		P50: ratio(p.Ignis.P50, p.Baseline.P50), P90: ratio(p.Ignis.P90, p.Baseline.P90),
		P99: ratio(p.Ignis.P99, p.Baseline.P99), PerSec: ratio(p.Ignis.PerSec, p.Baseline.PerSec),
	}
	return p, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// cpuMeter measures CPU per invoke over one run, split into the server
// process (without the load generator's labelled goroutines), the agents
// and the functions.
type cpuMeter struct {
	on         bool
	selfBefore time.Duration
	procs      map[int]procRole
	prof       *bytes.Buffer
	profiling  bool
	profPath   string
	allocsPath string
}

// cpuProbe starts a meter for the Go echo 100 B runs at concurrency 1 and
// the highest concurrency of an in-process server; others get a no-op.
func (r *runner) cpuProbe(t *Target, kind string, size, conc int, driver string) *cpuMeter {
	m := &cpuMeter{}
	if !t.InProcess || kind != RuntimeGo || size != r.cfg.Payloads[0] || (conc != 1 && conc != slices.Max(r.cfg.Concurrency)) {
		return m
	}
	m.on = true
	if r.cfg.ProfileDir != "" {
		_ = os.MkdirAll(r.cfg.ProfileDir, 0o755)
		base := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("%s-go-%dB-c%d", driver, size, conc))
		m.profPath, m.allocsPath = base+".cpu.pprof", base+".allocs.pprof"
		writeAllocs(base + ".allocs-before.pprof")
	}
	m.prof = &bytes.Buffer{}
	m.profiling = pprof.StartCPUProfile(m.prof) == nil
	m.procs = labelledDescendants()
	m.selfBefore = selfCPU()
	return m
}

func (m *cpuMeter) stop() {
	if m.profiling {
		pprof.StopCPUProfile()
		m.profiling = false
	}
}

func (m *cpuMeter) finish(invokes int) *CPU {
	if !m.on || invokes == 0 {
		return nil
	}
	self := selfCPU() - m.selfBefore
	sub := cpuDelta(m.procs, labelledDescendants())
	m.stop()
	out := &CPU{Invokes: invokes, ProcessMs: ms(self) / float64(invokes)}
	if m.prof != nil && m.prof.Len() > 0 {
		if lab, tot, err := labelledShare(m.prof.Bytes(), clientLabel); err == nil && tot > 0 {
			out.ClientShare = float64(lab) / float64(tot)
		}
		if m.profPath != "" {
			_ = os.WriteFile(m.profPath, m.prof.Bytes(), 0o644)
			writeAllocs(m.allocsPath)
		}
	}
	out.ServerMs = out.ProcessMs * (1 - out.ClientShare)
	out.ClientMs = out.ProcessMs - out.ServerMs
	out.AgentMs = ms(sub[roleAgent]) / float64(invokes)
	out.HelperMs = ms(sub[roleHelper]) / float64(invokes)
	out.FunctionMs = ms(sub[roleFunction]) / float64(invokes)
	out.PlatformMs = out.ServerMs + out.AgentMs + out.HelperMs
	return out
}

// labelledDescendants walks /proc under the load generator's label, so the
// walk does not count as server CPU in the profile.
func labelledDescendants() (out map[int]procRole) {
	pprof.Do(context.Background(), pprof.Labels(clientLabel, "meter"), func(context.Context) {
		out = descendants(os.Getpid())
	})
	return out
}

func writeAllocs(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	runtime.GC()
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
