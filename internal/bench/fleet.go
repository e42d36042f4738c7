package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// fleet measures the sandbox creation rate (CreateN sandboxes started at
// once) and the idle density (memory per idle sandbox with IdleN of them).
//
// Both fire n concurrent invokes of the Go echo that each hold their
// sandbox for hold, so every request needs a sandbox of its own: the
// requests all reach assignment long before the first hold ends.
func (r *runner) fleet(ctx context.Context, c *lambda.Client, t *Target, driver, name string) (Fleet, error) {
	fl := Fleet{Driver: driver}
	// Every process and byte of server RSS that appears from here on
	// belongs to the fleet function's sandboxes.
	var before map[int]procRole
	var rssBefore uint64
	if t.InProcess {
		before = descendants(os.Getpid())
		rssBefore = settledRSS()
	}
	hold := 3 * time.Second
	if r.cfg.CreateN < 50 {
		hold = time.Second
	}
	if r.cfg.CreateN > 0 {
		r.cfg.Progress(fmt.Sprintf("%s: creating %d sandboxes at once", driver, r.cfg.CreateN))
		if t.Phases != nil {
			t.Phases.take()
			t.Phases.Capture(true)
		}
		t0 := time.Now()
		ends, err := holdMany(ctx, c, name, r.cfg.CreateN, hold)
		if t.Phases != nil {
			t.Phases.Capture(false)
		}
		if err != nil {
			return fl, err
		}
		fl.Created = r.cfg.CreateN
		var last time.Time
		if t.Phases != nil {
			n := 0
			for _, rec := range t.Phases.take() {
				if rec.function == name {
					n++
					last = maxTime(last, rec.at)
				}
			}
			fl.Created = n
		} else {
			// Remote: a sandbox was ready about hold before its reply.
			for _, e := range ends {
				last = maxTime(last, e.Add(-hold))
			}
		}
		if span := last.Sub(t0); span > 0 {
			fl.CreatePerSec = float64(fl.Created) / span.Seconds()
			fl.CreateSpanMs = ms(span)
		}
	}

	idle := r.scaledIdle()
	if !t.InProcess || idle == 0 {
		return fl, nil
	}
	r.cfg.Progress(fmt.Sprintf("%s: holding %d idle sandboxes", driver, idle))
	if _, err := holdMany(ctx, c, name, idle, hold); err != nil {
		return fl, err
	}
	time.Sleep(500 * time.Millisecond) // let the last invokes' buffers go
	after := descendants(os.Getpid())
	rssAfter := settledRSS()
	var agentPSS, fnPSS, helperPSS uint64
	newSandboxes := 0
	for pid, p := range after {
		if _, old := before[pid]; old {
			continue
		}
		b := pss(pid)
		switch p.role {
		case roleAgent:
			agentPSS += b
			newSandboxes++
		case roleFunction:
			fnPSS += b
		default:
			helperPSS += b
		}
	}
	fl.Idle = idle
	fl.MeasuredSandboxes = newSandboxes
	if newSandboxes == 0 {
		// gVisor: no agent process on the host; count the sandboxes the
		// two runs needed.
		newSandboxes = max(1, idle, fl.Created)
	}
	per := func(b uint64) float64 { return float64(b) / float64(newSandboxes) / (1 << 20) }
	fl.AgentMB, fl.FunctionMB, fl.HelperMB = per(agentPSS), per(fnPSS), per(helperPSS)
	if rssAfter > rssBefore {
		fl.ServerMB = per(rssAfter - rssBefore)
	}
	fl.TotalMB = fl.AgentMB + fl.FunctionMB + fl.HelperMB + fl.ServerMB
	fl.PlatformMB = fl.AgentMB + fl.HelperMB + fl.ServerMB
	return fl, nil
}

// settledRSS is this process's RSS after a GC that returns freed memory
// to the OS, so that heap garbage does not count as overhead.
func settledRSS() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	return selfRSS()
}

// holdMany sends n concurrent invokes that each hold a sandbox for hold,
// and returns when each reply came.
func holdMany(ctx context.Context, c *lambda.Client, name string, n int, hold time.Duration) ([]time.Time, error) {
	body := []byte(fmt.Sprintf(`{"sleep_ms":%d}`, hold.Milliseconds()))
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: body}
	ends := make([]time.Time, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Invoke(ctx, in)
			ends[i] = time.Now()
			switch {
			case err != nil:
				errs <- err
			case out.FunctionError != nil:
				errs <- fmt.Errorf("function error %s: %.200s", *out.FunctionError, out.Payload)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("bench: holding %d sandboxes of %s: %w", n, name, err)
	}
	return ends, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
