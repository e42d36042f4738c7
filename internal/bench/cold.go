package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/runtimes"
	"github.com/ignis-run/ignis/internal/worker"
)

// coldStarts forces ColdSamples cold starts of function name: each changes
// an environment variable, so $LATEST gets a new revision and no warm
// sandbox matches it. With an in-process server the worker's phase record
// splits each one; otherwise only the total is known.
func (r *runner) coldStarts(ctx context.Context, c *lambda.Client, t *Target, driver, name string, f *function) (ColdStart, error) {
	cs := ColdStart{Driver: driver, Runtime: f.kind}
	body := payload(100)
	var samples []coldSample
	cs.GapMs = ms(r.cfg.ColdGap)
	for i := range r.cfg.ColdSamples {
		if err := pause(ctx, r.cfg.ColdGap); err != nil {
			return cs, err
		}
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(name),
			Environment:  &types.Environment{Variables: map[string]string{"IGNIS_BENCH_COLD": strconv.Itoa(i)}},
		}); err != nil {
			return cs, fmt.Errorf("bench: forcing a cold start of %s: %w", name, err)
		}
		if t.Phases != nil {
			t.Phases.take()
			t.Phases.Capture(true)
		}
		t0 := time.Now()
		err := lambdaInvoker(c, name, body)(ctx)
		t1 := time.Now()
		if t.Phases != nil {
			t.Phases.Capture(false)
		}
		if err != nil {
			return cs, fmt.Errorf("bench: cold invoke of %s: %w", name, err)
		}
		s := coldSample{total: t1.Sub(t0)}
		if t.Phases != nil {
			for _, rec := range t.Phases.take() {
				if rec.function != name {
					continue
				}
				s.phased = true
				s.codeFetch, s.create, s.init = rec.codeFetch, rec.create, rec.init
				if rec.ready > 0 {
					// Init by the worker's clock, from sending Init to the
					// sandbox being ready, as the native start measures it.
					s.init = rec.ready - rec.codeFetch - rec.create
				}
				began := rec.at.Add(-(rec.codeFetch + rec.create + s.init))
				s.placement = max(0, began.Sub(t0))
				s.first = max(0, t1.Sub(rec.at))
			}
		}
		samples = append(samples, s)
	}
	cs.Samples = len(samples)
	cs.TotalMs = medianMs(samples, func(s coldSample) time.Duration { return s.total })
	if len(samples) > 0 && samples[0].phased {
		cs.Phases = &Phases{
			PlacementMs:     medianMs(samples, func(s coldSample) time.Duration { return s.placement }),
			CodeFetchMs:     medianMs(samples, func(s coldSample) time.Duration { return s.codeFetch }),
			SandboxCreateMs: medianMs(samples, func(s coldSample) time.Duration { return s.create }),
			RuntimeInitMs:   medianMs(samples, func(s coldSample) time.Duration { return s.init }),
			FirstResponseMs: medianMs(samples, func(s coldSample) time.Duration { return s.first }),
		}
	}
	return cs, nil
}

type coldSample struct {
	total, placement, codeFetch, create, init, first time.Duration
	phased                                           bool
}

func medianMs[T any](xs []T, f func(T) time.Duration) float64 {
	if len(xs) == 0 {
		return 0
	}
	ds := make([]time.Duration, len(xs))
	for i, x := range xs {
		ds[i] = f(x)
	}
	slices.Sort(ds)
	return ms(ds[len(ds)/2])
}

// nativeColdStarts starts each runtime through a native ignis-agent (no
// sandbox), as internal/agent's benchmarks do: agent exec → Hello (the
// "sandbox create" of a native start), Init → InitDone (runtime init), one
// invoke → Result (first response).
func (r *runner) nativeColdStarts(ctx context.Context, work string) error {
	agent := r.cfg.AgentBinary
	if agent == "" {
		var err error
		if agent, err = worker.LocateAgent(ctx, filepath.Join(work, "bin")); err != nil {
			return fmt.Errorf("bench: native cold start: %w", err)
		}
	}
	runtimeDir := filepath.Join(work, "native-runtime")
	if err := runtimes.Install(runtimeDir); err != nil {
		return fmt.Errorf("bench: native cold start: %w", err)
	}
	for _, f := range r.fns {
		var samples []coldSample
		for i := range r.cfg.ColdSamples {
			if err := pause(ctx, r.cfg.ColdGap); err != nil {
				return err
			}
			s, err := nativeColdStart(ctx, agent, runtimeDir, filepath.Join(work, fmt.Sprintf("native-%s-%d", f.kind, i)), f)
			if err != nil {
				return fmt.Errorf("bench: native cold start of the %s echo: %w", f.kind, err)
			}
			samples = append(samples, s)
		}
		r.rep.Cold = append(r.rep.Cold, ColdStart{
			Driver: "native", Runtime: f.kind, Samples: len(samples), GapMs: ms(r.cfg.ColdGap),
			TotalMs: medianMs(samples, func(s coldSample) time.Duration { return s.total }),
			Phases: &Phases{
				SandboxCreateMs: medianMs(samples, func(s coldSample) time.Duration { return s.create }),
				RuntimeInitMs:   medianMs(samples, func(s coldSample) time.Duration { return s.init }),
				FirstResponseMs: medianMs(samples, func(s coldSample) time.Duration { return s.first }),
			},
		})
	}
	return nil
}

func nativeColdStart(ctx context.Context, agent, runtimeDir, dir string, f *function) (coldSample, error) {
	taskRoot, optRoot := filepath.Join(dir, "task"), filepath.Join(dir, "opt")
	for _, d := range []string{taskRoot, optRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return coldSample{}, err
		}
	}
	defer os.RemoveAll(dir)
	for name, b := range f.files {
		mode := os.FileMode(0o644)
		if name == "bootstrap" {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(taskRoot, name), b, mode); err != nil {
			return coldSample{}, err
		}
	}
	argv, err := runtimes.ResolveAt(runtimeDir, runtimes.DefaultBinDir, f.runtime, f.handler)
	if err != nil {
		return coldSample{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, agent, "-task-root", taskRoot, "-opt-root", optRoot, "-log-level", "warn")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return coldSample{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return coldSample{}, err
	}
	cmd.Stderr = io.Discard
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return coldSample{}, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	w, rd := agentproto.NewWriter(stdin), agentproto.NewReader(stdout)
	next := func() (agentproto.Frame, error) {
		for {
			fr, err := rd.ReadFrame()
			if err != nil || fr.Type != agentproto.TypeLog {
				return fr, err
			}
		}
	}
	if fr, err := next(); err != nil || fr.Type != agentproto.TypeHello {
		return coldSample{}, fmt.Errorf("waiting for hello: %v %v", fr.Type, err)
	}
	t1 := time.Now()
	env := runtimes.Env(runtimes.EnvInput{FunctionName: "ignisbench-native", MemoryMB: 128, Handler: f.handler,
		Runtime: f.runtime, TaskRoot: taskRoot, RuntimeDir: runtimeDir})
	if err := w.Init(agentproto.Init{Bootstrap: argv, Env: env, Dir: taskRoot, FunctionName: "ignisbench-native",
		FunctionVersion: "$LATEST", Handler: f.handler, RuntimeAPIAddr: "127.0.0.1:0", InitTimeoutMs: 20000}); err != nil {
		return coldSample{}, err
	}
	if fr, err := next(); err != nil || fr.Type != agentproto.TypeInitDone {
		return coldSample{}, fmt.Errorf("waiting for init: %v %s %v", fr.Type, fr.Body, err)
	}
	t2 := time.Now()
	if err := w.Invoke(agentproto.Invoke{RequestID: "00000000-0000-4000-8000-000000000001", DeadlineMs: time.Now().Add(30 * time.Second).UnixMilli(),
		InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:ignisbench-native", Payload: payload(100)}); err != nil {
		return coldSample{}, err
	}
	if fr, err := next(); err != nil || fr.Type != agentproto.TypeResult {
		return coldSample{}, fmt.Errorf("waiting for the result: %v %v", fr.Type, err)
	}
	t3 := time.Now()
	return coldSample{total: t3.Sub(t0), create: t1.Sub(t0), init: t2.Sub(t1), first: t3.Sub(t2)}, nil
}

// pause waits d, or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
