package logs_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/logs"
)

// BenchmarkStore_Append measures the invoke-path cost of appending one
// invoke's worth of lines (START, n output lines, END, REPORT) and, at the
// end, the time to have everything stored (Flush is inside the timer).
func BenchmarkStore_Append(b *testing.B) {
	for _, lines := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("lines=%d", lines+3), func(b *testing.B) {
			ns := natstest.Start(b, "")
			st, err := logs.Open(context.Background(), ns.Conn(), logs.DefaultConfig(), slog.New(slog.DiscardHandler), nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			now := time.Now()
			ev := []logs.Event{{Timestamp: now, Message: "START RequestId: 6f1c0b3e-0b9a-4c6e-9f53-2b1d2c3d4e5f Version: $LATEST"}}
			for i := range lines {
				ev = append(ev, logs.Event{Timestamp: now, Message: fmt.Sprintf("[INFO] processing item %d of the batch, all good", i)})
			}
			ev = append(ev,
				logs.Event{Timestamp: now, Message: "END RequestId: 6f1c0b3e-0b9a-4c6e-9f53-2b1d2c3d4e5f"},
				logs.Event{Timestamp: now, Message: "REPORT RequestId: 6f1c0b3e-0b9a-4c6e-9f53-2b1d2c3d4e5f\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\t"},
			)
			var bytes int64
			for _, e := range ev {
				bytes += int64(len(e.Message))
			}
			group, stream := logs.GroupName("bench"), logs.NewStreamName(now, "$LATEST")
			b.SetBytes(bytes)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := st.Append(ctx, group, stream, ev); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(ev))/b.Elapsed().Seconds(), "events/s")
			if err := st.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
