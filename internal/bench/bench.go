package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ignis-run/ignis/internal/rawio"
)

// Target is an Ignis API endpoint to measure.
type Target struct {
	Endpoint                     string
	AccessKeyID, SecretAccessKey string
	Region                       string
	// Driver names the sandbox driver behind the endpoint ("" if unknown).
	Driver string
	// InProcess is true when the server runs in this process (--embedded):
	// server CPU and memory are then read from /proc/self and the
	// sandboxes are this process's descendants.
	InProcess bool
	// Phases receives the worker's cold start records (embedded only).
	Phases *PhaseRecorder
	// Close stops an embedded server; nil for a remote endpoint.
	Close func(context.Context) error
}

// EmbeddedOptions is what Run needs from an embedded server.
type EmbeddedOptions struct {
	// Driver is the sandbox driver (jail or gvisor).
	Driver string
	// WorkerMemoryMB and AccountConcurrency are the minimum capacity and
	// concurrency the fleet measurements need.
	WorkerMemoryMB     int
	AccountConcurrency int
	// Log is the handler the server must log through (a PhaseRecorder
	// around the caller's handler).
	Log slog.Handler
}

// Starter starts an embedded server (internal/cli builds it from
// internal/server, the composition root).
type Starter func(ctx context.Context, o EmbeddedOptions) (*Target, error)

// Config configures a benchmark run.
type Config struct {
	// Remote is the endpoint to measure; nil with Start set means embedded.
	Remote *Target
	// Start starts an embedded server per driver in Drivers.
	Start   Starter
	Drivers []string
	// Runtimes are the benchmark functions: go, python, node.
	Runtimes []string
	// Concurrency and Payloads span the warm matrix.
	Concurrency []int
	Payloads    []int
	// PointDuration is how long each warm point (and its baseline) runs.
	PointDuration time.Duration
	// ColdSamples is the number of cold starts per runtime.
	ColdSamples int
	// ColdGap is the pause before each cold start, so that it finds the
	// worker idle, as a cold start usually does: the sandboxes and stages
	// the previous one set in motion are done. 0 runs them back to back (a
	// burst, where each start also pays for its predecessor's refill).
	ColdGap time.Duration
	// CreateN sandboxes are created at once for the creation rate; IdleN
	// idle sandboxes are held for the density (scaled down to fit memory).
	CreateN, IdleN int
	// MemoryMB is the MemorySize of every benchmark function. The default,
	// 1769 MB, is one vCPU on Lambda and in Ignis's CPU quota; at 128 MB a
	// sandbox gets 0.1 CPU and the quota, not the platform, sets the pace.
	MemoryMB int
	// ProfileDir, when set, receives CPU and alloc profiles of the Go echo
	// 100 B runs at concurrency 1 and 16 (embedded only).
	ProfileDir string
	// AgentBinary runs the native cold starts; "" locates or builds it.
	AgentBinary string
	// WorkDir holds build output; "" uses a temp dir.
	WorkDir string
	// Log handler for the embedded servers (warnings); nil discards.
	Log slog.Handler
	// Progress, when set, receives one line per step.
	Progress func(string)
}

// DefaultConfig is a full run.
func DefaultConfig() Config {
	return Config{
		Drivers:       []string{"jail"},
		Runtimes:      []string{RuntimeGo, RuntimePython, RuntimeNode},
		Concurrency:   []int{1, 4, 16},
		Payloads:      []int{100, 64 << 10},
		PointDuration: 3 * time.Second,
		ColdSamples:   5,
		ColdGap:       300 * time.Millisecond,
		CreateN:       200,
		IdleN:         500,
		MemoryMB:      1769,
	}
}

// Quick shortens c for a smoke run (seconds, not minutes).
func (c *Config) Quick() {
	c.PointDuration = 250 * time.Millisecond
	c.ColdSamples = 1
	c.CreateN = 8
	c.IdleN = 12
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Remote == nil && c.Start == nil:
		return errors.New("bench: an endpoint or an embedded server is required")
	case c.Remote != nil && c.Remote.Endpoint == "":
		return errors.New("bench: the endpoint URL is empty")
	case c.Remote != nil && (c.Remote.AccessKeyID == "" || c.Remote.SecretAccessKey == ""):
		return errors.New("bench: credentials are required for a remote endpoint (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IGNIS_* or --data)")
	case len(c.Runtimes) == 0 || len(c.Concurrency) == 0 || len(c.Payloads) == 0:
		return errors.New("bench: runtimes, concurrency and payloads must not be empty")
	case c.MemoryMB < 128:
		return fmt.Errorf("bench: memory %d MB is below Lambda's 128 MB minimum", c.MemoryMB)
	case c.PointDuration <= 0 || c.ColdSamples < 0 || c.ColdGap < 0 || c.CreateN < 0 || c.IdleN < 0:
		return errors.New("bench: durations and counts must not be negative")
	}
	for _, n := range c.Concurrency {
		if n < 1 {
			return fmt.Errorf("bench: concurrency %d must be at least 1", n)
		}
	}
	return nil
}

// runner carries one run's shared state.
type runner struct {
	cfg   Config
	fns   []*function
	loop  *loopback
	runID string
	rep   *Report
	idle  int // IdleN scaled to memory, once per run (0: not yet)
}

// Run measures and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.DiscardHandler
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	work := cfg.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "ignis-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(d)
		work = d
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	r := &runner{cfg: cfg, runID: hex.EncodeToString(id), rep: newReport(cfg)}
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("every benchmark function has MemorySize %d MB (CPU quota %.2f vCPU)", cfg.MemoryMB, float64(max(100, cfg.MemoryMB*1000/1769))/1000))

	cfg.Progress("building benchmark functions")
	fns, err := buildFunctions(ctx, work, cfg.Runtimes)
	if err != nil {
		return nil, err
	}
	r.fns = fns
	if r.loop, err = startLoopback(ctx); err != nil {
		return nil, err
	}
	defer r.loop.close()

	// Native cold starts first, on a machine as quiet as the one the
	// sandboxed cold starts find (they open each driver's run): measured
	// last, they came right after the teardown of hundreds of idle
	// sandboxes and ran up to 40% slow.
	if cfg.ColdSamples > 0 {
		cfg.Progress("native cold starts")
		if err := r.nativeColdStarts(ctx, work); err != nil {
			return nil, err
		}
	}
	if cfg.Remote != nil {
		if err := r.measureTarget(ctx, cfg.Remote); err != nil {
			return nil, err
		}
	} else {
		for _, d := range cfg.Drivers {
			if err := r.embedded(ctx, d); err != nil {
				return nil, err
			}
		}
	}
	r.rep.compareCold()
	r.rep.Finished = time.Now()
	return r.rep, nil
}

// embedded starts a server with driver, measures it and stops it.
func (r *runner) embedded(ctx context.Context, driver string) error {
	r.cfg.Progress("starting an embedded server with the " + driver + " driver")
	idle := r.scaledIdle()
	rec := NewPhaseRecorder(r.cfg.Log)
	t, err := r.cfg.Start(ctx, EmbeddedOptions{
		Driver: driver,
		// Placement capacity only (memory limits are caps, not reservations):
		// every warm sandbox of every runtime plus the fleet.
		WorkerMemoryMB: 2 * (max(idle, r.cfg.CreateN)*fleetMemoryMB +
			(len(r.fns)*(slices.Max(r.cfg.Concurrency)+r.cfg.ColdSamples)+16)*r.cfg.MemoryMB),
		AccountConcurrency: max(idle, r.cfg.CreateN) + 200,
		Log:                rec,
	})
	if err != nil {
		return fmt.Errorf("bench: starting an embedded server (%s): %w", driver, err)
	}
	t.Phases, t.InProcess = rec, true
	defer func() {
		r.cfg.Progress("stopping the embedded server")
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if t.Close != nil {
			_ = t.Close(cctx)
		}
	}()
	return r.measureTarget(ctx, t)
}

// measureTarget runs every measurement against t.
func (r *runner) measureTarget(ctx context.Context, t *Target) error {
	driver := t.Driver
	if driver == "" {
		driver = "remote"
	}
	c := newLambdaClient(t)
	deployed := map[string]string{}
	for _, f := range r.fns {
		name := fmt.Sprintf("ignisbench-%s-%s", f.kind, r.runID)
		if err := deploy(ctx, c, name, f, int32(r.cfg.MemoryMB)); err != nil {
			return err
		}
		deployed[f.kind] = name
	}
	defer func() {
		for _, name := range deployed {
			cleanup(context.WithoutCancel(ctx), c, name)
		}
	}()
	for _, f := range r.fns {
		if r.cfg.ColdSamples == 0 {
			break
		}
		r.cfg.Progress(fmt.Sprintf("%s: cold starts of the %s echo", driver, f.kind))
		cs, err := r.coldStarts(ctx, c, t, driver, deployed[f.kind], f)
		if err != nil {
			return err
		}
		r.rep.Cold = append(r.rep.Cold, cs)
	}
	for _, f := range r.fns {
		for _, size := range r.cfg.Payloads {
			for _, conc := range r.cfg.Concurrency {
				r.cfg.Progress(fmt.Sprintf("%s: warm %s echo, %d B, concurrency %d", driver, f.kind, size, conc))
				p, err := r.warmPoint(ctx, t, driver, deployed[f.kind], f.kind, size, conc)
				if err != nil {
					return err
				}
				r.rep.Warm = append(r.rep.Warm, p)
			}
		}
	}
	if r.cfg.CreateN > 0 || r.cfg.IdleN > 0 {
		if f := r.fn(RuntimeGo); f != nil {
			name := fmt.Sprintf("ignisbench-fleet-%s", r.runID)
			if err := deploy(ctx, c, name, f, fleetMemoryMB); err != nil {
				return err
			}
			deployed["fleet"] = name
			fl, err := r.fleet(ctx, c, t, driver, name)
			if err != nil {
				// The other measurements still stand.
				r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%s: creation rate and density failed: %v", driver, err))
			} else {
				r.rep.Fleet = append(r.rep.Fleet, fl)
			}
		}
	}
	return nil
}

func (r *runner) fn(kind string) *function {
	for _, f := range r.fns {
		if f.kind == kind {
			return f
		}
	}
	return nil
}

// newLambdaClient is the one SDK client of a target: static credentials, no
// retries (a retried invoke would be measured twice), enough idle
// connections for the highest concurrency.
func newLambdaClient(t *Target) *lambda.Client {
	region := t.Region
	if region == "" {
		region = "us-east-1"
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = 1024
		tr.MaxIdleConnsPerHost = 1024
		// With --embedded the load generator shares the server's process
		// and so its sysmon: net's socket calls would wake it for the
		// server after every idle spell (see package rawio).
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return rawio.WrapConn(c), nil
		}
	})
	return lambda.New(lambda.Options{
		Region:       region,
		BaseEndpoint: aws.String(t.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(t.AccessKeyID, t.SecretAccessKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   hc,
	})
}

// scaledIdle is IdleN, lowered so that the idle sandboxes fit in half of
// the available memory at idleBudget each.
func (r *runner) scaledIdle() int {
	if r.idle > 0 {
		return r.idle
	}
	defer func() { r.idle = max(r.idle, 1) }()
	n := r.cfg.IdleN
	if avail := memAvailable(); avail > 0 {
		if fit := int(avail / 2 / idleBudget); fit < n {
			note := fmt.Sprintf("idle density: scaled %d sandboxes down to %d to fit in half of the %d MB available",
				n, fit, avail>>20)
			if !slices.Contains(r.rep.Notes, note) {
				r.rep.Notes = append(r.rep.Notes, note)
			}
			n = fit
		}
	}
	r.idle = n
	return n
}

// fleetMemoryMB is the MemorySize of the fleet function: density is
// measured for the smallest sandbox Lambda allows.
const fleetMemoryMB = 128

// idleBudget is the memory assumed per idle Go echo sandbox when scaling
// IdleN down (measured: well under this).
const idleBudget = 24 << 20
