package embednats_test

import (
	"context"
	"testing"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/nats-io/nats.go/jetstream"
)

func TestServer_KVSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embednats.Start(ctx, embednats.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := s.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := embednats.Start(ctx, embednats.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	kv2, err := s2.JetStream().KeyValue(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv2.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value()) != "v" {
		t.Fatalf("value after restart = %q, want v", e.Value())
	}
}

func TestServer_LargePayload(t *testing.T) {
	ctx := context.Background()
	s, err := embednats.Start(ctx, embednats.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Conn().MaxPayload(); got < 8<<20 {
		t.Fatalf("max payload = %d, want >= 8 MiB", got)
	}
}
