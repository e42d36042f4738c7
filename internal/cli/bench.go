package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ignis-run/ignis/internal/bench"
	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/server"
)

// benchCommand is `ignis bench`.
type benchCommand struct {
	e        *env
	cfg      bench.Config
	embedded bool
	endpoint string
	dataDir  string
	sandbox  string
	sync     string
	runtimes string
	jsonOut  bool
	quick    bool
	logLevel string
	agent    string
}

func newBenchCommand(e *env) *cobra.Command {
	c := &benchCommand{e: e, cfg: bench.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure invoke latency, throughput, cold starts, density and CPU against a loopback HTTP baseline",
		Long: `bench deploys its own echo functions (Go, Python, Node.js) and reports warm
latency and throughput, cold start phases, sandbox creation rate, idle
density and CPU per invoke, each beside a plain loopback HTTP echo measured
in the same run. --embedded starts a server in this process (needed for the
CPU, memory and phase figures); --endpoint measures a running server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	f := cmd.Flags()
	f.BoolVar(&c.embedded, "embedded", false, "start a server in this process (temporary data dir)")
	f.StringVar(&c.endpoint, "endpoint", "", "URL of a running Ignis server (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IGNIS_ACCESS_KEY_ID/IGNIS_SECRET_ACCESS_KEY, or --data)")
	f.StringVar(&c.dataDir, "data", "", "data directory of the server at --endpoint, to read its generated credentials")
	f.StringVar(&c.sandbox, "sandbox", "jail", "sandbox driver of the embedded server: jail, gvisor, or both")
	f.StringVar(&c.sync, "sync", string(server.DefaultConfig().Sync), "JetStream sync policy of the embedded server: always or interval (to measure what durability costs)")
	f.StringVar(&c.runtimes, "runtimes", strings.Join(c.cfg.Runtimes, ","), "benchmark functions: go, python, node")
	f.IntSliceVar(&c.cfg.Concurrency, "concurrency", c.cfg.Concurrency, "warm concurrency levels")
	f.IntSliceVar(&c.cfg.Payloads, "payload", c.cfg.Payloads, "warm payload sizes in bytes")
	f.DurationVar(&c.cfg.PointDuration, "duration", c.cfg.PointDuration, "duration of each warm point and of its baseline")
	f.IntVar(&c.cfg.ColdSamples, "cold", c.cfg.ColdSamples, "cold starts per runtime")
	f.DurationVar(&c.cfg.ColdGap, "cold-gap", c.cfg.ColdGap, "pause before each cold start, so it finds the worker idle (0: back to back, a burst)")
	f.IntVar(&c.cfg.CreateN, "sandboxes", c.cfg.CreateN, "sandboxes created at once for the creation rate")
	f.IntVar(&c.cfg.IdleN, "idle", c.cfg.IdleN, "idle sandboxes for the density (lowered when memory is short)")
	f.IntVar(&c.cfg.MemoryMB, "memory", c.cfg.MemoryMB, "MemorySize of the benchmark functions in MB (1769 = one vCPU of CPU quota)")
	f.StringVar(&c.cfg.ProfileDir, "profile", "", "write CPU and alloc profiles of the Go echo runs at concurrency 1 and max into this directory (embedded)")
	f.StringVar(&c.agent, "agent", "", "ignis-agent binary (default: beside ignis, on PATH, or built from the source checkout)")
	f.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	f.BoolVar(&c.quick, "quick", false, "a short run (smoke test): shorter points, one cold start, few sandboxes")
	f.StringVar(&c.logLevel, "log-level", "warn", "log level of the embedded server")
	return cmd
}

// Run runs the benchmark and prints the report.
func (c *benchCommand) Run(ctx context.Context, _ []string) error {
	if c.embedded == (c.endpoint != "") {
		return &usageError{errors.New("give exactly one of --embedded and --endpoint")}
	}
	if c.quick {
		c.cfg.Quick()
	}
	c.cfg.Runtimes = strings.Split(c.runtimes, ",")
	c.cfg.AgentBinary = c.agent
	log, err := newLogger(c.e.stderr, c.logLevel)
	if err != nil {
		return err
	}
	c.cfg.Log = log.Handler()
	c.cfg.Progress = func(s string) { fmt.Fprintf(c.e.stderr, "bench: %s\n", s) }
	if c.embedded {
		switch c.sandbox {
		case "jail", "gvisor":
			c.cfg.Drivers = []string{c.sandbox}
		case "both", "all":
			c.cfg.Drivers = []string{"jail", "gvisor"}
		default:
			return &usageError{fmt.Errorf("unknown sandbox driver %q (want jail, gvisor or both)", c.sandbox)}
		}
		c.cfg.Start = c.startEmbedded
	} else {
		t, err := c.remote()
		if err != nil {
			return err
		}
		c.cfg.Remote = t
	}
	if err := c.cfg.Validate(); err != nil {
		return &usageError{err}
	}
	rep, err := bench.Run(ctx, c.cfg)
	if err != nil {
		return err
	}
	if c.jsonOut {
		return rep.WriteJSON(c.e.stdout)
	}
	return rep.WriteTable(c.e.stdout)
}

// remote resolves the endpoint's credentials: AWS env, IGNIS env, --data.
func (c *benchCommand) remote() (*bench.Target, error) {
	t := &bench.Target{Endpoint: c.endpoint, Region: c.e.getenv("AWS_REGION")}
	for _, p := range [][2]string{{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, {"IGNIS_ACCESS_KEY_ID", "IGNIS_SECRET_ACCESS_KEY"}} {
		if t.AccessKeyID == "" {
			t.AccessKeyID, t.SecretAccessKey = c.e.getenv(p[0]), c.e.getenv(p[1])
		}
	}
	if t.AccessKeyID == "" && c.dataDir != "" {
		creds, err := server.LoadCredentials(c.dataDir)
		if err != nil {
			return nil, err
		}
		t.AccessKeyID, t.SecretAccessKey = creds.AccessKeyID, creds.SecretAccessKey
	}
	return t, nil
}

// startEmbedded runs a server in this process on 127.0.0.1, in a temporary
// data dir removed on close.
func (c *benchCommand) startEmbedded(ctx context.Context, o bench.EmbeddedOptions) (*bench.Target, error) {
	dir, err := os.MkdirTemp("", "ignis-bench-data-")
	if err != nil {
		return nil, err
	}
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDIGNISBENCH000001", "ignis-bench-secret-key"
	cfg.ShutdownTimeout = 30 * time.Second
	cfg.Compute.Sandbox = o.Driver
	cfg.Sync = embednats.Sync(c.sync)
	cfg.Compute.AgentBinary = c.agent
	cfg.Compute.WorkerMemoryMB = max(cfg.Compute.WorkerMemoryMB, o.WorkerMemoryMB)
	cfg.AccountConcurrency = max(cfg.AccountConcurrency, o.AccountConcurrency)
	srv, err := server.New(cfg, slog.New(o.Log))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &bench.Target{
		Endpoint: srv.Endpoint(), AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey,
		Region: cfg.Region, Driver: srv.SandboxDriver(),
		Close: func(ctx context.Context) error {
			defer os.RemoveAll(dir)
			return srv.Close(ctx)
		},
	}, nil
}
