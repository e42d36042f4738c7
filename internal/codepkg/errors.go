package codepkg

import (
	"fmt"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Error is the refusal of a package. Its class is errdefs.ErrInvalidArgument
// (the API reports InvalidParameterValueException); Message is written for
// the API user, in AWS's wording where AWS has one.
type Error struct {
	Message string
}

func (e *Error) Error() string { return "refusing code package: " + e.Message }

// Unwrap returns errdefs.ErrInvalidArgument.
func (e *Error) Unwrap() error { return errdefs.ErrInvalidArgument }

// UserMessage is the text for the API response.
func (e *Error) UserMessage() string { return e.Message }

func refusef(format string, args ...any) error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

// clip shortens s for a message: names and targets come from the package.
func clip(s string) string {
	const n = 200
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
