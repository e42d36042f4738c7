package worker

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Lambda's CloudWatch text format (spec §7). Fields of REPORT are separated
// by tabs, with a trailing tab.

func startLine(requestID, version string) string {
	return "START RequestId: " + requestID + " Version: " + version
}

func endLine(requestID string) string { return "END RequestId: " + requestID }

func reportLine(requestID string, dur time.Duration, memoryMB int, maxUsedMB uint64, initDur time.Duration) string {
	b := make([]byte, 0, 192)
	b = append(b, "REPORT RequestId: "...)
	b = append(b, requestID...)
	b = append(b, "\tDuration: "...)
	b = strconv.AppendFloat(b, ms(dur), 'f', 2, 64)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, billedMs(dur), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(memoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendUint(b, maxUsedMB, 10)
	b = append(b, " MB\t"...)
	if initDur > 0 {
		b = append(b, "Init Duration: "...)
		b = strconv.AppendFloat(b, ms(initDur), 'f', 2, 64)
		b = append(b, " ms\t"...)
	}
	return string(b)
}

func timeoutLine(now time.Time, requestID string, elapsed time.Duration) string {
	return now.UTC().Format("2006-01-02T15:04:05.000Z") + " " + requestID + " " + timeoutMessage(elapsed)
}

func timeoutMessage(elapsed time.Duration) string {
	return fmt.Sprintf("Task timed out after %.2f seconds", elapsed.Seconds())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// billedMs rounds up to the next millisecond, at least 1 (Lambda bills 1 ms
// granularity since December 2020).
func billedMs(d time.Duration) int64 {
	b := int64(math.Ceil(ms(d)))
	if b < 1 {
		b = 1
	}
	return b
}
