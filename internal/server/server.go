package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/frontend"
	"github.com/ignis-run/ignis/internal/rawio"
	"github.com/ignis-run/ignis/internal/registry"
)

// Server is a running `ignis server`: every role in one process.
type Server struct {
	cfg Config
	log *slog.Logger

	creds        Credentials
	generated    bool
	nats         *embednats.Server // nil with Config.Cluster.NATSURLs
	nc           *nats.Conn
	js           jetstream.JetStream
	registry     *registry.Registry
	sys          *system
	roles        []role // started or starting, in start order
	frontend     *frontend.Frontend
	listener     net.Listener
	http         *http.Server
	urlListener  net.Listener // nil without Config.URLListen
	urlHTTP      *http.Server
	serveErr     chan error
	closeStarted bool
}

// New returns an unstarted server. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid server config: %w", err)
	}
	cfg, err := cfg.absolute()
	if err != nil {
		return nil, fmt.Errorf("invalid server config: %w", err)
	}
	if cfg.Cluster.clustered() && cfg.Compute.WorkerID == DefaultComputeConfig().WorkerID {
		// "local" is no name in a fleet: the worker takes the node's.
		cfg.Compute.WorkerID = cfg.Cluster.nodeID()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: logger}, nil
}

// Start brings every component up and begins serving. On error everything
// started so far is closed again.
func (s *Server) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if s.cfg.AccessKeyID != "" {
		s.creds = Credentials{AccessKeyID: s.cfg.AccessKeyID, SecretAccessKey: s.cfg.SecretAccessKey}
	} else if s.creds, s.generated, err = loadOrCreateCredentials(s.cfg.DataDir); err != nil {
		return err
	}

	if err := s.connectNATS(ctx); err != nil {
		return err
	}
	replicas := s.cfg.Cluster.replicas()
	s.registry, err = registry.Open(ctx, registry.Config{
		JetStream:          s.js,
		Replicas:           replicas,
		ARNs:               registry.ARNs{Region: s.cfg.Region, AccountID: s.cfg.AccountID},
		Runtimes:           &registry.HostRuntimes{},
		AccountConcurrency: s.cfg.AccountConcurrency,
		Logger:             s.log,
	})
	if err != nil {
		return err
	}

	s.sys = &system{cfg: s.cfg, log: s.log, nc: s.nc, js: s.js, reg: s.registry, replicas: replicas}
	for _, r := range newRoles(s.cfg.Cluster) {
		s.roles = append(s.roles, r) // closed even if its start fails part way
		if err := r.start(ctx, s.sys); err != nil {
			return err
		}
	}

	s.listener, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	urlAddr := s.listener.Addr()
	if s.cfg.URLListen != "" && s.cfg.Cluster.has(RoleFrontend) { // function URLs are a frontend's
		s.urlListener, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.URLListen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", s.cfg.URLListen, err)
		}
		urlAddr = s.urlListener.Addr()
	}
	_, urlPort, _ := net.SplitHostPort(urlAddr.String())

	var api http.Handler = noAPI{roles: s.cfg.Cluster.Roles}
	if s.cfg.Cluster.has(RoleFrontend) {
		s.frontend, err = frontend.New(frontend.Config{
			Invoker:         frontendInvoker{Service: s.sys.invoke, queue: s.sys.queue, fleet: s.sys.fleetView},
			Logs:            s.sys.logsAPI,
			Registry:        s.registry,
			Credentials:     frontend.Credentials{AccessKeyID: s.creds.AccessKeyID, SecretAccessKey: s.creds.SecretAccessKey},
			FunctionURLPort: urlPort,
			Logger:          s.log,
		})
		if err != nil {
			return err
		}
		api = s.frontend
	}

	s.serveErr = make(chan error, 2)
	s.http = s.serve(s.listener, withReady(api))
	if s.urlListener != nil && s.frontend != nil {
		s.urlHTTP = s.serve(s.urlListener, s.frontend.URLHandler())
	}
	s.log.InfoContext(ctx, "ignis server started", "listen", s.listener.Addr().String(), "urlListen", urlAddr.String(),
		"data", s.cfg.DataDir, "nats", s.NATSURL(), "node", s.cfg.Cluster.nodeID(), "roles", s.roleNames(), "replicas", replicas)
	return nil
}

// serve serves h on l in a goroutine that reports to s.serveErr.
func (s *Server) serve(l net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	// Raw socket calls: net/http's own would wake sysmon on every request
	// that finds the server idle (see package rawio).
	go func() { s.serveErr <- srv.Serve(rawio.Listen(l)) }()
	return srv
}

// NATSVarz is the embedded NATS server's own report of its configuration
// and state (its /varz): what is in force, not what was asked for.
func (s *Server) NATSVarz() (*natsserver.Varz, error) {
	if s.nats == nil {
		return nil, errors.New("no embedded NATS server: this node uses --nats-url")
	}
	return s.nats.Varz()
}

// Addr is the address the API listens on (useful with port 0).
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// URLAddr is the address of the function URL listener, nil without
// Config.URLListen.
func (s *Server) URLAddr() net.Addr {
	if s.urlListener == nil {
		return nil
	}
	return s.urlListener.Addr()
}

// Endpoint is the API's base URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr().String() }

// DataDir is the absolute data directory in use.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Credentials returns the key pair in use and whether Start generated it.
func (s *Server) Credentials() (Credentials, bool) { return s.creds, s.generated }

// InFlight is the number of a function's invokes holding or awaiting a
// sandbox: what its concurrency limits count.
func (s *Server) InFlight(function string) int {
	if s.sys.asg == nil {
		return 0
	}
	return s.sys.asg.InFlight(function)
}

// SandboxDriver names the sandbox driver in use (jail or gvisor).
func (s *Server) SandboxDriver() string {
	if s.sys.driver == nil {
		return "none"
	}
	return s.sys.driver.Name()
}

// Registry is the config service (for tests and in-process roles).
func (s *Server) Registry() *registry.Registry { return s.registry }

// Run starts the server, blocks until ctx is done or serving fails, then
// shuts down gracefully.
func (s *Server) Run(ctx context.Context, started func(*Server)) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	if started != nil {
		started(s)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.serveErr:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	closeErr := s.Close(shutdownCtx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serving http: %w", serveErr)
	}
	return closeErr
}

// Close stops accepting requests, waits for in-flight ones (until ctx is
// done), then closes the components in reverse start order. It is safe to
// call on a partly started server, and more than once.
func (s *Server) Close(ctx context.Context) error {
	if s.closeStarted {
		return nil
	}
	s.closeStarted = true
	var errs []error
	for _, l := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{s.http, s.listener}, {s.urlHTTP, s.urlListener}} {
		if l.srv != nil {
			if err := l.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("shutting down http: %w", err))
				_ = l.srv.Close()
			}
		} else if l.ln != nil {
			_ = l.ln.Close()
		}
	}
	for i := len(s.roles) - 1; i >= 0; i-- {
		s.roles[i].close(ctx)
	}
	if s.registry != nil {
		s.registry.Close()
	}
	if s.nats != nil {
		s.nats.Close()
	} else if s.nc != nil {
		_ = s.nc.Drain()
		s.nc.Close()
	}
	s.log.InfoContext(ctx, "ignis server stopped")
	return errors.Join(errs...)
}
