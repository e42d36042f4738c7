package logs

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Platform lines of one invoke, as Lambda writes them (spec §7).

// StartLine is "START RequestId: <id> Version: <version>".
func StartLine(requestID, version string) string {
	return "START RequestId: " + requestID + " Version: " + version
}

// EndLine is "END RequestId: <id>".
func EndLine(requestID string) string { return "END RequestId: " + requestID }

// Report holds the figures of a REPORT line.
type Report struct {
	RequestID     string
	Duration      time.Duration
	MemorySizeMB  int
	MaxMemoryUsed int // MB
	// InitDuration is set only on the first invoke of an on-demand
	// environment (a cold start).
	InitDuration time.Duration
	// RestoreDuration is set only on the first invoke of an environment
	// restored from a SnapStart snapshot (which has no Init Duration).
	RestoreDuration time.Duration
}

// Line renders the REPORT line: TAB-separated fields, trailing TAB, Init
// Duration last, Billed Duration rounded up to the millisecond. It is built
// with strconv rather than fmt: one runs per invoke.
func (r Report) Line() string {
	b := make([]byte, 0, 160+len(r.RequestID))
	b = append(b, "REPORT RequestId: "...)
	b = append(b, r.RequestID...)
	b = append(b, "\tDuration: "...)
	b = strconv.AppendFloat(b, ms2(r.Duration), 'f', 2, 64)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, BilledMillis(r.Duration), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(r.MemorySizeMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendInt(b, int64(r.MaxMemoryUsed), 10)
	b = append(b, " MB\t"...)
	if r.InitDuration > 0 {
		b = append(b, "Init Duration: "...)
		b = strconv.AppendFloat(b, ms2(r.InitDuration), 'f', 2, 64)
		b = append(b, " ms\t"...)
	}
	if r.RestoreDuration > 0 {
		b = append(b, "Restore Duration: "...)
		b = strconv.AppendFloat(b, ms2(r.RestoreDuration), 'f', 2, 64)
		b = append(b, " ms\tBilled Restore Duration: "...)
		b = strconv.AppendInt(b, BilledMillis(r.RestoreDuration), 10)
		b = append(b, " ms\t"...)
	}
	return string(b)
}

// BilledMillis is d rounded up to a whole millisecond (at least 1).
func BilledMillis(d time.Duration) int64 {
	return max(1, int64(math.Ceil(float64(d)/float64(time.Millisecond))))
}

func ms2(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RestoreReportLine closes the restore of an environment from a SnapStart
// snapshot, before its first invoke's START (spec §7).
func RestoreReportLine(d time.Duration) string {
	return fmt.Sprintf("RESTORE_REPORT Restore Duration: %.2f ms", ms2(d))
}

// TimeoutLine is the line added when an invoke times out:
// "<RFC3339 ts> <id> Task timed out after N.NN seconds".
func TimeoutLine(at time.Time, requestID string, timeout time.Duration) string {
	return fmt.Sprintf("%s %s Task timed out after %.2f seconds", at.UTC().Format("2006-01-02T15:04:05.000Z"), requestID, timeout.Seconds())
}
