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
		if t.rev == 0 {
			_, err = r.s.concurrency.Create(ctx, keyReserved, mustJSON(t.m))
		} else {
			_, err = r.s.concurrency.Update(ctx, keyReserved, mustJSON(t.m), t.rev)
		}
		if isRevisionMismatch(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing reserved concurrency: %w", err)
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

// WatchReservations sends every function's reserved concurrency now, then
// again after each change, until ctx ends. The invoke path applies them to
// its limits: a reservation shrinks the pool every other function shares,
// so it must be known before any invoke, not learned per function.
func (r *Registry) WatchReservations(ctx context.Context) (<-chan map[string]int, error) {
	w, err := r.s.concurrency.Watch(ctx, keyReserved)
	if err != nil {
		return nil, fmt.Errorf("watching reserved concurrency: %w", err)
	}
	out := make(chan map[string]int, 1)
	go func() {
		defer close(out)
		defer w.Stop()
		sentInitial := false
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				m := map[string]int{}
				if e == nil { // end of the initial values
					if sentInitial {
						continue
					}
				} else if e.Operation() == jetstream.KeyValuePut {
					if err := json.Unmarshal(e.Value(), &m); err != nil {
						r.log.Error("decoding reserved concurrency", "err", err)
						continue
					}
				}
				sentInitial = true
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
