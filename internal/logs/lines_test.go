package logs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/logs"
)

func TestReport_Line(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    logs.Report
		want string
	}{
		{name: "warm", r: logs.Report{RequestID: "r1", Duration: 12340 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsed: 41},
			want: "REPORT RequestId: r1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\t"},
		{name: "cold", r: logs.Report{RequestID: "r2", Duration: 1 * time.Millisecond, MemorySizeMB: 128, MaxMemoryUsed: 41, InitDuration: 187020 * time.Microsecond},
			want: "REPORT RequestId: r2\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\tInit Duration: 187.02 ms\t"},
		{name: "snapstart restore", r: logs.Report{RequestID: "r4", Duration: 2 * time.Millisecond, MemorySizeMB: 128, MaxMemoryUsed: 41, RestoreDuration: 214300 * time.Microsecond},
			want: "REPORT RequestId: r4\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\tRestore Duration: 214.30 ms\tBilled Restore Duration: 215 ms\t"},
		{name: "sub-millisecond bills 1", r: logs.Report{RequestID: "r3", Duration: 100 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsed: 1},
			want: "REPORT RequestId: r3\tDuration: 0.10 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 1 MB\t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Line(); got != tt.want {
				t.Errorf("Line() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	// The strconv rendering agrees with the fmt one it replaced.
	for i := range 2000 {
		r := logs.Report{RequestID: "id", Duration: time.Duration(i*i*7919) % (900 * time.Second), MemorySizeMB: 128 + i, MaxMemoryUsed: i,
			InitDuration: time.Duration(i*104729) % (10 * time.Second)}
		want := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
			r.RequestID, float64(r.Duration)/1e6, logs.BilledMillis(r.Duration), r.MemorySizeMB, r.MaxMemoryUsed)
		if r.InitDuration > 0 {
			want += fmt.Sprintf("Init Duration: %.2f ms\t", float64(r.InitDuration)/1e6)
		}
		if got := r.Line(); got != want {
			t.Fatalf("Line() = %q, want %q", got, want)
		}
	}
	if got := logs.StartLine("r1", "$LATEST"); got != "START RequestId: r1 Version: $LATEST" {
		t.Errorf("StartLine = %q", got)
	}
	if got := logs.EndLine("r1"); got != "END RequestId: r1" {
		t.Errorf("EndLine = %q", got)
	}
	if got := logs.TimeoutLine(time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC), "r1", 2*time.Second); got != "2024-01-02T03:04:05.006Z r1 Task timed out after 2.00 seconds" {
		t.Errorf("TimeoutLine = %q", got)
	}
}
