package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
	"github.com/ignis-run/ignis/internal/runtimeapi"
)

// init runs the init phase and answers InitDone or InitError. It returns an
// error only when the agent cannot go on (the worker is gone).
func (a *Agent) init(ctx context.Context, m agentproto.Init) error {
	start := time.Now()
	initErr := func(errorType string, body []byte) error {
		a.initDone = true
		a.log.Info("init failed", "errorType", errorType)
		return a.out.InitError(agentproto.InitError{ErrorType: errorType, Body: body, DurationNs: time.Since(start).Nanoseconds()})
	}
	var deadline <-chan time.Time
	if m.InitTimeoutMs > 0 {
		t := time.NewTimer(time.Duration(m.InitTimeoutMs) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
	}
	timeoutBody := func() []byte {
		return lambdaerr.Body(lambdaerr.SandboxTimedout, fmt.Sprintf("Init phase timed out after %.2f seconds", time.Since(start).Seconds()))
	}

	addr := m.RuntimeAPIAddr
	if addr == "" {
		addr = "127.0.0.1:9001"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return initErr(lambdaerr.SandboxFailure, lambdaerr.Body(lambdaerr.SandboxFailure, "listening for the Runtime API: "+err.Error()))
	}
	a.api = runtimeapi.New(runtimeapi.Config{
		FunctionName:    m.FunctionName,
		FunctionVersion: m.FunctionVersion,
		Handler:         m.Handler,
		Logger:          a.log,
		Hooks: runtimeapi.Hooks{
			Result: a.result,
			InitError: func(errorType string, body []byte) {
				select {
				case a.initErrs <- initFailure{errorType, append([]byte(nil), body...)}:
				default:
				}
			},
			RestoreError: func(errorType string, body []byte) {
				select {
				case a.restoreErrs <- initFailure{errorType, append([]byte(nil), body...)}:
				default:
				}
			},
			ExtensionExitError: func(name, errorType string, body []byte) {
				a.notice("extension %s exit error %s: %s", name, errorType, body)
			},
			Registered: func(string) {
				select {
				case a.registered <- struct{}{}:
				default:
				}
			},
		},
	})
	go func() {
		if err := a.api.Serve(ln); err != nil {
			a.log.Error("runtime api stopped", "err", err)
		}
	}()
	a.apiReady.Store(a.api)
	// Tests listen on port 0: the runtime must learn the real address.
	env := setEnv(m.Env, "AWS_LAMBDA_RUNTIME_API", ln.Addr().String())
	dir := m.Dir
	if dir == "" {
		dir = a.opts.TaskRoot
	}

	// Extensions first: each must register before the runtime starts.
	paths, err := a.extensionPaths()
	if err != nil {
		return initErr(lambdaerr.ExtensionLaunchError, lambdaerr.Body(lambdaerr.ExtensionLaunchError, err.Error()))
	}
	extEnv := extensionEnv(env)
	for _, p := range paths {
		proc, err := a.sup.start(filepath.Base(p), []string{p}, extEnv, dir, a.logLine)
		if err != nil {
			return initErr(lambdaerr.ExtensionLaunchError, lambdaerr.Body(lambdaerr.ExtensionLaunchError, err.Error()))
		}
		a.exts = append(a.exts, proc)
	}
	for a.api.Registered() < len(a.exts) {
		select {
		case <-a.registered:
		case p := <-a.sup.exits:
			a.exited(p)
			return initErr(lambdaerr.ExtensionCrash, lambdaerr.Body(lambdaerr.ExtensionCrash, fmt.Sprintf("extension %s exited before registering: %s", p.name, statusString(p.status))))
		case f := <-a.initErrs:
			return initErr(f.errorType, f.body)
		case <-deadline:
			return initErr(lambdaerr.SandboxTimedout, timeoutBody())
		case <-a.stdinDone:
			return errWorkerGone
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.api.CloseRegistration()

	argv := m.Bootstrap
	if len(argv) == 0 {
		var msg string
		argv, msg = a.findBootstrap()
		if argv == nil {
			return initErr(lambdaerr.RuntimeInvalidEntrypoint, lambdaerr.Body(lambdaerr.RuntimeInvalidEntrypoint, msg))
		}
	} else if !strings.Contains(argv[0], "/") {
		// os.StartProcess does not search PATH; resolve a bare name here.
		if p, err := exec.LookPath(argv[0]); err == nil {
			argv = append([]string{p}, argv[1:]...)
		}
	}
	a.runtime, err = a.sup.start("runtime", argv, env, dir, a.logLine)
	if err != nil {
		return initErr(lambdaerr.RuntimeInvalidEntrypoint, lambdaerr.Body(lambdaerr.RuntimeInvalidEntrypoint, err.Error()))
	}
	a.log.Debug("runtime started", "argv", argv, "pid", a.runtime.pid)

	for {
		select {
		case <-a.api.InitReady():
			a.initDone = true
			return a.out.InitDone(agentproto.InitDone{DurationNs: time.Since(start).Nanoseconds()})
		case f := <-a.initErrs:
			return initErr(f.errorType, f.body)
		case p := <-a.sup.exits:
			if p != a.runtime {
				a.exited(p)
				return initErr(lambdaerr.ExtensionCrash, lambdaerr.Body(lambdaerr.ExtensionCrash, fmt.Sprintf("extension %s exited during init: %s", p.name, statusString(p.status))))
			}
			// The runtime posts /init/error before it exits: prefer that report.
			select {
			case f := <-a.initErrs:
				err = initErr(f.errorType, f.body)
			default:
				err = initErr(lambdaerr.RuntimeExitError, lambdaerr.Body(lambdaerr.RuntimeExitError, "Runtime exited with error: "+statusString(p.status)))
			}
			a.exited(p)
			return err
		case <-deadline:
			return initErr(lambdaerr.SandboxTimedout, timeoutBody())
		case <-a.stdinDone:
			return errWorkerGone
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// findBootstrap searches <task>/bootstrap then <opt>/bootstrap for an
// executable file. On failure it returns nil and Lambda's message.
func (a *Agent) findBootstrap() ([]string, string) {
	cands := []string{filepath.Join(a.opts.TaskRoot, "bootstrap"), filepath.Join(a.opts.OptRoot, "bootstrap")}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return []string{c}, ""
		}
	}
	return nil, fmt.Sprintf("Couldn't find valid bootstrap(s): [%s]", strings.Join(cands, " "))
}

// extensionPaths lists the executables in <opt>/extensions, sorted.
func (a *Agent) extensionPaths() ([]string, error) {
	dir := filepath.Join(a.opts.OptRoot, "extensions")
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing extensions: %w", err)
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	if len(out) > runtimeapi.MaxExtensions {
		return nil, fmt.Errorf("too many extensions: %d (max %d)", len(out), runtimeapi.MaxExtensions)
	}
	return out, nil
}
