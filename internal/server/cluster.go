package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/ignis-run/ignis/internal/workerrpc"
)

// Roles a node runs (Config.Cluster.Roles).
const (
	RoleFrontend   = "frontend"
	RoleAssignment = "assignment"
	RoleWorker     = "worker"
)

// AllRoles is the default: one node runs everything.
var AllRoles = []string{RoleFrontend, RoleAssignment, RoleWorker}

// ClusterConfig is how a node joins a fleet. The zero value is one node on
// its own, with an in-process NATS server: what `make run` starts.
type ClusterConfig struct {
	// NodeID names the node: its NATS server, and its worker unless
	// ComputeConfig.WorkerID names it otherwise. Empty: the host name in
	// a cluster.
	NodeID string
	// Listen is the address of the embedded NATS server's route listener
	// (--cluster-listen); set, the node forms a NATS cluster with Peers.
	Listen string
	// Advertise is the route address other nodes reach this one at, when
	// Listen is not it (a wildcard, NAT).
	Advertise string
	// Peers are the other nodes' route addresses (this node's own may be
	// among them: one list for every node).
	Peers []string
	// NATSURLs, instead of an embedded server, are an existing NATS
	// cluster's client URLs (credentials in the URL's user info).
	NATSURLs []string
	// Replicas of every stream, bucket and object store; 0: 1 alone, 3
	// when the cluster has three servers or more.
	Replicas int
	// Roles this node runs; empty: AllRoles.
	Roles []string
	// Secret authenticates the nodes' NATS routes to each other. Empty:
	// derived from the API's secret access key, which every node of a
	// fleet shares anyway (it signs the requests any frontend checks).
	Secret string
}

// clustered reports whether the node shares its state with others.
func (c ClusterConfig) clustered() bool { return c.Listen != "" || len(c.NATSURLs) > 0 }

// has reports whether the node runs role.
func (c ClusterConfig) has(role string) bool {
	return len(c.Roles) == 0 || slices.Contains(c.Roles, role)
}

// validate reports the first invalid field.
func (c ClusterConfig) validate() error {
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			return fmt.Errorf("role %q: want some of %s", r, strings.Join(AllRoles, ","))
		}
	}
	if len(c.Roles) > 0 && c.has(RoleFrontend) != c.has(RoleAssignment) {
		// Until assignment is partitioned with leaders any frontend can
		// reach, a frontend runs beside the one assignment service.
		return errors.New("roles: frontend and assignment run together (a worker-only node is the other choice)")
	}
	if c.Listen != "" && len(c.NATSURLs) > 0 {
		return errors.New("give --cluster-listen (embedded NATS cluster) or --nats-url (an existing one), not both")
	}
	if c.Listen == "" && len(c.Peers) > 0 {
		return errors.New("--peers needs --cluster-listen")
	}
	if !c.clustered() && len(c.Roles) > 0 && !c.has(RoleWorker) {
		return errors.New("a node without the worker role needs a cluster (--cluster-listen or --nats-url) to find workers in")
	}
	if !c.clustered() && len(c.Roles) > 0 && !c.has(RoleFrontend) {
		return errors.New("a worker-only node needs a cluster (--cluster-listen or --nats-url)")
	}
	for _, a := range append([]string{c.Listen, c.Advertise}, c.Peers...) {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("cluster address %q: %w", a, err)
		}
	}
	for _, u := range c.NATSURLs {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" {
			return fmt.Errorf("nats url %q: want nats://[user:password@]host:port", u)
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("replicas %d: want 1 to 5 (0: automatic)", c.Replicas)
	}
	if c.NodeID != "" {
		if err := workerrpc.ValidID(c.NodeID); err != nil {
			return fmt.Errorf("node id: %w", err)
		}
	}
	return nil
}

// nodeID is the node's name: NodeID, else the host name made a valid one.
func (c ClusterConfig) nodeID() string {
	if c.NodeID != "" {
		return c.NodeID
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "ignis"
	}
	h, _, _ = strings.Cut(h, ".")
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, h)
	return h[:min(len(h), 64)]
}

// replicas is the replication factor of the node's state.
func (c ClusterConfig) replicas() int {
	if c.Replicas > 0 {
		return c.Replicas
	}
	if c.Listen == "" {
		return 1
	}
	servers := map[string]bool{c.Listen: true}
	if c.Advertise != "" {
		servers = map[string]bool{c.Advertise: true}
	}
	for _, p := range c.Peers {
		servers[p] = true
	}
	if len(servers) >= 3 {
		return 3
	}
	return 1
}

// secret is the routes' shared secret.
func (c ClusterConfig) secret(apiSecret string) string {
	if c.Secret != "" {
		return c.Secret
	}
	m := hmac.New(sha256.New, []byte(apiSecret))
	m.Write([]byte("ignis cluster routes"))
	return hex.EncodeToString(m.Sum(nil))
}
