package registry

import (
	"fmt"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Error is a registry error whose Message is written for the API user
// (following AWS's wording where AWS has one). It wraps an errdefs class, so
// callers test it with errors.Is(err, errdefs.ErrNotFound) and the frontend
// picks the AWS error type from the class and the text from Message.
type Error struct {
	Class   error
	Message string
}

func (e *Error) Error() string { return e.Class.Error() + ": " + e.Message }

// Unwrap returns the errdefs class.
func (e *Error) Unwrap() error { return e.Class }

// UserMessage is the text for the API response.
func (e *Error) UserMessage() string { return e.Message }

func newErr(class error, format string, args ...any) error {
	return &Error{Class: class, Message: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error {
	return newErr(errdefs.ErrInvalidArgument, format, args...)
}

func notFoundf(format string, args ...any) error {
	return newErr(errdefs.ErrNotFound, format, args...)
}

func existsf(format string, args ...any) error {
	return newErr(errdefs.ErrAlreadyExists, format, args...)
}

func conflictf(format string, args ...any) error {
	return newErr(errdefs.ErrConflict, format, args...)
}

func preconditionf(format string, args ...any) error {
	return newErr(errdefs.ErrPreconditionFailed, format, args...)
}

func tooLargef(format string, args ...any) error {
	return newErr(errdefs.ErrTooLarge, format, args...)
}
