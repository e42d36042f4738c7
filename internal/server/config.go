package server

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/registry"
)

// Config is the configuration of `ignis server`. Sources, lowest priority
// first: DefaultConfig, environment, flags (see internal/cli).
type Config struct {
	// Listen is the address of the AWS-compatible HTTP API.
	Listen string
	// URLListen, when set, is a second listener that serves function URLs
	// and nothing else (the API listener serves them too).
	URLListen string
	// DataDir holds all durable state: nats/ (JetStream) and credentials.json.
	DataDir string
	// Sync is when the embedded JetStream flushes to disk: always (every
	// acknowledged write is on disk: the default) or interval.
	Sync embednats.Sync
	// NATSListen, when set, exposes the embedded NATS server on this
	// address for other processes; empty keeps it in-process only.
	NATSListen string
	// AccessKeyID and SecretAccessKey are the key pair every request must
	// be signed with. Both empty: load from DataDir, or generate and store.
	AccessKeyID     string
	SecretAccessKey string
	// Region and AccountID appear in every ARN.
	Region    string
	AccountID string
	// AccountConcurrency is the account's concurrent execution limit.
	AccountConcurrency int
	// ShutdownTimeout bounds how long Close waits for in-flight requests.
	ShutdownTimeout time.Duration
	// Compute configures the local worker, sandboxes, assignment and logs.
	Compute ComputeConfig
	// Cluster is how the node joins a fleet; zero: a node on its own.
	Cluster ClusterConfig
}

// DefaultConfig returns the defaults of `ignis server`.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:9000",
		DataDir:            "./ignis-data",
		Sync:               embednats.SyncAlways,
		Region:             registry.DefaultRegion,
		AccountID:          registry.DefaultAccountID,
		AccountConcurrency: registry.DefaultAccountConcurrency,
		ShutdownTimeout:    30 * time.Second,
		Compute:            DefaultComputeConfig(),
	}
}

// absolute returns c with every path made absolute and clean, against the
// working directory at start-up. It is the one place relative paths are
// resolved: everything below the composition root (the worker, the sandbox
// drivers, which refuse relative paths) sees absolute ones only, and a
// later change of directory cannot move the data.
func (c Config) absolute() (Config, error) {
	for _, p := range []*string{&c.DataDir, &c.Compute.AgentBinary} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return c, fmt.Errorf("resolving path %q: %w", *p, err)
		}
		*p = abs
	}
	return c, nil
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data directory is required")
	}
	if _, err := embednats.ParseSync(string(c.Sync)); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if c.URLListen != "" {
		if _, _, err := net.SplitHostPort(c.URLListen); err != nil {
			return fmt.Errorf("url listen address %q: %w", c.URLListen, err)
		}
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("nats listen address %q: %w", c.NATSListen, err)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("give both an access key id and a secret access key, or neither")
	}
	if c.Region == "" || c.AccountID == "" {
		return errors.New("region and account id are required")
	}
	if len(c.AccountID) != 12 {
		return fmt.Errorf("account id %q must have 12 digits", c.AccountID)
	}
	for _, r := range c.AccountID {
		if r < '0' || r > '9' {
			return fmt.Errorf("account id %q must have 12 digits", c.AccountID)
		}
	}
	if err := c.Compute.Validate(); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	if c.Cluster.clustered() && c.AccessKeyID == "" {
		// Each node would generate a key pair of its own: frontends would
		// disagree on signatures, and routes on the secret derived from it.
		return errors.New("a cluster node needs the fleet's key pair: --access-key-id and --secret-access-key (or IGNIS_ACCESS_KEY_ID and IGNIS_SECRET_ACCESS_KEY), the same on every node")
	}
	if c.AccountConcurrency < registry.MinUnreserved {
		return fmt.Errorf("account concurrency %d must be at least %d", c.AccountConcurrency, registry.MinUnreserved)
	}
	return nil
}
