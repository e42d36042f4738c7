package assignment

import (
	"context"
	"fmt"
	"slices"

	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/journal"
)

// Recover rebuilds every partition's table from its journal and reconciles
// it with what the workers report, so that no sandbox is orphaned:
//
//	journal says        worker says      result
//	Ready               has it           idle (keep-alive restarts now)
//	Ready               does not         dropped, journaled destroyed (lost)
//	Creating            has it           destroyed (its init state is unknown)
//	Creating            does not         journaled destroyed (incomplete)
//	Ready/Creating      worker unknown   journaled destroyed (worker-gone)
//	Ready/Creating      unreachable      dead; destroy retried by Reap
//	—                   has it           destroyed (orphan, never journaled)
//
// Then each partition is compacted to a checkpoint of the result. Workers
// asked are the registered ones (feed the fleet first: SetWorker or
// ApplyFleetEvent until fleet.OpSynced) plus every worker the journal
// names. Call Recover once, before the first Acquire.
func (s *Service) Recover(ctx context.Context) error {
	all := make([]int, len(s.parts))
	for i := range all {
		all[i] = i
	}
	return s.RecoverPartitions(ctx, all)
}

// RecoverPartitions is Recover for some partitions only. It is the seam for
// leadership: a node that wins partition p calls RecoverPartitions(ctx,
// []int{p}) before serving it. The partitions' tables must be empty.
func (s *Service) RecoverPartitions(ctx context.Context, ids []int) error {
	tabs := make(map[int]*journal.Table, len(ids))
	workerIDs := s.cap.registered()
	for _, id := range ids {
		if id < 0 || id >= len(s.parts) {
			return fmt.Errorf("recovering partition %d of %d: %w", id, len(s.parts), errdefs.ErrInvalidArgument)
		}
		p := s.parts[id]
		p.mu.Lock()
		empty := len(p.t.byID) == 0
		p.mu.Unlock()
		if !empty {
			return fmt.Errorf("recovering partition %d: table not empty: %w", id, errdefs.ErrConflict)
		}
		t, n, unknown, err := s.journal.Load(ctx, id)
		if err != nil {
			return fmt.Errorf("recovering partition %d: %w", id, err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "journal replayed", "partition", id, "entries", n, "unknown", unknown, "ready", len(t.Ready), "creating", len(t.Creating))
		}
		tabs[id] = t
		for _, r := range t.Ready {
			workerIDs = append(workerIDs, r.WorkerID)
		}
		for _, c := range t.Creating {
			workerIDs = append(workerIDs, c.WorkerID)
		}
	}
	slices.Sort(workerIDs)
	workerIDs = slices.Compact(workerIDs)

	type listing struct {
		gone, unreachable bool
		has               map[string]WorkerSandbox
	}
	lists := make(map[string]*listing, len(workerIDs))
	for _, w := range workerIDs {
		l := &listing{has: map[string]WorkerSandbox{}}
		lists[w] = l
		sbs, err := s.workers.ListSandboxes(ctx, w)
		switch {
		case errdefs.IsNotFound(err):
			l.gone = true
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("recovering: listing worker %s: %w", w, err)
			}
			s.log.WarnContext(ctx, "worker unreachable during recovery; its sandboxes will be destroyed later", "worker", w, "error", err)
			l.unreachable = true
		default:
			for _, sb := range sbs {
				l.has[sb.ID] = sb
			}
		}
	}

	own := make(map[int]bool, len(ids))
	for _, id := range ids {
		own[id] = true
	}
	for _, id := range ids {
		p, t := s.parts[id], tabs[id]
		var incomplete []*sandbox
		for _, r := range sortedReady(t) {
			l := lists[r.WorkerID]
			_, present := l.has[r.SandboxID]
			switch {
			case l.unreachable:
				s.adopt(p, Dead, true, r.SandboxID, r.Function, r.Key, r.WorkerID, r.MemoryMB, r.Handle)
			case present:
				s.adopt(p, Idle, false, r.SandboxID, r.Function, r.Key, r.WorkerID, r.MemoryMB, r.Handle)
				delete(l.has, r.SandboxID)
			default:
				reason := journal.ReasonLost
				if l.gone {
					reason = journal.ReasonWorkerGone
				}
				if err := s.forget(ctx, p, r.SandboxID, reason); err != nil {
					return err
				}
			}
		}
		for _, c := range sortedCreating(t) {
			l := lists[c.WorkerID]
			_, present := l.has[c.SandboxID]
			switch {
			case l.unreachable:
				s.adopt(p, Dead, true, c.SandboxID, c.Function, c.Key, c.WorkerID, c.MemoryMB, nil)
			case present:
				incomplete = append(incomplete, s.adopt(p, Dead, false, c.SandboxID, c.Function, c.Key, c.WorkerID, c.MemoryMB, nil))
				delete(l.has, c.SandboxID)
			default:
				if err := s.forget(ctx, p, c.SandboxID, journal.ReasonIncomplete); err != nil {
					return err
				}
			}
		}
		for _, sb := range incomplete {
			s.retireNow(p, sb, journal.ReasonIncomplete)
		}
	}

	// Orphans: sandboxes of our partitions the journal does not know.
	for _, w := range workerIDs {
		for _, sb := range sortedWorkerSandboxes(lists[w].has) {
			if !own[PartitionOf(sb.Function, len(s.parts))] {
				continue
			}
			s.log.InfoContext(ctx, "destroying orphan sandbox", "worker", w, "sandbox", sb.ID, "key", sb.Key)
			if err := s.workers.DestroySandbox(ctx, w, sb.ID); err != nil && !errdefs.IsNotFound(err) {
				s.log.WarnContext(ctx, "destroying orphan sandbox failed", "worker", w, "sandbox", sb.ID, "error", err)
			}
		}
	}

	for _, id := range ids {
		if err := s.maybeCheckpoint(ctx, s.parts[id], true); err != nil {
			return fmt.Errorf("recovering partition %d: checkpointing: %w", id, err)
		}
	}
	return nil
}

// adopt inserts a recovered sandbox in state st (Idle, or Dead with retry
// when its destroy is left to Reap) and accounts its capacity.
func (s *Service) adopt(p *partition, st State, retry bool, id, fn, key, worker string, memMB int, handle []byte) *sandbox {
	w := s.cap.adopt(worker, memMB, fn)
	sb := &sandbox{id: id, fn: fn, key: key, worker: worker, memMB: memMB, w: w, handle: handle}
	p.mu.Lock()
	p.t.add(sb, st, s.clock.Now())
	sb.retry = retry
	p.mu.Unlock()
	return sb
}

// forget journals a sandbox that recovery drops without destroying.
func (s *Service) forget(ctx context.Context, p *partition, id, reason string) error {
	err := s.journaled(ctx, p, &journal.SandboxDestroyed{SandboxID: id, Reason: reason, At: s.clock.Now()}, func(*table) {})
	if err != nil {
		return fmt.Errorf("recovering partition %d: %w", p.id, err)
	}
	return nil
}

func sortedReady(t *journal.Table) []journal.SandboxReady {
	out := make([]journal.SandboxReady, 0, len(t.Ready))
	for _, r := range t.Ready {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b journal.SandboxReady) int { return cmpString(a.SandboxID, b.SandboxID) })
	return out
}

func sortedCreating(t *journal.Table) []journal.SandboxCreating {
	out := make([]journal.SandboxCreating, 0, len(t.Creating))
	for _, c := range t.Creating {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b journal.SandboxCreating) int { return cmpString(a.SandboxID, b.SandboxID) })
	return out
}

func sortedWorkerSandboxes(m map[string]WorkerSandbox) []WorkerSandbox {
	out := make([]WorkerSandbox, 0, len(m))
	for _, sb := range m {
		out = append(out, sb)
	}
	slices.SortFunc(out, func(a, b WorkerSandbox) int { return cmpString(a.ID, b.ID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
