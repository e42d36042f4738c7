package logs_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/logs"
)

// testLogger sends slog output to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// openStore opens a store on a fresh embedded JetStream; closed by t.Cleanup.
func openStore(t testing.TB, cfg logs.Config) (*logs.Store, *embednats.Server) {
	t.Helper()
	ns := natstest.Start(t, "")
	st, err := logs.Open(context.Background(), ns.Conn(), cfg, testLogger(t), nil)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return st, ns
}

// serve exposes the handler on a real 127.0.0.1 listener.
func serve(t testing.TB, st *logs.Store) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(logs.NewHandler(st, logs.HandlerConfig{Logger: testLogger(t)}))
	t.Cleanup(srv.Close)
	return srv
}

// client is the real aws-sdk-go-v2 CloudWatch Logs client pointed at url.
func client(url string) *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

func flush(t testing.TB, st *logs.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func appendLines(t testing.TB, st *logs.Store, group, stream string, ts time.Time, lines ...string) {
	t.Helper()
	ev := make([]logs.Event, len(lines))
	for i, l := range lines {
		ev[i] = logs.Event{Timestamp: ts, Message: l}
	}
	if err := st.Append(context.Background(), group, stream, ev); err != nil {
		t.Fatalf("append: %v", err)
	}
}
