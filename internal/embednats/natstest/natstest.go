// Package natstest starts a real embedded JetStream server for tests: store
// directory in t.TempDir(), no listener, closed by t.Cleanup.
package natstest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/embednats"
)

// Start returns a running embedded server whose data lives in dir, or in a
// fresh temp dir when dir is "". Pass the same dir to a second Start (after
// closing the first) to test restarts.
func Start(t testing.TB, dir string) *embednats.Server {
	t.Helper()
	return StartConfig(t, embednats.Config{StoreDir: dir})
}

// StartConfig is Start with the server's config (e.g. its Sync policy);
// an empty StoreDir is a fresh temp dir.
func StartConfig(t testing.TB, cfg embednats.Config) *embednats.Server {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	s, err := embednats.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("starting embedded nats: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// FreeAddrs reserves n loopback ports (closed again before use: the
// servers bind them right after).
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	// All held until all are chosen: a port closed before the next
	// Listen may be handed out again, and two nodes would share it.
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// StartCluster starts n nodes (n1…nN, routes on loopback) at once (a JetStream cluster starts only
// with a quorum) and returns them; each is closed by t.Cleanup unless the
// test closes it first.
func StartCluster(t testing.TB, n int, secret string) []*embednats.Server {
	t.Helper()
	routes := FreeAddrs(t, n)
	nodes := make([]*embednats.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			nodes[i], errs[i] = embednats.Start(ctx, embednats.Config{
				StoreDir: t.TempDir(), ServerName: fmt.Sprintf("n%d", i+1),
				// In the test's log, shown when it fails: why a cluster
				// did not form is in the servers' notices.
				Logger:  slog.New(slog.NewTextHandler(t.Output(), nil)).With("node", i+1),
				Cluster: &embednats.Cluster{Listen: routes[i], Peers: routes, Secret: secret},
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		t.Cleanup(nodes[i].Close)
	}
	return nodes
}
