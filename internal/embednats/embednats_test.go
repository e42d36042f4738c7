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

func TestStart_Sync(t *testing.T) {
	for _, tc := range []struct {
		sync embednats.Sync
		want bool
	}{
		{"", true},
		{embednats.SyncAlways, true},
		{embednats.SyncInterval, false},
	} {
		t.Run(string(tc.sync), func(t *testing.T) {
			s, err := embednats.Start(context.Background(), embednats.Config{StoreDir: t.TempDir(), Sync: tc.sync})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			v, err := s.Varz()
			if err != nil {
				t.Fatal(err)
			}
			if v.JetStream.Config == nil || v.JetStream.Config.SyncAlways != tc.want {
				t.Errorf("sync %q: JetStream config %+v, want sync_always=%v", tc.sync, v.JetStream.Config, tc.want)
			}
		})
	}
	if _, err := embednats.Start(context.Background(), embednats.Config{StoreDir: t.TempDir(), Sync: "sometimes"}); err == nil {
		t.Error("Start accepted sync \"sometimes\"")
	}
}
