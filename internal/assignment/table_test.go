package assignment

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTable_Events feeds the pure table a sequence of events and times and
// checks the resulting idle order, leases and reaping.
func TestTable_Events(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		run  func(tb *table) []string
		want []string
	}{
		{name: "MRU lease, oldest reaped", run: func(tb *table) []string {
			a, b := &sandbox{id: "a", key: "k"}, &sandbox{id: "b", key: "k"}
			tb.add(a, Idle, t0)
			tb.add(b, Idle, t0.Add(time.Minute))
			got := []string{tb.takeIdle("k").id} // b: most recently used
			got = append(got, ids(tb.reap(t0.Add(10*time.Minute), 10*time.Minute, nil))...)
			return append(got, a.state.String())
		}, want: []string{"b", "a", "dead"}},
		{name: "stale lease rejected", run: func(tb *table) []string {
			a := &sandbox{id: "a", key: "k"}
			tb.add(a, Initializing, t0)
			gen, _ := tb.ready(a, nil)
			_, ok1 := tb.release(a, gen, OutcomeOK, t0)
			_, ok2 := tb.release(a, gen, OutcomeOK, t0)
			return []string{a.state.String(), boolS(ok1), boolS(ok2)}
		}, want: []string{"idle", "true", "false"}},
		{name: "idle cap evicts the oldest", run: func(tb *table) []string {
			a, b := &sandbox{id: "a", key: "k"}, &sandbox{id: "b", key: "k"}
			tb.add(a, Initializing, t0)
			tb.add(b, Initializing, t0)
			ga, _ := tb.ready(a, nil)
			gb, _ := tb.ready(b, nil)
			tb.release(a, ga, OutcomeOK, t0)
			tb.release(b, gb, OutcomeOK, t0.Add(time.Second))
			v, _ := tb.release(&sandbox{}, 0, OutcomeOK, t0) // no-op
			_ = v
			return []string{a.state.String(), b.state.String()}
		}, want: []string{"dead", "idle"}},
		{name: "bad outcome kills, ready after kill refused", run: func(tb *table) []string {
			a, b := &sandbox{id: "a", key: "k"}, &sandbox{id: "b", key: "k"}
			tb.add(a, Initializing, t0)
			ga, _ := tb.ready(a, nil)
			tb.release(a, ga, OutcomeTimeout, t0)
			tb.add(b, Initializing, t0)
			tb.kill(b)
			_, ok := tb.ready(b, nil)
			tb.remove(a)
			tb.remove(b)
			return []string{a.state.String(), boolS(ok), itoa(len(tb.byID)), itoa(len(tb.pools))}
		}, want: []string{"dead", "false", "0", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, tt.run(newTable(1))); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func ids(sbs []*sandbox) []string {
	var out []string
	for _, sb := range sbs {
		out = append(out, sb.id)
	}
	return out
}

func boolS(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func itoa(n int) string { return string(rune('0' + n)) }
