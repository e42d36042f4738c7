package logs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/logs"
)

// TestStore_StreamLeaderFailover: events appended through one node of
// three while the log stream's leader, on another node, dies are all
// stored: batches the stream did not answer or acknowledge meanwhile are
// published again (and none twice).
func TestStore_StreamLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	nodes := natstest.StartCluster(t, 3, "s3cret")
	ctx := context.Background()
	cfg := logs.DefaultConfig()
	cfg.Replicas = 3
	st, err := logs.Open(ctx, nodes[0].Conn(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)

	// The leader must be elsewhere than the appending node, to be killed.
	leader := func() string {
		s, err := nodes[0].JetStream().Stream(ctx, cfg.Stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			t.Fatalf("stream info: %v", err)
		}
		return info.Cluster.Leader
	}
	for leader() == "n1" {
		if _, err := nodes[0].Conn().Request(fmt.Sprintf(jetstream.DefaultAPIPrefix+"STREAM.LEADER.STEPDOWN.%s", cfg.Stream), nil, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var victim *embednats.Server
	for i, n := range nodes {
		if fmt.Sprintf("n%d", i+1) == leader() {
			victim = n
		}
	}

	const total = 400
	for i := range total {
		if i == total/4 {
			victim.Close()
		}
		if err := st.Append(ctx, "/aws/lambda/f", "s", []logs.Event{{Timestamp: time.Now(), Message: fmt.Sprintf("event %d", i)}}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := st.Flush(fctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if n := st.Failed(); n != 0 {
		t.Errorf("%d batches lost", n)
	}
	seen := map[string]int{}
	q := logs.Query{Group: "/aws/lambda/f", Limit: 10000}
	// Reads fail while the stream has no leader; the election may still
	// be under way if the appends outran it.
	var page logs.Page
	for deadline := time.Now().Add(30 * time.Second); ; {
		if page, err = st.Events(ctx, q); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		seen[e.Message]++
	}
	for i := range total {
		if m := fmt.Sprintf("event %d", i); seen[m] != 1 {
			t.Errorf("%q stored %d times, want once", m, seen[m])
		}
	}
}
