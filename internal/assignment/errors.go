package assignment

import (
	"fmt"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// ThrottleReason is the TooManyRequestsException Reason for a throttle.
type ThrottleReason string

// Reasons Acquire throttles with (spec §3.2).
const (
	// ReasonConcurrentInvocationLimitExceeded: the account's unreserved
	// pool is exhausted.
	ReasonConcurrentInvocationLimitExceeded ThrottleReason = "ConcurrentInvocationLimitExceeded"
	// ReasonReservedFunctionConcurrentInvocationLimitExceeded: the
	// function's reserved concurrency (possibly 0) is exhausted.
	ReasonReservedFunctionConcurrentInvocationLimitExceeded ThrottleReason = "ReservedFunctionConcurrentInvocationLimitExceeded"
)

// ThrottleError is returned by Acquire when an invoke would exceed a
// concurrency limit. errors.Is(err, errdefs.ErrThrottled) holds; the
// frontend uses errors.As to read Reason for the 429 body.
type ThrottleError struct {
	Reason   ThrottleReason
	Function string
	// Limit is the limit that was hit: the function's reservation or the
	// size of the unreserved pool.
	Limit int
}

func (e *ThrottleError) Error() string {
	return fmt.Sprintf("throttling %s: %s (limit %d)", e.Function, e.Reason, e.Limit)
}

// Unwrap returns errdefs.ErrThrottled.
func (e *ThrottleError) Unwrap() error { return errdefs.ErrThrottled }

// Errors returned by Release and Acquire, wrapped with context where useful.
var (
	// ErrLeaseReleased: Release was called twice for one lease, or with a
	// lease whose sandbox was already reclaimed. A programming error in the
	// caller; the second call changes nothing.
	ErrLeaseReleased = fmt.Errorf("lease already released: %w", errdefs.ErrConflict)
	// ErrInvalidLease: Release got a zero Lease.
	ErrInvalidLease = fmt.Errorf("invalid lease: %w", errdefs.ErrInvalidArgument)
	// ErrNotLeader: the function's partition is not led by this process
	// (reserved for the leadership issue; a single node leads all).
	ErrNotLeader = fmt.Errorf("partition not led here: %w", errdefs.ErrUnavailable)
)
