package assignment_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/assignment"
	"github.com/ignis-run/ignis/internal/assignment/assignmenttest"
	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/embednats"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/journal"
	"github.com/ignis-run/ignis/internal/placement/fleet"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type env struct {
	t       testing.TB
	srv     *embednats.Server
	journal *journal.Journal
	workers *assignmenttest.Workers
	clock   *clock.Fake
	svc     *assignment.Service
	cfg     assignment.Config
}

// newEnv starts a real embedded JetStream, a journal on it, a fake fleet of
// workers w1 and w2 (4096 MB each) and a Service. mod may change the config.
func newEnv(t testing.TB, mod func(*assignment.Config)) *env {
	t.Helper()
	e := &env{t: t, srv: natstest.Start(t, ""), workers: assignmenttest.New("w1", "w2"), clock: clock.NewFake(epoch)}
	e.openJournal()
	e.cfg = assignment.DefaultConfig()
	e.cfg.Partitions = 4
	e.cfg.Clock = e.clock
	e.cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	var n atomic.Int64
	e.cfg.NewSandboxID = func() string { return fmt.Sprintf("sb-%d", n.Add(1)) }
	if mod != nil {
		mod(&e.cfg)
	}
	e.svc = e.newService()
	return e
}

func (e *env) openJournal() {
	j, err := journal.Open(context.Background(), e.srv.JetStream(), journal.DefaultConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	e.journal = j
}

func (e *env) newService() *assignment.Service {
	e.t.Helper()
	s, err := assignment.New(e.cfg, e.journal, e.workers)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range []string{"w1", "w2"} {
		s.SetWorker(fleet.Registration{ID: id, MemoryMB: 4096, CPUMillis: 2000, Heartbeat: e.clock.Now()})
	}
	e.t.Cleanup(s.Wait)
	return s
}

func req(fn string, mem int) assignment.Request {
	return assignment.Request{Function: fn, Key: fn + ":1", MemoryMB: mem}
}

func (e *env) acquire(r assignment.Request) assignment.Lease {
	e.t.Helper()
	l, err := e.svc.Acquire(context.Background(), r)
	if err != nil {
		e.t.Fatalf("Acquire(%s): %v", r.Key, err)
	}
	return l
}

func (e *env) release(l assignment.Lease, out assignment.Outcome) {
	e.t.Helper()
	if err := e.svc.Release(l, out); err != nil {
		e.t.Fatalf("Release(%s): %v", l.SandboxID, err)
	}
}

// states returns "id=state" for every sandbox in the service.
func (e *env) states() map[string]string {
	out := map[string]string{}
	for _, s := range e.svc.Snapshot() {
		out[s.ID] = s.State.String()
	}
	return out
}

// journaled returns the live sandboxes the journal describes, by partition
// union: "id" → "ready"/"creating".
func (e *env) journaled() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	if err := e.journal.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	for p := range e.cfg.Partitions {
		t, _, _, err := e.journal.Load(context.Background(), p)
		if err != nil {
			e.t.Fatal(err)
		}
		for id := range t.Ready {
			out[id] = "ready"
		}
		for id := range t.Creating {
			out[id] = "creating"
		}
	}
	return out
}

func newWorkers(ids ...string) *assignmenttest.Workers { return assignmenttest.New(ids...) }
