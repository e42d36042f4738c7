package placement_test

// Script commands (testdata/*.txt):
//
//	workers                         replace the fleet; one worker per input line:
//	  ID mem=MB [alloc=MB] [cpu=MILLIS] [sandboxes=N] [inflight=N]
//	     [state=ready|draining|unhealthy] [hb=AGE] [fn=NAME:N,NAME:N]
//	config [stale=DUR] [sat=N] [spread=N] [pack=W] [load=W] [spreadw=W]
//	advance DUR                     move the clock forward
//	place mem=MB [fn=NAME] [exclude=ID,ID] [commit]
//	                                 print the chosen ID or "fail: <reason>";
//	                                 commit allocates the sandbox on the winner
//	explain mem=MB [fn=NAME]        print every candidate's scores, best first
//	release ID mem=MB [fn=NAME]     undo one allocation on a worker

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/placement"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type scriptWorker struct {
	placement.Worker
	fns map[string]int
}

type harness struct {
	cfg     placement.Config
	now     time.Time
	workers []*scriptWorker
}

func TestPlacement_Scripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			h := &harness{cfg: placement.DefaultConfig(), now: epoch}
			runScript(t, f, h.run)
		})
	}
}

func atoi(t *testing.T, c *scriptCase, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("line %d: %v", c.Line, err)
	}
	return n
}

func dur(t *testing.T, c *scriptCase, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("line %d: %v", c.Line, err)
	}
	return d
}

func (h *harness) run(t *testing.T, c *scriptCase) string {
	switch c.Cmd {
	case "workers":
		h.workers = nil
		for _, l := range c.Input {
			f := strings.Fields(l)
			w := &scriptWorker{Worker: placement.Worker{ID: f[0], CPUMillis: 1000, LastHeartbeat: h.now}, fns: map[string]int{}}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "mem":
					w.MemoryMB = atoi(t, c, v)
				case "alloc":
					w.AllocatedMB = atoi(t, c, v)
				case "cpu":
					w.CPUMillis = atoi(t, c, v)
				case "sandboxes":
					w.Sandboxes = atoi(t, c, v)
				case "inflight":
					w.InFlight = atoi(t, c, v)
				case "hb":
					w.LastHeartbeat = h.now.Add(-dur(t, c, v))
				case "state":
					w.State = map[string]placement.State{"ready": placement.Ready, "draining": placement.Draining, "unhealthy": placement.Unhealthy}[v]
				case "fn":
					for _, p := range strings.Split(v, ",") {
						name, n, _ := strings.Cut(p, ":")
						w.fns[name] = atoi(t, c, n)
					}
				default:
					t.Fatalf("line %d: unknown worker field %q", c.Line, k)
				}
			}
			h.workers = append(h.workers, w)
		}
		return ""
	case "config":
		for _, a := range c.Args {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "stale":
				h.cfg.StaleAfter = dur(t, c, v)
			case "sat":
				h.cfg.SaturationPerCPU = atoi(t, c, v)
			case "spread":
				h.cfg.SpreadPenalty = atoi(t, c, v)
			case "pack":
				h.cfg.PackWeight = atoi(t, c, v)
			case "load":
				h.cfg.LoadWeight = atoi(t, c, v)
			case "spreadw":
				h.cfg.SpreadWeight = atoi(t, c, v)
			default:
				t.Fatalf("line %d: unknown config %q", c.Line, k)
			}
		}
		if err := h.cfg.Validate(); err != nil {
			return "error: " + err.Error()
		}
		return ""
	case "advance":
		h.now = h.now.Add(dur(t, c, c.Args[0]))
		return ""
	case "place", "explain":
		req := h.request(t, c)
		ws := h.snapshot(req.Function)
		if c.Cmd == "explain" {
			var b strings.Builder
			for _, s := range placement.Explain(&h.cfg, ws, req, h.now) {
				fmt.Fprintf(&b, "%s total=%d pack=%d load=%d spread=%d sandboxes=%d\n", s.ID, s.Total, s.Pack, s.Load, s.Spread, s.Sandboxes)
			}
			return b.String()
		}
		i, err := placement.Pick(&h.cfg, ws, req, h.now)
		if err != nil {
			return "fail: " + err.Error()
		}
		if _, ok := c.Arg("commit"); ok {
			h.alloc(h.workers[i], req.MemoryMB, req.Function, 1)
		}
		return ws[i].ID
	case "release":
		req := h.request(t, c)
		for _, w := range h.workers {
			if w.ID == c.Args[0] {
				h.alloc(w, -req.MemoryMB, req.Function, -1)
				return ""
			}
		}
		t.Fatalf("line %d: no worker %s", c.Line, c.Args[0])
	}
	t.Fatalf("line %d: unknown command %q", c.Line, c.Cmd)
	return ""
}

func (h *harness) request(t *testing.T, c *scriptCase) placement.Request {
	var req placement.Request
	if v, ok := c.Arg("mem"); ok {
		req.MemoryMB = atoi(t, c, v)
	}
	req.Function, _ = c.Arg("fn")
	if v, ok := c.Arg("exclude"); ok {
		req.Exclude = strings.Split(v, ",")
	}
	return req
}

func (h *harness) snapshot(fn string) []placement.Worker {
	out := make([]placement.Worker, len(h.workers))
	for i, w := range h.workers {
		out[i] = w.Worker
		out[i].SameFunction = w.fns[fn]
	}
	return out
}

func (h *harness) alloc(w *scriptWorker, mem int, fn string, n int) {
	w.AllocatedMB += mem
	w.Sandboxes += n
	if fn != "" {
		w.fns[fn] += n
	}
}
