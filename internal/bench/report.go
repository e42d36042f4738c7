package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run; its JSON form is `ignis bench --json`.
type Report struct {
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Machine  Machine     `json:"machine"`
	Warm     []WarmPoint `json:"warm"`
	Cold     []ColdStart `json:"cold"`
	Fleet    []Fleet     `json:"fleet"`
	Notes    []string    `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryMB  uint64 `json:"memoryMB"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"goVersion"`
}

// Latency is one closed-loop run; times in microseconds.
type Latency struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors,omitempty"`
	P50      float64 `json:"p50us"`
	P90      float64 `json:"p90us"`
	P99      float64 `json:"p99us"`
	PerSec   float64 `json:"perSec"`
}

// Ratios are Ignis over the loopback baseline of the same point.
type Ratios struct {
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	PerSec float64 `json:"perSec"`
}

// WarmPoint is one (driver, runtime, payload, concurrency) point.
type WarmPoint struct {
	Driver       string  `json:"driver"`
	Runtime      string  `json:"runtime"`
	PayloadBytes int     `json:"payloadBytes"`
	Concurrency  int     `json:"concurrency"`
	Ignis        Latency `json:"ignis"`
	Baseline     Latency `json:"loopback"`
	Ratio        Ratios  `json:"ratio"`
	CPU          *CPU    `json:"cpu,omitempty"`
}

// CPU is CPU time per warm invoke in milliseconds. ProcessMs is the whole
// bench process (embedded server and load generator); ClientShare is the
// load generator's share of it from a labelled CPU profile; ServerMs the
// rest. AgentMs and HelperMs are the sandboxes' platform processes
// (ignis-agent; setup stages or runsc), FunctionMs the runtimes.
type CPU struct {
	Invokes     int     `json:"invokes"`
	ProcessMs   float64 `json:"processMs"`
	ClientShare float64 `json:"clientShare"`
	ClientMs    float64 `json:"clientMs"`
	ServerMs    float64 `json:"serverMs"`
	AgentMs     float64 `json:"agentMs"`
	HelperMs    float64 `json:"helperMs"`
	PlatformMs  float64 `json:"platformMs"`
	FunctionMs  float64 `json:"functionMs"`
}

// ColdStart is the median of Samples cold starts; Driver "native" is the
// runtime started through an ignis-agent outside any sandbox.
type ColdStart struct {
	Driver  string  `json:"driver"`
	Runtime string  `json:"runtime"`
	Samples int     `json:"samples"`
	GapMs   float64 `json:"gapMs"` // pause before each sample
	TotalMs float64 `json:"totalMs"`
	Phases  *Phases `json:"phases,omitempty"`
	// BeyondNative compares a sandboxed start with the native one of its
	// runtime (nil for native rows, or without one).
	BeyondNative *BeyondNative `json:"beyondNative,omitempty"`
}

// BeyondNative is how much longer (ms, medians) a sandboxed cold start
// took than the same runtime started natively: in total, which charges
// the whole control plane (the client's signing and HTTP, placement, the
// journal) to the sandbox; and in the driver's own part, sandbox create +
// runtime init + first response, the phases a native start also has.
type BeyondNative struct {
	TotalMs  float64 `json:"totalMs"`
	DriverMs float64 `json:"driverMs"`
}

// compareCold fills BeyondNative on every sandboxed cold start that has a
// native one of its runtime, and lists the native rows last.
func (r *Report) compareCold() {
	slices.SortStableFunc(r.Cold, func(a, b ColdStart) int {
		return cmp.Compare(boolInt(a.Driver == "native"), boolInt(b.Driver == "native"))
	})
	native := map[string]ColdStart{}
	for _, c := range r.Cold {
		if c.Driver == "native" {
			native[c.Runtime] = c
		}
	}
	for i, c := range r.Cold {
		n, ok := native[c.Runtime]
		if c.Driver == "native" || !ok {
			continue
		}
		b := &BeyondNative{TotalMs: c.TotalMs - n.TotalMs}
		if c.Phases != nil && n.Phases != nil {
			b.DriverMs = c.Phases.driverMs() - n.Phases.driverMs()
		}
		r.Cold[i].BeyondNative = b
	}
}

// Phases split a cold start (medians, ms). Placement runs from the client's
// send to the worker starting the sandbox (HTTP, SigV4, registry,
// assignment, journal); SandboxCreate from there to the agent's Hello;
// RuntimeInit from sending Init to the sandbox being ready (InitDone, then
// the CPU quota applied), as a native start measures it; FirstResponse
// from then to the client's receipt of the reply.
type Phases struct {
	PlacementMs     float64 `json:"placementMs"`
	CodeFetchMs     float64 `json:"codeFetchMs"`
	SandboxCreateMs float64 `json:"sandboxCreateMs"`
	RuntimeInitMs   float64 `json:"runtimeInitMs"`
	FirstResponseMs float64 `json:"firstResponseMs"`
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *Phases) driverMs() float64 { return p.SandboxCreateMs + p.RuntimeInitMs + p.FirstResponseMs }

// Fleet is the creation rate and idle density of one driver.
type Fleet struct {
	Driver       string  `json:"driver"`
	Created      int     `json:"created"`
	CreatePerSec float64 `json:"createPerSec"`
	CreateSpanMs float64 `json:"createSpanMs"`
	Idle         int     `json:"idle"`
	// MeasuredSandboxes is the number of agents found on the host.
	MeasuredSandboxes int `json:"measuredSandboxes"`
	// Per idle sandbox, MB (PSS for sandbox processes, RSS growth for the
	// server).
	AgentMB    float64 `json:"agentMB"`
	FunctionMB float64 `json:"functionMB"`
	HelperMB   float64 `json:"helperMB"`
	ServerMB   float64 `json:"serverMB"`
	PlatformMB float64 `json:"platformMB"`
	TotalMB    float64 `json:"totalMB"`
}

func newReport(cfg Config) *Report {
	return &Report{Started: time.Now(), Machine: machine()}
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), MemoryMB: procKB("/proc/meminfo", "MemTotal:") >> 20, GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as plain-text tables.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "ignis bench — %s, %d CPUs (%s), %d MB, Linux %s, %s; %s\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), m.CPUs, m.CPUModel, m.MemoryMB, m.Kernel, m.GoVersion,
		r.Finished.Sub(r.Started).Round(time.Second))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "Warm invoke latency (µs) and throughput, Ignis vs a loopback HTTP echo measured right before it")
	fmt.Fprintln(tw, "driver\truntime\tpayload\tconc\tp50\tp90\tp99\tinv/s\tloop p50\tloop p99\tloop req/s\tp50 ×\tp90 ×\tp99 ×\tinv/s ×\t")
	for _, p := range r.Warm {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
			p.Driver, p.Runtime, size(p.PayloadBytes), p.Concurrency, p.Ignis.P50, p.Ignis.P90, p.Ignis.P99, p.Ignis.PerSec,
			p.Baseline.P50, p.Baseline.P99, p.Baseline.PerSec, p.Ratio.P50, p.Ratio.P90, p.Ratio.P99, p.Ratio.PerSec)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var cpus []WarmPoint
	for _, p := range r.Warm {
		if p.CPU != nil {
			cpus = append(cpus, p)
		}
	}
	if len(cpus) > 0 {
		fmt.Fprintln(w, "\nCPU per warm invoke (ms): platform = server (bench process minus its load generator) + agent + helpers")
		fmt.Fprintln(tw, "driver\truntime\tpayload\tconc\tinvokes\tprocess\tclient\tserver\tagent\thelpers\tplatform\tfunction\t")
		for _, p := range cpus {
			c := p.CPU
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n",
				p.Driver, p.Runtime, size(p.PayloadBytes), p.Concurrency, c.Invokes, c.ProcessMs, c.ClientMs, c.ServerMs,
				c.AgentMs, c.HelperMs, c.PlatformMs, c.FunctionMs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(r.Cold) > 0 {
		fmt.Fprintln(w, "\nCold start (ms, median): native = the same runtime through an ignis-agent outside any sandbox; gap = pause before each (0: back to back)")
		fmt.Fprintln(w, "beyond native: total = total − native total; driver = (sandbox create + runtime init + first response) − native's")
		fmt.Fprintln(tw, "driver\truntime\tn\tgap ms\ttotal\tplacement\tcode fetch\tsandbox create\truntime init\tfirst response\tbeyond native: total\tdriver\t")
		for _, c := range r.Cold {
			beyond, driverBeyond := "-", "-"
			if b := c.BeyondNative; b != nil {
				beyond = fmt.Sprintf("%+.1f", b.TotalMs)
				if c.Phases != nil {
					driverBeyond = fmt.Sprintf("%+.1f", b.DriverMs)
				}
			}
			if c.Phases == nil {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f\t-\t-\t-\t-\t-\t%s\t-\t\n", c.Driver, c.Runtime, c.Samples, c.GapMs, c.TotalMs, beyond)
				continue
			}
			ph := c.Phases
			place, fetch := fmt.Sprintf("%.1f", ph.PlacementMs), fmt.Sprintf("%.1f", ph.CodeFetchMs)
			if c.Driver == "native" {
				place, fetch = "-", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f\t%s\t%s\t%.1f\t%.1f\t%.1f\t%s\t%s\t\n", c.Driver, c.Runtime, c.Samples, c.GapMs, c.TotalMs,
				place, fetch, ph.SandboxCreateMs, ph.RuntimeInitMs, ph.FirstResponseMs, beyond, driverBeyond)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(r.Fleet) > 0 {
		fmt.Fprintln(w, "\nSandbox creation rate and idle density (Go echo at 128 MB; MB per idle sandbox: PSS of its processes, server RSS growth)")
		fmt.Fprintln(tw, "driver\tcreated\tready/s\tspan ms\tidle\tagent MB\tfunction MB\thelpers MB\tserver MB\tplatform MB\ttotal MB\t")
		for _, f := range r.Fleet {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", f.Driver, f.Created, f.CreatePerSec, f.CreateSpanMs,
				f.Idle, f.AgentMB, f.FunctionMB, f.HelperMB, f.ServerMB, f.PlatformMB, f.TotalMB)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

func size(b int) string {
	if b >= 1<<10 && b%(1<<10) == 0 {
		return fmt.Sprintf("%d KB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
