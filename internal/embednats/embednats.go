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

// Config configures the embedded server.
type Config struct {
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// Listen, when set ("127.0.0.1:4222"), opens a client port for other
	// processes. Empty means in-process connections only.
	Listen string
	// ServerName names the node; defaults to "ignis".
	ServerName string
	// Sync is the file store's flush policy; "" means SyncAlways, the
	// only one under which an acknowledged write is durable.
	Sync Sync
	// MaxStore caps JetStream file storage in bytes (0: nats-server default).
	MaxStore int64
	// Logger receives the server's notices and errors; nil discards them.
	Logger *slog.Logger
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
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embednats: parsing listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embednats: parsing listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
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
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("ignis-embedded"), nats.MaxReconnects(-1))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("embednats: connecting in-process: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, fmt.Errorf("embednats: jetstream client: %w", err)
	}
	return &Server{srv: srv, nc: nc, js: js}, nil
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
