package journal

import (
	"slices"
	"strings"
	"time"
)

// Table is the sandbox table a partition's entries describe: what replay
// rebuilds. It is pure (no IO) and not safe for concurrent use.
type Table struct {
	// Creating holds sandboxes whose creation started but did not finish,
	// by sandbox ID.
	Creating map[string]SandboxCreating
	// Ready holds live sandboxes by sandbox ID.
	Ready map[string]SandboxReady
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{Creating: map[string]SandboxCreating{}, Ready: map[string]SandboxReady{}}
}

// Apply folds one entry into the table. It reports false for entries it
// ignores (Unknown ones).
func (t *Table) Apply(e Entry) bool {
	switch e := e.(type) {
	case *SandboxCreating:
		if _, ok := t.Ready[e.SandboxID]; !ok {
			t.Creating[e.SandboxID] = *e
		}
	case *SandboxReady:
		delete(t.Creating, e.SandboxID)
		t.Ready[e.SandboxID] = *e
	case *SandboxDestroyed:
		delete(t.Creating, e.SandboxID)
		delete(t.Ready, e.SandboxID)
	case *Checkpoint:
		clear(t.Creating)
		clear(t.Ready)
		for _, c := range e.Creating {
			t.Creating[c.SandboxID] = c
		}
		for _, r := range e.Ready {
			t.Ready[r.SandboxID] = r
		}
	default:
		return false
	}
	return true
}

// Checkpoint returns the table as a checkpoint entry, sorted by sandbox ID
// so that equal tables encode equally.
func (t *Table) Checkpoint(at time.Time) *Checkpoint {
	cp := &Checkpoint{At: at}
	for _, c := range t.Creating {
		cp.Creating = append(cp.Creating, c)
	}
	for _, r := range t.Ready {
		cp.Ready = append(cp.Ready, r)
	}
	slices.SortFunc(cp.Creating, func(a, b SandboxCreating) int { return strings.Compare(a.SandboxID, b.SandboxID) })
	slices.SortFunc(cp.Ready, func(a, b SandboxReady) int { return strings.Compare(a.SandboxID, b.SandboxID) })
	return cp
}
