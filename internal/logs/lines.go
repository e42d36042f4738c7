package logs

import (
	"fmt"
	"math"
	"strings"
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
}

// Line renders the REPORT line: TAB-separated fields, trailing TAB, Init
// Duration last, Billed Duration rounded up to the millisecond.
func (r Report) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		r.RequestID, ms2(r.Duration), BilledMillis(r.Duration), r.MemorySizeMB, r.MaxMemoryUsed)
	if r.InitDuration > 0 {
		fmt.Fprintf(&b, "Init Duration: %.2f ms\t", ms2(r.InitDuration))
	}
	return b.String()
}

// BilledMillis is d rounded up to a whole millisecond (at least 1).
func BilledMillis(d time.Duration) int64 {
	return max(1, int64(math.Ceil(float64(d)/float64(time.Millisecond))))
}

func ms2(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TimeoutLine is the line added when an invoke times out:
// "<RFC3339 ts> <id> Task timed out after N.NN seconds".
func TimeoutLine(at time.Time, requestID string, timeout time.Duration) string {
	return fmt.Sprintf("%s %s Task timed out after %.2f seconds", at.UTC().Format("2006-01-02T15:04:05.000Z"), requestID, timeout.Seconds())
}
