package assignment

import (
	"fmt"
	"sync"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// limiter counts in-flight invokes (including those waiting for a cold
// start) against the account limit and per-function reservations:
//
//   - a function with a reservation r never has more than r in flight
//     (r = 0 throttles every invoke);
//   - other functions share the unreserved pool: account limit minus the
//     sum of all reservations.
//
// It is shared by every partition of the process. When partitions are led
// by different nodes, the account-wide pool needs a shared counter (a later
// issue); reservations are per function and so stay with its partition.
type limiter struct {
	mu sync.Mutex
	// account is the account concurrency limit. Guarded by mu.
	account int
	// reservedSum is the sum of reservations. Guarded by mu.
	reservedSum int
	// unreservedInUse counts in-flight invokes of functions without a
	// reservation. Guarded by mu.
	unreservedInUse int
	// fns holds per-function state, created on first use. Guarded by mu.
	fns map[string]*fnConcurrency
}

type fnConcurrency struct {
	reserved    int
	hasReserved bool
	inFlight    int
}

func newLimiter(account int) *limiter {
	return &limiter{account: account, fns: map[string]*fnConcurrency{}}
}

// fnLocked returns fn's entry, creating it.
// Preconditions: l.mu is held.
func (l *limiter) fnLocked(fn string) *fnConcurrency {
	c := l.fns[fn]
	if c == nil {
		c = &fnConcurrency{}
		l.fns[fn] = c
	}
	return c
}

func (l *limiter) acquire(fn string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.fnLocked(fn)
	if c.hasReserved {
		if c.inFlight >= c.reserved {
			return &ThrottleError{Reason: ReasonReservedFunctionConcurrentInvocationLimitExceeded, Function: fn, Limit: c.reserved}
		}
		c.inFlight++
		return nil
	}
	pool := max(l.account-l.reservedSum, 0)
	if l.unreservedInUse >= pool {
		return &ThrottleError{Reason: ReasonConcurrentInvocationLimitExceeded, Function: fn, Limit: pool}
	}
	c.inFlight++
	l.unreservedInUse++
	return nil
}

func (l *limiter) release(fn string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.fns[fn]
	if c == nil || c.inFlight == 0 {
		return // unbalanced release: a bug elsewhere; never go negative
	}
	c.inFlight--
	if !c.hasReserved {
		l.unreservedInUse--
	}
}

func (l *limiter) setAccount(n int) error {
	if n <= 0 {
		return fmt.Errorf("account concurrency %d: %w", n, errdefs.ErrInvalidArgument)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.account = n
	return nil
}

// setReserved sets (n >= 0) or clears (n < 0) fn's reservation. In-flight
// invokes move between the pools, so a change never loses count; the new
// limit applies to the next acquire.
func (l *limiter) setReserved(fn string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.fnLocked(fn)
	if c.hasReserved {
		l.reservedSum -= c.reserved
	} else {
		l.unreservedInUse -= c.inFlight
	}
	if n < 0 {
		c.hasReserved, c.reserved = false, 0
		l.unreservedInUse += c.inFlight
		return
	}
	c.hasReserved, c.reserved = true, n
	l.reservedSum += n
}

func (l *limiter) usage(fn string) (inFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.fns[fn]; c != nil {
		return c.inFlight
	}
	return 0
}

func (l *limiter) unreserved() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.account-l.reservedSum, 0)
}
