package runtimeapi

import "github.com/ignis-run/ignis/internal/lambdaerr"

// Error types of the API's own error bodies ({"errorMessage","errorType"}).
const (
	errInvalidStateTransition   = "InvalidStateTransition"
	errInvalidRequestID         = "InvalidRequestID"
	errInvalidResponseMode      = "InvalidFunctionResponseMode"
	errTruncatedHTTPRequest     = "TruncatedHTTPRequest"
	errRequestEntityTooLarge    = "RequestEntityTooLarge"
	errInternalServerError      = "InternalServerError"
	errAlreadyRegistered        = "Extension.AlreadyRegistered"
	errMissingExtensionName     = "Extension.MissingExtensionName"
	errMissingExtensionID       = "Extension.MissingExtensionIdentifier"
	errUnknownExtensionID       = "Extension.UnknownExtensionIdentifier"
	errRegistrationClosed       = "Extension.RegistrationClosed"
	errTooManyExtensions        = "Extension.TooManyExtensions"
	errInvalidEventType         = "Extension.InvalidEventType"
	errMissingFunctionErrorType = "Extension.MissingHeader"
	errInvalidRequestBody       = "InvalidRequestBody"
)

const contentTypeJSON = "application/json"

// writeError answers the current request with the standard
// {"errorMessage","errorType"} body (lambdaerr.Body, so any message is
// valid JSON).
func (c *conn) writeError(status int, errorType, msg string) {
	c.sendError(status, errorType, msg, c.field())
}

// sendError is writeError for an answer written by another goroutine
// (which must not look at the connection's current request).
func (c *conn) sendError(status int, errorType, msg string, f connField) {
	c.send(c.head(status), contentTypeJSON, lambdaerr.Body(errorType, msg), f)
}

// statusOKBody is Lambda's 202 body.
var statusOKBody = []byte(`{"status":"OK"}` + "\n")

// writeAccepted answers 202 {"status":"OK"} as Lambda does.
func (c *conn) writeAccepted() {
	c.send(c.head(202), contentTypeJSON, statusOKBody, c.field())
}
