package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// reservationTable is the value of the single key "reserved": every
// function's reserved concurrency in one document, so the account-wide
// invariant (at least MinUnreserved left unreserved) is kept by one
// compare-and-set, even across processes.
type reservationTable struct {
	m   map[string]int
	rev uint64 // 0: key absent
}

func (r *Registry) reservations(ctx context.Context) (reservationTable, error) {
	t := reservationTable{m: map[string]int{}}
	rev, err := getJSON(ctx, r.s.concurrency, keyReserved, &t.m)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return reservationTable{m: map[string]int{}}, nil
	}
	if err != nil {
		return reservationTable{}, fmt.Errorf("reading reserved concurrency: %w", err)
	}
	if t.m == nil {
		t.m = map[string]int{}
	}
	t.rev = rev
	return t, nil
}

func (r *Registry) reservedFor(ctx context.Context, name string) (*int, error) {
	t, err := r.reservations(ctx)
	if err != nil {
		return nil, err
	}
	if n, ok := t.m[name]; ok {
		return &n, nil
	}
	return nil, nil
}

// setReserved sets (n != nil) or clears the reservation of name.
func (r *Registry) setReserved(ctx context.Context, name string, n *int) error {
	for range casAttempts {
		t, err := r.reservations(ctx)
		if err != nil {
			return err
		}
		if n == nil {
			if _, ok := t.m[name]; !ok {
				return nil
			}
			delete(t.m, name)
		} else {
			others := 0
			for k, v := range t.m {
				if k != name {
					others += v
				}
			}
			if others+*n > r.cfg.AccountConcurrency-MinUnreserved {
				return invalidf("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", MinUnreserved)
			}
			t.m[name] = *n
		}
		var rev uint64
		if t.rev == 0 {
			rev, err = r.s.concurrency.Create(ctx, keyReserved, mustJSON(t.m))
		} else {
			rev, err = r.s.concurrency.Update(ctx, keyReserved, mustJSON(t.m), t.rev)
		}
		if isRevisionMismatch(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing reserved concurrency: %w", err)
		}
		for {
			cur := r.reservedWritten.Load()
			if cur >= rev || r.reservedWritten.CompareAndSwap(cur, rev) {
				break
			}
		}
		return nil
	}
	return conflictf("Too many concurrent concurrency updates; retry.")
}

// PutFunctionConcurrency reserves n concurrent executions for fn.
func (r *Registry) PutFunctionConcurrency(ctx context.Context, fn string, n int) error {
	name, err := unqualified(fn)
	if err != nil {
		return err
	}
	if n < 0 {
		return constraint(n, "reservedConcurrentExecutions", "Member must have value greater than or equal to 0")
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return err
	}
	if err := r.setReserved(ctx, name, &n); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "reserved concurrency set", "function", name, "reserved", n)
	return nil
}

// GetFunctionConcurrency returns fn's reservation, nil when unset.
func (r *Registry) GetFunctionConcurrency(ctx context.Context, fn string) (*int, error) {
	name, err := unqualified(fn)
	if err != nil {
		return nil, err
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return nil, err
	}
	return r.reservedFor(ctx, name)
}

// DeleteFunctionConcurrency removes fn's reservation.
func (r *Registry) DeleteFunctionConcurrency(ctx context.Context, fn string) error {
	name, err := unqualified(fn)
	if err != nil {
		return err
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return err
	}
	return r.setReserved(ctx, name, nil)
}

// Reservations is every function's reserved concurrency as of Revision,
// the KV revision of the reservations (0 before the first write).
type Reservations struct {
	Revision uint64
	Reserved map[string]int
}

// ReservationsWritten is the revision of this Registry's last reservation
// write (0: none). A follower of WatchReservations that has applied this
// revision has seen every change made through this Registry: the invoke
// path waits for that, so a throttle set by PutFunctionConcurrency applies
// to the next invoke on the same server.
func (r *Registry) ReservationsWritten() uint64 { return r.reservedWritten.Load() }

// WatchReservations sends every function's reserved concurrency now, then
// again after each change, until ctx ends. The invoke path applies them to
// its limits: a reservation shrinks the pool every other function shares,
// so it must be known before any invoke, not learned per function.
func (r *Registry) WatchReservations(ctx context.Context) (<-chan Reservations, error) {
	w, err := r.s.concurrency.Watch(ctx, keyReserved)
	if err != nil {
		return nil, fmt.Errorf("watching reserved concurrency: %w", err)
	}
	out := make(chan Reservations, 1)
	go func() {
		defer close(out)
		sentInitial := false
		forEachUpdate(ctx, w, func(e jetstream.KeyValueEntry) bool {
			res := Reservations{Reserved: map[string]int{}}
			if e == nil { // end of the initial values
				if sentInitial {
					return true
				}
			} else {
				res.Revision = e.Revision()
				if e.Operation() == jetstream.KeyValuePut {
					if err := json.Unmarshal(e.Value(), &res.Reserved); err != nil {
						r.log.Error("decoding reserved concurrency", "err", err)
						return true
					}
				}
			}
			sentInitial = true
			select {
			case out <- res:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return out, nil
}
