package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ignis-run/ignis/internal/server"
)

// serverCommand is `ignis server`.
type serverCommand struct {
	e        *env
	cfg      server.Config
	logLevel string
}

func newServerCommand(e *env) *cobra.Command {
	c := &serverCommand{e: e, cfg: server.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Ignis server (AWS Lambda API, registry, embedded NATS) in one process",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	f := cmd.Flags()
	f.StringVar(&c.cfg.Listen, "listen", c.cfg.Listen, "address of the AWS-compatible HTTP API")
	f.StringVar(&c.cfg.URLListen, "url-listen", "", "also serve function URLs, and only them, on this address (FunctionUrl then uses its port)")
	f.StringVar(&c.cfg.DataDir, "data", c.cfg.DataDir, "directory for all durable state")
	f.StringVar((*string)(&c.cfg.Sync), "sync", string(c.cfg.Sync), "when JetStream flushes to disk: always (every acknowledged write is on disk) or interval (every 2 minutes; faster, loses acks on a machine crash)")
	f.StringVar(&c.cfg.NATSListen, "nats-listen", "", "expose the embedded NATS server on this address; clients authenticate with the access key id as user and the secret access key as password (default: in-process only)")
	f.StringVar(&c.cfg.AccessKeyID, "access-key-id", "", "access key id requests must be signed with (env IGNIS_ACCESS_KEY_ID)")
	f.StringVar(&c.cfg.SecretAccessKey, "secret-access-key", "", "secret access key requests must be signed with (env IGNIS_SECRET_ACCESS_KEY)")
	f.StringVar(&c.cfg.Region, "region", c.cfg.Region, "region in ARNs")
	f.StringVar(&c.cfg.AccountID, "account-id", c.cfg.AccountID, "12-digit account id in ARNs")
	f.IntVar(&c.cfg.AccountConcurrency, "account-concurrency", c.cfg.AccountConcurrency, "account concurrent execution limit")
	f.DurationVar(&c.cfg.ShutdownTimeout, "shutdown-timeout", c.cfg.ShutdownTimeout, "how long to wait for in-flight requests on shutdown")
	f.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cc := &c.cfg.Compute
	f.StringVar(&cc.Sandbox, "sandbox", cc.Sandbox, "sandbox driver: auto (gvisor where runsc runs on a fast platform, else jail), jail or gvisor")
	f.StringVar(&cc.AgentBinary, "agent", "", "ignis-agent binary to run in sandboxes (default: beside ignis, on PATH, or built from the source checkout)")
	f.StringVar(&cc.WorkerID, "worker-id", cc.WorkerID, "name of the local worker")
	f.StringVar(&cc.CgroupParent, "cgroup-parent", cc.CgroupParent, "cgroup the jail makes sandbox cgroups in (default ignis-<worker-id>)")
	f.IntVar(&cc.WorkerMemoryMB, "worker-memory", cc.WorkerMemoryMB, "memory in MB the local worker offers to sandboxes (default: the machine's)")
	f.IntVar(&cc.WorkerCPUMillis, "worker-cpu", cc.WorkerCPUMillis, "CPU in thousandths the local worker offers (default: the machine's)")
	f.DurationVar(&cc.KeepAlive, "keep-alive", cc.KeepAlive, "how long an idle sandbox is kept for reuse")
	f.DurationVar(&cc.HeartbeatTTL, "heartbeat-ttl", cc.HeartbeatTTL, "how long a worker's registration outlives its last heartbeat: the time to notice a dead worker (the same on every node)")
	f.DurationVar(&cc.LogRetention, "log-retention", cc.LogRetention, "how long function logs are kept")
	f.DurationVar(&cc.AsyncRetryDelay, "async-retry-delay", cc.AsyncRetryDelay, "wait before the first retry of an asynchronous invoke after a function error (the second waits twice as long)")
	f.IntVar(&cc.AsyncPollers, "async-pollers", cc.AsyncPollers, "most asynchronous invokes run at once")
	f.BoolVar(&cc.SandboxNetwork, "sandbox-network", cc.SandboxNetwork, "give sandboxes egress to the world through NAT (never the host or another sandbox), as each function's ignis:network tags allow; false: loopback only")
	f.StringVar(&cc.SandboxCIDR, "sandbox-cidr", "", "IPv4 pool for sandbox links, two addresses each (default 10.203.0.0/16)")
	f.StringSliceVar(&cc.SandboxDNS, "sandbox-dns", nil, "nameservers for sandboxes (default: the host's that sandboxes can reach)")
	f.StringSliceVar(&cc.SandboxDeny, "sandbox-deny", nil, "further IPv4 addresses or prefixes no sandbox reaches unless its function's allow-list names them")
	cl := &c.cfg.Cluster
	f.StringVar(&cl.NodeID, "node-id", "", "name of this node in a cluster, and of its worker (default: the host name)")
	f.StringVar(&cl.Listen, "cluster-listen", "", "HOST:PORT of the embedded NATS server's route listener: form a cluster with --peers (JetStream replicated)")
	f.StringVar(&cl.Advertise, "advertise", "", "HOST:PORT other nodes reach this node's route listener at, when --cluster-listen is not it")
	f.StringSliceVar(&cl.Peers, "peers", nil, "route addresses (HOST:PORT,…) of the cluster's nodes; this node's own may be among them")
	f.StringSliceVar(&cl.NATSURLs, "nats-url", nil, "use this existing NATS cluster (nats://[user:password@]host:port,…) instead of an embedded server")
	f.IntVar(&cl.Replicas, "replicas", 0, "replicas of every stream and bucket (default: 1 alone, 3 when the cluster has 3 servers or more)")
	f.StringSliceVar(&cl.Roles, "roles", nil, "roles of this node: frontend,assignment,worker (default: all three); worker alone makes a worker node")
	f.StringVar(&cl.Secret, "cluster-secret", "", "secret the nodes' routes authenticate with (env IGNIS_CLUSTER_SECRET; default: derived from the secret access key)")
	return cmd
}

// Run starts the server and blocks until ctx is cancelled (SIGINT/SIGTERM).
func (c *serverCommand) Run(ctx context.Context, _ []string) error {
	if c.cfg.AccessKeyID == "" && c.cfg.SecretAccessKey == "" {
		c.cfg.AccessKeyID = c.e.getenv("IGNIS_ACCESS_KEY_ID")
		c.cfg.SecretAccessKey = c.e.getenv("IGNIS_SECRET_ACCESS_KEY")
	}
	if c.cfg.Cluster.Secret == "" {
		c.cfg.Cluster.Secret = c.e.getenv("IGNIS_CLUSTER_SECRET")
	}
	if err := c.cfg.Validate(); err != nil {
		return &usageError{err}
	}
	log, err := newLogger(c.e.stderr, c.logLevel)
	if err != nil {
		return err
	}
	srv, err := server.New(c.cfg, log)
	if err != nil {
		return &usageError{err}
	}
	return srv.Run(ctx, func(s *server.Server) {
		creds, generated := s.Credentials()
		if generated {
			fmt.Fprintf(c.e.stdout, "Generated credentials (stored in %s). Point the AWS CLI at Ignis with:\n%s",
				filepath.Join(s.DataDir(), server.CredentialsFile), creds.ExportLines())
			fmt.Fprintf(c.e.stdout, "export AWS_DEFAULT_REGION=%s\n", c.cfg.Region)
		}
		fmt.Fprintf(c.e.stdout, "Ignis is listening on %s (aws --endpoint-url %s), sandbox driver %s\n", s.Endpoint(), s.Endpoint(), s.SandboxDriver())
		if u := s.URLAddr(); u != nil {
			fmt.Fprintf(c.e.stdout, "Function URLs are served on http://%s too\n", u)
		}
	})
}
