// Package embednats runs nats-server with JetStream inside the Ignis process.
//
// A single-node `ignis server` stores all durable state (KV buckets, streams,
// object stores) through this server under its data directory. By default it
// opens no TCP listener: clients connect in-process. Listen exposes it for
// multi-node setups.
package embednats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxPayload is the largest message the embedded server accepts. Invoke
// payloads (6 MB) and code chunks must fit in one message.
const MaxPayload = 8 << 20

// Sync is when JetStream's file store flushes writes to disk.
type Sync string

const (
	// SyncAlways fsyncs every write before it is acknowledged: an ack
	// (a 202 for an async invoke, a journal entry, a stored function)
	// survives power loss and an OS crash, not only a process crash.
	SyncAlways Sync = "always"
	// SyncInterval leaves writes in the page cache and fsyncs in the
	// background every two minutes (nats-server's default). Faster, but a
	// machine crash loses acknowledged writes (Jepsen, NATS 2.12.1).
	SyncInterval Sync = "interval"
)

// ParseSync parses a --sync flag value; "" means SyncAlways.
func ParseSync(s string) (Sync, error) {
	switch Sync(s) {
	case "", SyncAlways:
		return SyncAlways, nil
	case SyncInterval:
		return SyncInterval, nil
	}
	return "", fmt.Errorf("sync %q: want %s or %s", s, SyncAlways, SyncInterval)
}

// ClusterAPITimeout bounds a JetStream API call that has no deadline of
// its own, in a cluster. Creating a replicated stream answers once its
// Raft group has elected a leader, which on busy or CPU-capped nodes takes
// longer than the client's default of 5 s.
const ClusterAPITimeout = 30 * time.Second

// Config configures the embedded server.
type Config struct {
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// Listen, when set ("127.0.0.1:4222"), opens a client port for other
	// processes, who must authenticate (Clients, or the cluster's Secret).
	// Empty means in-process connections only.
	Listen string
	// Clients is what a client of the Listen port must present.
	Clients *Credentials
	// ServerName names the node; defaults to "ignis".
	ServerName string
	// Sync is the file store's flush policy; "" means SyncAlways, the
	// only one under which an acknowledged write is durable.
	Sync Sync
	// MaxStore caps JetStream file storage in bytes (0: nats-server default).
	MaxStore int64
	// Cluster, when set, joins this server to a NATS cluster with
	// JetStream clustering; nil runs a single node.
	Cluster *Cluster
	// Logger receives the server's notices and errors; nil discards them.
	Logger *slog.Logger
}

// Credentials are a NATS user and password.
type Credentials struct{ User, Password string }

// Cluster is how a node joins the others. Every node is given the same
// Name and Secret; ServerName (Config) must differ between nodes.
type Cluster struct {
	// Name of the cluster; "ignis" when empty.
	Name string
	// Listen is the host:port of this node's route listener.
	Listen string
	// Advertise is the host:port other nodes reach Listen at, when it
	// differs (NAT, a wildcard Listen).
	Advertise string
	// Peers are the route addresses (host:port) of the other nodes; this
	// node's own may be among them.
	Peers []string
	// Secret authenticates nodes to each other: a route without it is
	// refused, so a process that is not a member can neither join nor read
	// the replicated state. When Listen (the client port) is exposed,
	// clients must present it too (without Listen, a cluster node still
	// opens one on a random loopback port: nats-server routes only once it
	// has a client listener). Required.
	Secret string
}

// routeUser is the user name routes authenticate as (the Secret is the
// password): nats-server needs both.
const routeUser = "ignis-route"

// clientUser is the user name external clients present with the Secret.
const clientUser = "ignis"

// options applies c to opts.
func (c *Cluster) options(opts *server.Options) error {
	if c.Secret == "" {
		return errors.New("embednats: a cluster needs a secret")
	}
	host, port, err := splitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("embednats: cluster listen: %w", err)
	}
	name := c.Name
	if name == "" {
		name = "ignis"
	}
	opts.Cluster = server.ClusterOpts{
		Name: name, Host: host, Port: port, Advertise: c.Advertise,
		Username: routeUser, Password: c.Secret,
		ConnectRetries: -1, // keep dialling a peer that is not up yet
	}
	for _, p := range c.Peers {
		if _, _, err := splitHostPort(p); err != nil {
			return fmt.Errorf("embednats: peer: %w", err)
		}
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", User: url.UserPassword(routeUser, c.Secret), Host: p})
	}
	if opts.DontListen {
		// nats-server starts routing only once its client listener is up:
		// a cluster node always has one, on a random loopback port.
		opts.DontListen = false
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	}
	if opts.Username == "" {
		opts.Username, opts.Password = clientUser, c.Secret
	}
	return nil
}

// ClientAuth is the nats.go option a process outside this one uses to
// connect to a cluster node's client port (Config.Listen).
func ClientAuth(secret string) nats.Option { return nats.UserInfo(clientUser, secret) }

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("parsing address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("parsing port of %q: want a number below 65536", addr)
	}
	return host, p, nil
}

// Server is a running embedded nats-server with an in-process client.
type Server struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// Start boots the server, waits until it is ready and connects a client.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embednats: StoreDir is required")
	}
	sync, err := ParseSync(string(cfg.Sync))
	if err != nil {
		return nil, fmt.Errorf("embednats: %w", err)
	}
	name := cfg.ServerName
	if name == "" {
		name = "ignis"
	}
	opts := &server.Options{
		ServerName:         name,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxStore:  cfg.MaxStore,
		MaxPayload:         MaxPayload,
		DontListen:         cfg.Listen == "",
		NoSigs:             true,
		NoLog:              cfg.Logger == nil,
		JetStreamMaxMemory: 256 << 20,
		SyncAlways:         sync == SyncAlways,
	}
	if cfg.Listen != "" {
		if opts.Host, opts.Port, err = splitHostPort(cfg.Listen); err != nil {
			return nil, fmt.Errorf("embednats: listen: %w", err)
		}
	}
	// An open client port without authentication would hand every byte
	// of state (functions, code, the journal) to whoever reaches it.
	if c := cfg.Clients; c != nil {
		if c.User == "" || c.Password == "" {
			return nil, errors.New("embednats: client credentials need a user and a password")
		}
		opts.Username, opts.Password = c.User, c.Password
	} else if cfg.Listen != "" && cfg.Cluster == nil {
		return nil, errors.New("embednats: an exposed client port needs client credentials")
	}
	if cfg.Cluster != nil {
		if err := cfg.Cluster.options(opts); err != nil {
			return nil, err
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embednats: creating server: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(&slogAdapter{l: cfg.Logger.With("component", "nats")}, false, false, false)
	}
	go srv.Start()
	wait := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		return nil, errors.New("embednats: server not ready for connections")
	}
	connOpts := []nats.Option{nats.InProcessServer(srv), nats.Name("ignis-embedded"), nats.MaxReconnects(-1)}
	if opts.Username != "" {
		connOpts = append(connOpts, nats.UserInfo(opts.Username, opts.Password))
	}
	nc, err := nats.Connect("", connOpts...)
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("embednats: connecting in-process: %w", err)
	}
	var jsOpts []jetstream.JetStreamOpt
	if cfg.Cluster != nil {
		jsOpts = append(jsOpts, jetstream.WithDefaultTimeout(ClusterAPITimeout))
	}
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, fmt.Errorf("embednats: jetstream client: %w", err)
	}
	if cfg.Cluster != nil {
		js = clusterJetStream{js}
	}
	s := &Server{srv: srv, nc: nc, js: js}
	if cfg.Cluster != nil {
		// Streams can be created only once the cluster has elected its
		// JetStream meta leader, which needs a quorum of the nodes.
		if err := s.waitJetStream(ctx, wait); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// waitJetStream waits until JetStream answers requests (in a cluster:
// until a meta leader is elected).
func (s *Server) waitJetStream(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		_, err := s.js.AccountInfo(actx)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embednats: JetStream not ready (no quorum of the cluster's nodes?): %w", err)
		case <-t.C:
		}
	}
}

// Conn is the in-process client connection, shared by every component.
func (s *Server) Conn() *nats.Conn { return s.nc }

// JetStream is the JetStream client over Conn.
func (s *Server) JetStream() jetstream.JetStream { return s.js }

// ClientURL is the URL other processes use when Listen was set, else "".
func (s *Server) ClientURL() string {
	if s.srv.Addr() == nil {
		return ""
	}
	return s.srv.ClientURL()
}

// Varz is the running server's own report of its configuration and state
// (what its monitoring endpoint serves as /varz).
func (s *Server) Varz() (*server.Varz, error) { return s.srv.Varz(nil) }

// Close drains the client and shuts the server down, flushing JetStream to disk.
func (s *Server) Close() {
	if s.nc != nil {
		_ = s.nc.Drain()
		s.nc.Close()
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

type slogAdapter struct{ l *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any)  {}
