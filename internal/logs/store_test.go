package logs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/logs"
)

func TestStore_Append_Validation(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name          string
		group, stream string
		ts            time.Time
	}{
		{name: "empty group", group: "", stream: "s", ts: now},
		{name: "bad group char", group: "/aws/lambda/a b", stream: "s", ts: now},
		{name: "colon in stream", group: "/g", stream: "a:b", ts: now},
		{name: "too old", group: "/g", stream: "s", ts: now.Add(-3 * time.Hour)},
		{name: "too new", group: "/g", stream: "s", ts: now.Add(3 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Append(ctx, tt.group, tt.stream, []logs.Event{{Timestamp: tt.ts, Message: "x"}})
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Append = %v, want invalid argument", err)
			}
		})
	}
}

func TestStore_Append_SplitsLargeBatches(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	ctx := context.Background()
	now := time.Now()
	big := strings.Repeat("x", logs.MaxEventBytes+100) // truncated
	ev := []logs.Event{{Timestamp: now, Message: big}}
	for i := range 12000 {
		ev = append(ev, logs.Event{Timestamp: now, Message: fmt.Sprint(i)})
	}
	if err := st.Append(ctx, "/g", "s", ev); err != nil {
		t.Fatal(err)
	}
	flush(t, st)
	var n int
	q := logs.Query{Group: "/g"}
	for {
		p, err := st.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if n == 0 && len(e.Message) != logs.MaxEventBytes {
				t.Errorf("first message length %d, want truncated to %d", len(e.Message), logs.MaxEventBytes)
			}
			if n > 0 && e.Message != fmt.Sprint(n-1) {
				t.Fatalf("event %d = %q", n, e.Message)
			}
			n++
		}
		if !p.More {
			break
		}
		q.From = p.Events[len(p.Events)-1].Pos.Next()
	}
	if n != len(ev) {
		t.Fatalf("read %d events, want %d", n, len(ev))
	}
}

func TestStore_Retention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	ns, err := embednats.Start(ctx, embednats.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	cfg := logs.DefaultConfig()
	cfg.MaxAge, cfg.MaxBytes = 2*time.Second, 1<<20
	st, err := logs.Open(ctx, ns.Conn(), cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ns.JetStream().Stream(ctx, cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	c := info.CachedInfo().Config
	if c.MaxAge != 2*time.Second || c.MaxBytes != 1<<20 {
		t.Errorf("stream limits = %v, %d", c.MaxAge, c.MaxBytes)
	}
	appendLines(t, st, "/g", "s", time.Now(), "expires soon")
	flush(t, st)
	p, err := st.Events(ctx, logs.Query{Group: "/g"})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("before expiry: %d events, %v", len(p.Events), err)
	}
	// MaxBytes: 3 MiB into a 1 MiB stream keeps at most 1 MiB.
	for range 3 {
		appendLines(t, st, "/g", "big", time.Now(), strings.Repeat("y", 200<<10), strings.Repeat("z", 200<<10))
		appendLines(t, st, "/g", "big", time.Now(), strings.Repeat("y", 200<<10), strings.Repeat("z", 200<<10))
	}
	flush(t, st)
	si, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Bytes > 1<<20 {
		t.Errorf("stream holds %d bytes, over MaxBytes", si.State.Bytes)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := st.Events(ctx, logs.Query{Group: "/g"})
		if err == nil && len(p.Events) == 0 || errdefs.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not expired after MaxAge: %d, %v", len(p.Events), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Reopening with new limits updates the stream.
	cfg.MaxAge, cfg.MaxBytes = 48*time.Hour, -1
	st2, err := logs.Open(ctx, ns.Conn(), cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close(ctx)
	si, err = info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.Config.MaxAge != 48*time.Hour || si.Config.MaxBytes != -1 {
		t.Errorf("updated limits = %v, %d", si.Config.MaxAge, si.Config.MaxBytes)
	}
}

func TestStore_RestartPersistence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	ns, err := embednats.Start(ctx, embednats.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := logs.Open(ctx, ns.Conn(), logs.DefaultConfig(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, s := logs.GroupName("persist"), logs.NewStreamName(time.Now(), "$LATEST")
	ts := time.Now().Truncate(time.Millisecond)
	appendLines(t, st, g, s, ts, "START RequestId: 1", "hello", "END RequestId: 1")
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ns.Close()

	ns2, err := embednats.Start(ctx, embednats.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ns2.Close()
	st2, err := logs.Open(ctx, ns2.Conn(), logs.DefaultConfig(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close(ctx)
	groups, err := st2.Groups(ctx, "/aws/lambda/")
	if err != nil || len(groups) != 1 || groups[0].Name != g {
		t.Fatalf("groups after restart = %+v, %v", groups, err)
	}
	streams, err := st2.Streams(ctx, g, "", logs.ByName, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 1 || streams[0].Name != s || !streams[0].LastEvent.Equal(ts) {
		t.Fatalf("streams after restart = %+v", streams)
	}
	p, err := st2.Events(ctx, logs.Query{Group: g, Streams: []string{s}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range p.Events {
		got = append(got, e.Message)
	}
	if diff := cmp.Diff([]string{"START RequestId: 1", "hello", "END RequestId: 1"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStore_Tail(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := logs.GroupName("tail")
	old := time.Now().Add(-time.Hour)
	appendLines(t, st, g, "s1", old, "too old for since")
	appendLines(t, st, g, "s1", time.Now(), "one", "two")
	flush(t, st)

	if _, err := st.Tail(ctx, "/aws/lambda/none", time.Time{}, false); !errdefs.IsNotFound(err) {
		t.Fatalf("Tail on missing group = %v", err)
	}
	ch, err := st.Tail(ctx, g, time.Now().Add(-time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for e := range ch {
		got = append(got, e.Message)
	}
	if diff := cmp.Diff([]string{"one", "two"}, got); diff != "" {
		t.Errorf("no-follow (-want +got):\n%s", diff)
	}

	fctx, fcancel := context.WithCancel(ctx)
	ch, err = st.Tail(fctx, g, time.Now().Add(-time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		appendLines(t, st, g, "s2", time.Now(), "three")
		time.Sleep(300 * time.Millisecond)
		appendLines(t, st, g, "s1", time.Now(), "four")
	}()
	got = nil
	for e := range ch {
		got = append(got, e.Stream+"|"+e.Message)
		if len(got) == 4 {
			fcancel()
		}
	}
	fcancel()
	if diff := cmp.Diff([]string{"s1|one", "s1|two", "s2|three", "s1|four"}, got); diff != "" {
		t.Errorf("follow (-want +got):\n%s", diff)
	}
}

func TestStore_ConcurrentAppend(t *testing.T) {
	t.Parallel()
	cfg := logs.DefaultConfig()
	cfg.MaxBufferedBytes, cfg.MaxPending = 1<<20, 8 // force back-pressure
	st, _ := openStore(t, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				appendLines(t, st, "/g", fmt.Sprintf("w%d", w), time.Now(), fmt.Sprintf("w%d-%d", w, i))
			}
		}()
	}
	wg.Wait()
	flush(t, st)
	streams, err := st.Streams(ctx, "/g", "", logs.ByName, false)
	if err != nil || len(streams) != 8 {
		t.Fatalf("streams = %d, %v", len(streams), err)
	}
	seen := map[string]bool{}
	q := logs.Query{Group: "/g"}
	for {
		p, err := st.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			seen[e.Message] = true
		}
		if !p.More {
			break
		}
		q.From = p.Events[len(p.Events)-1].Pos.Next()
	}
	if len(seen) != 1600 || st.Failed() != 0 {
		t.Fatalf("read %d distinct events (failed %d), want 1600", len(seen), st.Failed())
	}
}

func TestStore_AppendHonoursContextWhenFull(t *testing.T) {
	t.Parallel()
	cfg := logs.DefaultConfig()
	cfg.MaxBufferedBytes = 1 << 20
	cfg.Linger = time.Hour // nothing is published, so nothing frees the buffer
	st, _ := openStore(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := strings.Repeat("x", 200<<10)
	for i := range 10 {
		// Separate streams: no batch fills up (which would publish it).
		err := st.Append(ctx, "/g", fmt.Sprintf("s%d", i), []logs.Event{{Timestamp: time.Now(), Message: big}})
		if errors.Is(err, context.Canceled) {
			if i < 5 {
				t.Fatalf("append %d refused with %d KiB buffered, want room for 5", i, i*200)
			}
			return
		}
		if err != nil {
			t.Fatalf("append %d = %v, want nil or context.Canceled", i, err)
		}
	}
	t.Fatal("10 appends of 200 KiB fit in a 1 MiB buffer")
}

// Appends to a stream within the linger share one JetStream message;
// Flush publishes them without waiting for the linger, and the timer
// publishes them without a Flush.
func TestStore_LingerCoalesces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	msgs := func(t *testing.T, ns *embednats.Server) uint64 {
		t.Helper()
		s, err := ns.JetStream().Stream(ctx, logs.DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	t.Run("flush", func(t *testing.T) {
		cfg := logs.DefaultConfig()
		cfg.Linger = time.Hour
		st, ns := openStore(t, cfg)
		for i := range 100 {
			appendLines(t, st, "/g", "a", time.Now(), fmt.Sprintf("a%d", i))
		}
		appendLines(t, st, "/g", "b", time.Now(), "b0")
		if n := msgs(t, ns); n != 0 {
			t.Fatalf("%d messages stored before the linger or a flush", n)
		}
		flush(t, st)
		if n := msgs(t, ns); n != 2 {
			t.Fatalf("%d messages stored for 2 streams, want 2", n)
		}
		p, err := st.Events(ctx, logs.Query{Group: "/g", Streams: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 100 {
			t.Fatalf("read %d events of stream a, want 100", len(p.Events))
		}
		for i, e := range p.Events {
			if e.Message != fmt.Sprintf("a%d", i) {
				t.Fatalf("event %d = %q, want a%d", i, e.Message, i)
			}
		}
	})
	t.Run("read your writes", func(t *testing.T) {
		// A read publishes what lingers first: no flush, no timer.
		cfg := logs.DefaultConfig()
		cfg.Linger = time.Hour
		st, _ := openStore(t, cfg)
		appendLines(t, st, "/g", "a", time.Now(), "a0", "a1")
		p, err := st.Events(ctx, logs.Query{Group: "/g"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 2 || p.Events[1].Message != "a1" {
			t.Fatalf("read %+v right after appending a0, a1", p.Events)
		}
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		appendLines(t, st, "/g", "b", time.Now(), "b0")
		ch, err := st.Tail(tctx, "/g", time.Time{}, false)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for e := range ch {
			got = append(got, e.Message)
		}
		if len(got) != 3 || got[2] != "b0" {
			t.Fatalf("tail read %q, want a0 a1 b0", got)
		}
	})
	t.Run("timer", func(t *testing.T) {
		cfg := logs.DefaultConfig()
		cfg.Linger = 20 * time.Millisecond
		st, ns := openStore(t, cfg)
		for i := range 10 {
			appendLines(t, st, "/g", "a", time.Now(), fmt.Sprintf("a%d", i))
		}
		deadline := time.Now().Add(5 * time.Second)
		for msgs(t, ns) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("nothing stored 5 s after appending, without a flush")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n := msgs(t, ns); n > 2 {
			t.Fatalf("10 quick appends took %d messages, want them coalesced", n)
		}
	})
}

// TestAWSCLI_LogsTailFollow runs the real AWS CLI v2 `logs tail --follow`
// against the handler while events are appended.
func TestAWSCLI_LogsTailFollow(t *testing.T) {
	const cli = "/usr/bin/aws"
	if _, err := os.Stat(cli); err != nil {
		t.Skip("AWS CLI v2 not installed at /usr/bin/aws")
	}
	if testing.Short() {
		t.Skip("slow: the CLI polls every 5 s")
	}
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	srv := serve(t, st)
	g := logs.GroupName("cli-tail")
	stream := logs.NewStreamName(time.Now(), "$LATEST")
	appendLines(t, st, g, stream, time.Now(), "before-start marker-1")
	flush(t, st)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, cli, "logs", "tail", g, "--follow", "--since", "5m", "--format", "short",
		"--endpoint-url", srv.URL, "--region", "us-east-1", "--no-cli-pager", "--color", "off")
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none", "AWS_EC2_METADATA_DISABLED=true", "PYTHONUNBUFFERED=1"}
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := []string{"before-start marker-1", "after-start marker-2", "after-start marker-3"}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		appendLines(t, st, g, stream, time.Now(), want[1])
		appendLines(t, st, g, logs.NewStreamName(time.Now(), "$LATEST"), time.Now().Add(time.Millisecond), want[2])
	}()
	var got []string
	for len(got) < len(want) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("aws logs tail exited; got %q; stderr: %s", got, stderr.String())
			}
			t.Logf("aws: %s", l)
			// --format short: "2024-05-01T12:00:00 message"
			if _, msg, ok := strings.Cut(l, " "); ok {
				got = append(got, msg)
			}
		case <-ctx.Done():
			t.Fatalf("timed out; got %q; stderr: %s", got, stderr.String())
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
