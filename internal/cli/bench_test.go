package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/bench"
)

// TestBench_QuickEmbedded runs `ignis bench --embedded --quick --json` end
// to end (build the Go echo, start a jail server, every measurement) and
// checks the report's shape, never absolute times.
func TestBench_QuickEmbedded(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--embedded", "--quick", "--json", "--runtimes", "go,python", "--concurrency", "1,4", "--duration", "150ms"}
	if code := Main(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decoding the report: %v\n%s", err, stdout.String())
	}
	if want := 2 * 2 * 2; len(rep.Warm) != want {
		t.Fatalf("%d warm points, want %d", len(rep.Warm), want)
	}
	for _, p := range rep.Warm {
		if p.Ignis.Requests == 0 || p.Baseline.Requests == 0 || p.Ratio.P50 <= 0 {
			t.Errorf("warm point %+v has no measurements", p)
		}
		if p.Runtime == bench.RuntimeGo && p.PayloadBytes == 100 && p.CPU == nil {
			t.Errorf("go 100 B concurrency %d has no CPU split", p.Concurrency)
		}
	}
	drivers := map[string]int{}
	for _, c := range rep.Cold {
		drivers[c.Driver]++
		if c.TotalMs <= 0 || c.Phases == nil {
			t.Errorf("cold start %+v lacks a total or phases", c)
		}
	}
	if drivers["jail"] != 2 || drivers["native"] != 2 {
		t.Errorf("cold starts per driver = %v, want 2 jail and 2 native", drivers)
	}
	if len(rep.Fleet) != 1 || rep.Fleet[0].Created == 0 || rep.Fleet[0].CreatePerSec <= 0 || rep.Fleet[0].MeasuredSandboxes == 0 {
		t.Errorf("fleet = %+v", rep.Fleet)
	}

	// The table renders from the same report.
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !bytes.Contains(table.Bytes(), []byte("Cold start")) {
		t.Errorf("table: %v\n%s", err, table.String())
	}
}

func TestBench_Usage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"bench"}, &stdout, &stderr); code != 2 {
		t.Fatalf("bench without --embedded or --endpoint: exit %d, want 2 (%s)", code, stderr.String())
	}
}
