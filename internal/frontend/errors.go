package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/registry"
)

// awsError is an error whose AWS type and status are decided at the point
// it is raised (authentication, routing, size limits).
type awsError struct {
	status int
	typ    string
	msg    string
}

func (e *awsError) Error() string { return e.typ + ": " + e.msg }

func newAWSError(status int, typ, format string, args ...any) *awsError {
	return &awsError{status: status, typ: typ, msg: fmt.Sprintf(format, args...)}
}

// userError carries an errdefs class and a message for the API user.
type userError struct {
	class error
	msg   string
}

func (e *userError) Error() string       { return e.class.Error() + ": " + e.msg }
func (e *userError) Unwrap() error       { return e.class }
func (e *userError) UserMessage() string { return e.msg }

func invalidContent(format string, args ...any) error {
	return &userError{class: errdefs.ErrInvalidContent, msg: fmt.Sprintf(format, args...)}
}

func invalidParam(format string, args ...any) error {
	return &userError{class: errdefs.ErrInvalidArgument, msg: fmt.Sprintf(format, args...)}
}

// classes maps errdefs classes to AWS error types and statuses, in order of
// precedence. This table is the only such mapping in Ignis.
var classes = []struct {
	class  error
	status int
	typ    string
}{
	{errdefs.ErrNotFound, http.StatusNotFound, api.ErrResourceNotFound},
	{errdefs.ErrAlreadyExists, http.StatusConflict, api.ErrResourceConflict},
	{errdefs.ErrConflict, http.StatusConflict, api.ErrResourceConflict},
	{errdefs.ErrPreconditionFailed, http.StatusPreconditionFailed, api.ErrPreconditionFailed},
	{errdefs.ErrInvalidContent, http.StatusBadRequest, api.ErrInvalidRequestContent},
	{errdefs.ErrInvalidArgument, http.StatusBadRequest, api.ErrInvalidParameterValue},
	{errdefs.ErrTooLarge, http.StatusRequestEntityTooLarge, api.ErrRequestTooLarge},
	{errdefs.ErrThrottled, http.StatusTooManyRequests, api.ErrTooManyRequests},
	{errdefs.ErrUnauthenticated, http.StatusForbidden, api.ErrUnrecognizedClient},
	{errdefs.ErrUnavailable, http.StatusBadGateway, api.ErrResourceNotReady},
}

// mapError returns the status, AWS error type and user message of err.
func mapError(err error) (status int, typ, msg string) {
	var ae *awsError
	if errors.As(err, &ae) {
		return ae.status, ae.typ, ae.msg
	}
	var se *registry.SnapStartError
	if errors.As(err, &se) {
		if se.State == registry.StatePending {
			return http.StatusConflict, api.ErrSnapStartNotReady, se.UserMessage()
		}
		return http.StatusBadRequest, api.ErrSnapStart, se.UserMessage()
	}
	status, typ = http.StatusInternalServerError, api.ErrService
	for _, c := range classes {
		if errors.Is(err, c.class) {
			status, typ = c.status, c.typ
			break
		}
	}
	var um interface{ UserMessage() string }
	switch {
	case errors.As(err, &um):
		msg = um.UserMessage()
	case status == http.StatusInternalServerError:
		msg = "An internal error occurred in Ignis; see the server log for request details."
	default:
		msg = err.Error()
	}
	return status, typ, msg
}

// writeError writes err as an AWS error response (spec §3.1): status,
// X-Amzn-ErrorType, JSON body with Type and both message casings.
func (f *Frontend) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, typ, msg := mapError(err)
	kind := "User"
	if status >= 500 {
		kind = "Service"
		f.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		f.log.DebugContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "type", typ, "err", err)
	}
	body := api.ErrorBody{Type: kind, Message: msg, MessageLow: msg}
	// Throttles carry a Reason (spec §3.2) from whoever decided them.
	var tr interface{ ThrottleReason() string }
	if errors.As(err, &tr) {
		body.Reason = tr.ThrottleReason()
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
