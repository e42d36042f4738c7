// Package natstest starts a real embedded JetStream server for tests: store
// directory in t.TempDir(), no listener, closed by t.Cleanup.
package natstest

import (
	"context"
	"testing"

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
