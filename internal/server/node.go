package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/embednats"
)

// connectNATS starts the embedded NATS server (alone, or as a member of
// the cluster Config.Cluster describes) or connects to an existing one.
func (s *Server) connectNATS(ctx context.Context) error {
	cl := s.cfg.Cluster
	if len(cl.NATSURLs) > 0 {
		nc, err := nats.Connect(strings.Join(cl.NATSURLs, ","),
			nats.Name("ignis-"+cl.nodeID()), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false))
		if err != nil {
			return fmt.Errorf("connecting to nats %s: %w", strings.Join(cl.NATSURLs, ","), err)
		}
		js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(embednats.ClusterAPITimeout))
		if err != nil {
			nc.Close()
			return fmt.Errorf("jetstream client: %w", err)
		}
		s.nc, s.js = nc, embednats.ForCluster(js)
		return nil
	}
	ncfg := embednats.Config{
		StoreDir: filepath.Join(s.cfg.DataDir, "nats"),
		Listen:   s.cfg.NATSListen,
		Sync:     s.cfg.Sync,
		Logger:   s.log,
	}
	if ncfg.Listen != "" {
		// Whoever holds the API's key pair holds the state anyway.
		ncfg.Clients = &embednats.Credentials{User: s.creds.AccessKeyID, Password: s.creds.SecretAccessKey}
	}
	if cl.Listen != "" {
		ncfg.ServerName = cl.nodeID()
		ncfg.Cluster = &embednats.Cluster{
			Listen:    cl.Listen,
			Advertise: cl.Advertise,
			Peers:     cl.Peers,
			Secret:    cl.secret(s.creds.SecretAccessKey),
		}
	}
	srv, err := embednats.Start(ctx, ncfg)
	if err != nil {
		return fmt.Errorf("starting embedded nats: %w", err)
	}
	s.nats, s.nc, s.js = srv, srv.Conn(), srv.JetStream()
	return nil
}

// NATSURL is where other processes reach this node's NATS ("" if
// nowhere): the embedded server's client port, or the external one in use.
func (s *Server) NATSURL() string {
	if s.nats != nil {
		return s.nats.ClientURL()
	}
	return s.nc.ConnectedUrlRedacted()
}

func (s *Server) roleNames() string {
	if len(s.cfg.Cluster.Roles) == 0 {
		return strings.Join(AllRoles, ",")
	}
	return strings.Join(s.cfg.Cluster.Roles, ",")
}

// ReadyPath answers 200 once the node serves: a probe for supervisors and
// load balancers, unauthenticated, on every node (worker-only ones too),
// saying nothing but that.
const ReadyPath = "/_ignis/ready"

func withReady(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == ReadyPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ready\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// noAPI is the API listener of a node without the frontend role: it
// points callers at a frontend instead of pretending to be one.
type noAPI struct{ roles []string }

func (n noAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", "ServiceException")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, `{"Type":"Service","message":"this node runs no frontend (roles: %s): send Lambda API requests to a frontend node"}`, strings.Join(n.roles, ","))
}

// fleetView is the fleet as `ignis fleet` shows it: every registered
// worker, with assignment's accounting, and the workers assignment still
// accounts for whose registration lapsed.
func (sys *system) fleetView(ctx context.Context) ([]api.FleetWorker, error) {
	regs, err := sys.fleet.List(ctx)
	if err != nil {
		return nil, err
	}
	usage := map[string]assignment.WorkerUsage{}
	for _, u := range sys.asg.Workers() {
		usage[u.ID] = u
	}
	out := make([]api.FleetWorker, 0, len(regs))
	for _, r := range regs {
		u := usage[r.ID]
		delete(usage, r.ID)
		state := "Ready"
		if r.Draining {
			state = "Draining"
		}
		out = append(out, api.FleetWorker{
			ID: r.ID, State: state, MemoryMB: r.MemoryMB, CPUMillis: r.CPUMillis,
			AllocatedMB: u.AllocatedMB, Sandboxes: u.Sandboxes, InFlight: u.InFlight,
			Heartbeat: r.Heartbeat, Started: r.Started,
		})
	}
	for _, u := range usage {
		if u.Sandboxes == 0 && u.InFlight == 0 {
			continue // left, and nothing of it remains
		}
		out = append(out, api.FleetWorker{ID: u.ID, State: "Gone", AllocatedMB: u.AllocatedMB, Sandboxes: u.Sandboxes, InFlight: u.InFlight})
	}
	slices.SortFunc(out, func(a, b api.FleetWorker) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
