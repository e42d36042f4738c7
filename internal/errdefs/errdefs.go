// Package errdefs defines the error classes shared by every Ignis package.
//
// Code wraps a class with context ("creating function foo: %w") and callers
// test with errors.Is. Only the frontend maps classes to AWS error types and
// HTTP statuses; nothing below it knows about the wire.
package errdefs

import "errors"

// Error classes. Each is a sentinel to wrap with %w.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrInvalidContent     = errors.New("invalid request content")
	ErrConflict           = errors.New("conflict")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrTooLarge           = errors.New("too large")
	ErrThrottled          = errors.New("throttled")
	ErrUnavailable        = errors.New("unavailable")
	ErrUnauthenticated    = errors.New("unauthenticated")
	ErrInternal           = errors.New("internal error")
)

// IsNotFound reports whether err is of class ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err is of class ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsInvalidArgument reports whether err is of class ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsConflict reports whether err is of class ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsThrottled reports whether err is of class ErrThrottled.
func IsThrottled(err error) bool { return errors.Is(err, ErrThrottled) }
