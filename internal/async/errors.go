package async

import (
	"errors"
	"fmt"
)

// MaxEventBytes is the largest Event (asynchronous) payload (spec §4).
const MaxEventBytes = 1048576

// Error is an error for the API user: an errdefs class plus a message
// (the frontend maps the class to the AWS error type).
type Error struct {
	Class   error
	Message string
}

func (e *Error) Error() string       { return e.Class.Error() + ": " + e.Message }
func (e *Error) Unwrap() error       { return e.Class }
func (e *Error) UserMessage() string { return e.Message }

func userErr(class error, format string, args ...any) error {
	return &Error{Class: class, Message: fmt.Sprintf(format, args...)}
}

// errUndeliverable marks a destination that can never take the record (a
// missing function, a record too large): the poller drops it and counts it.
var errUndeliverable = errors.New("destination cannot take the record")

func undeliverable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUndeliverable, fmt.Sprintf(format, args...))
}

func isUndeliverable(err error) bool { return errors.Is(err, errUndeliverable) }
