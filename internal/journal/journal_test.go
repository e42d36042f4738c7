package journal_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/journal"
)

func openJournal(t testing.TB, s *embednats.Server) *journal.Journal {
	t.Helper()
	cfg := journal.DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	j, err := journal.Open(context.Background(), s.JetStream(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func replayAll(t *testing.T, j *journal.Journal, p int) []journal.Entry {
	t.Helper()
	var got []journal.Entry
	if err := j.Replay(t.Context(), p, func(_ uint64, e journal.Entry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestJournal_AppendReplayAcrossRestart appends to two partitions, restarts
// the embedded server on the same store, and replays each partition.
func TestJournal_AppendReplayAcrossRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := natstest.Start(t, dir)
	j := openJournal(t, s)

	if got := replayAll(t, j, 0); len(got) != 0 {
		t.Fatalf("empty partition replayed %d entries", len(got))
	}
	c := &journal.SandboxCreating{SandboxID: "a", Function: "f", Key: "f:1", WorkerID: "w1", MemoryMB: 128, At: at}
	r := &journal.SandboxReady{SandboxID: "a", Function: "f", Key: "f:1", WorkerID: "w1", MemoryMB: 128, At: at}
	other := &journal.SandboxCreating{SandboxID: "z", Function: "g", Key: "g:1", WorkerID: "w1", MemoryMB: 64, At: at}
	future := &journal.Unknown{T: 999, Version: 1, Body: []byte(`{}`)}
	var last uint64
	for _, step := range []struct {
		p int
		e journal.Entry
	}{{0, c}, {1, other}, {0, future}, {0, r}} {
		seq, err := j.Append(ctx, step.p, step.e)
		if err != nil {
			t.Fatal(err)
		}
		if seq <= last {
			t.Fatalf("sequence %d after %d", seq, last)
		}
		last = seq
	}
	s.Close()

	s2 := natstest.Start(t, dir)
	j2 := openJournal(t, s2)
	if d := cmp.Diff([]journal.Entry{c, future, r}, replayAll(t, j2, 0)); d != "" {
		t.Fatalf("partition 0 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]journal.Entry{other}, replayAll(t, j2, 1)); d != "" {
		t.Fatalf("partition 1 (-want +got):\n%s", d)
	}
	tab, n, unknown, err := j2.Load(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || unknown != 1 || len(tab.Ready) != 1 || len(tab.Creating) != 0 {
		t.Fatalf("Load = %d entries, %d unknown, table %+v", n, unknown, tab)
	}
}

// TestJournal_Compact checks that a checkpoint purges older entries of its
// partition only, and that replay starts from it.
func TestJournal_Compact(t *testing.T) {
	ctx := t.Context()
	s := natstest.Start(t, "")
	j := openJournal(t, s)
	tab := journal.NewTable()
	for i := range 10 {
		e := &journal.SandboxReady{SandboxID: fmt.Sprintf("s%d", i), Key: "k", WorkerID: "w", MemoryMB: 128, At: at}
		tab.Apply(e)
		if _, err := j.Append(ctx, 3, e); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			d := &journal.SandboxDestroyed{SandboxID: e.SandboxID, Reason: journal.ReasonIdleExpired, At: at}
			tab.Apply(d)
			if _, err := j.Append(ctx, 3, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	keep := &journal.SandboxCreating{SandboxID: "x", Key: "k", At: at}
	if _, err := j.Append(ctx, 4, keep); err != nil {
		t.Fatal(err)
	}
	cp := tab.Checkpoint(at)
	if _, err := j.Compact(ctx, 3, cp); err != nil {
		t.Fatal(err)
	}
	after := &journal.SandboxDestroyed{SandboxID: "s1", Reason: journal.ReasonCrash, At: at}
	if _, err := j.Append(ctx, 3, after); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]journal.Entry{cp, after}, replayAll(t, j, 3)); d != "" {
		t.Fatalf("after compaction (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]journal.Entry{keep}, replayAll(t, j, 4)); d != "" {
		t.Fatalf("other partition (-want +got):\n%s", d)
	}
	got, _, _, err := j.Load(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Ready) != 4 {
		t.Fatalf("ready after compaction+destroy = %d, want 4", len(got.Ready))
	}
}

func TestJournal_ReplayHonoursContext(t *testing.T) {
	s := natstest.Start(t, "")
	j := openJournal(t, s)
	if _, err := j.Append(t.Context(), 0, &journal.SandboxDestroyed{SandboxID: "a"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := j.Replay(ctx, 0, func(uint64, journal.Entry) error { return nil }); err == nil {
		t.Fatal("Replay with a cancelled context succeeded")
	}
}

// benchJournal is a journal on a fresh server with the default sync
// policy and the entry the benchmarks append: a cold start's SandboxReady.
func benchJournal(b *testing.B) (*journal.Journal, journal.Entry) {
	return benchJournalSync(b, "")
}

func benchJournalSync(b *testing.B, sync embednats.Sync) (*journal.Journal, journal.Entry) {
	j := openJournal(b, natstest.StartConfig(b, embednats.Config{Sync: sync}))
	return j, &journal.SandboxReady{SandboxID: "sb-0123456789abcdef", Function: "fn", Key: "fn:1#abc", WorkerID: "w1", MemoryMB: 128,
		Handle: []byte(`{"driver":"jail","id":"sb-0123456789abcdef","data":{"pid":42}}`), At: at}
}

// BenchmarkJournal_Append is a synchronous append (what a cold start
// waits for before it creates the sandbox) under each sync policy: the
// cost of an acknowledgement that is on disk.
func BenchmarkJournal_Append(b *testing.B) {
	for _, sync := range []embednats.Sync{embednats.SyncAlways, embednats.SyncInterval} {
		b.Run("sync="+string(sync), func(b *testing.B) {
			j, e := benchJournalSync(b, sync)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.Append(ctx, 0, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// AppendAsync entries keep their place among Append entries, and Sync
// waits for them; each done callback reports the stored sequence.
func TestJournal_AppendAsyncOrderAndSync(t *testing.T) {
	ctx := t.Context()
	j := openJournal(t, natstest.Start(t, ""))
	seqs := make(chan uint64, 100)
	var want []journal.Entry
	for i := range 100 {
		e := journal.Entry(&journal.SandboxCreating{SandboxID: fmt.Sprint(i), Function: "f", Key: "f:1", WorkerID: "w1", MemoryMB: 128, At: at})
		if i%2 == 1 {
			e = &journal.SandboxReady{SandboxID: fmt.Sprint(i - 1), Function: "f", Key: "f:1", WorkerID: "w1", MemoryMB: 128, At: at}
			if err := j.AppendAsync(0, e, func(seq uint64, err error) {
				if err != nil {
					t.Errorf("async append: %v", err)
				}
				seqs <- seq
			}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := j.Append(ctx, 0, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, replayAll(t, j, 0)); d != "" {
		t.Fatalf("replay (-want +got):\n%s", d)
	}
	for range 50 {
		if seq := <-seqs; seq == 0 || seq%2 != 0 {
			t.Fatalf("async entry stored at sequence %d, want an even one (after each sync entry)", seq)
		}
	}
}

// BenchmarkJournal_AppendAsync is the caller's cost of an AppendAsync
// (what a cold start waits for), one at a time as cold starts come.
func BenchmarkJournal_AppendAsync(b *testing.B) {
	j, e := benchJournal(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := j.AppendAsync(0, e, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := j.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
