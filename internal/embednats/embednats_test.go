package embednats_test

import (
	"context"
	"net"
	"testing"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/nats-io/nats.go"
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

// TestStart_ExposedPortNeedsCredentials: an open client port is refused
// without credentials, and with them an anonymous client cannot connect.
func TestStart_ExposedPortNeedsCredentials(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if s, err := embednats.Start(ctx, embednats.Config{StoreDir: t.TempDir(), Listen: addr}); err == nil {
		s.Close()
		t.Fatal("Start exposed a client port without credentials")
	}
	s, err := embednats.Start(ctx, embednats.Config{StoreDir: t.TempDir(), Listen: addr,
		Clients: &embednats.Credentials{User: "AKID", Password: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if nc, err := nats.Connect("nats://"+addr, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("an anonymous client connected")
	}
	if nc, err := nats.Connect("nats://"+addr, nats.UserInfo("AKID", "wrong")); err == nil {
		nc.Close()
		t.Error("a client with the wrong password connected")
	}
	nc, err := nats.Connect("nats://"+addr, nats.UserInfo("AKID", "secret"))
	if err != nil {
		t.Fatalf("a client with the credentials: %v", err)
	}
	nc.Close()
	// The in-process client authenticates too.
	if _, err := s.JetStream().AccountInfo(ctx); err != nil {
		t.Fatal(err)
	}
}
