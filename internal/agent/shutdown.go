package agent

import (
	"syscall"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// Shutdown budgets (spec §4, §6).
const (
	defaultShutdownBudget = 2000 * time.Millisecond
	runtimeTermGrace      = 300 * time.Millisecond
)

// shutdown stops the runtime and extensions as Lambda does, answers
// ShutdownDone and returns nil.
func (a *Agent) shutdown(m agentproto.Shutdown) error {
	a.shuttingDown.Store(true)
	deadline := time.Now().Add(defaultShutdownBudget)
	if m.DeadlineMs > 0 {
		deadline = time.UnixMilli(m.DeadlineMs)
	}
	reason := m.Reason
	if reason == "" {
		reason = "spindown"
	}
	extensions := 0
	if a.api != nil {
		extensions = a.api.Registered()
	}
	if rt := a.runtime; rt != nil && !rt.exited() {
		// The runtime gets SIGTERM (and a grace period) only when an
		// extension could have asked for it; otherwise it is killed at once.
		if extensions > 0 {
			rt.signal(syscall.SIGTERM)
			waitUntil(rt.done, minTime(deadline, time.Now().Add(runtimeTermGrace)))
		}
		rt.signal(syscall.SIGKILL)
	}
	if a.api != nil && extensions > 0 {
		a.api.Shutdown(reason, deadline.UnixMilli())
	}
	for _, p := range a.exts {
		waitUntil(p.done, deadline)
	}
	a.sup.killAll()
	// Let the reaper collect what was killed so no zombie outlives us.
	final := time.Now().Add(time.Second)
	if a.runtime != nil {
		waitUntil(a.runtime.done, final)
	}
	for _, p := range a.exts {
		waitUntil(p.done, final)
	}
	// Flush the last output (e.g. an extension's goodbye) before the answer.
	for _, p := range append([]*process{a.runtime}, a.exts...) {
		if p != nil {
			waitPumps(p, 200*time.Millisecond)
		}
	}
	if err := a.out.ShutdownDone(); err != nil {
		a.log.Error("sending shutdown done", "err", err)
	}
	return nil
}

// waitUntil waits for ch to close or t to pass.
func waitUntil(ch <-chan struct{}, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-ch:
		default:
		}
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
