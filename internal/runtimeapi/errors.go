package runtimeapi

import (
	"net/http"
	"strconv"
)

// Error types of the API's own error bodies ({"errorMessage","errorType"}).
const (
	errInvalidStateTransition   = "InvalidStateTransition"
	errInvalidRequestID         = "InvalidRequestID"
	errInvalidResponseMode      = "InvalidFunctionResponseMode"
	errTruncatedHTTPRequest     = "TruncatedHTTPRequest"
	errRequestEntityTooLarge    = "RequestEntityTooLarge"
	errInternalServerError      = "InternalServerError"
	errMissingExtensionName     = "Extension.MissingExtensionName"
	errMissingExtensionID       = "Extension.MissingExtensionIdentifier"
	errUnknownExtensionID       = "Extension.UnknownExtensionIdentifier"
	errRegistrationClosed       = "Extension.RegistrationClosed"
	errTooManyExtensions        = "Extension.TooManyExtensions"
	errInvalidEventType         = "Extension.InvalidEventType"
	errMissingFunctionErrorType = "Extension.MissingHeader"
	errInvalidRequestBody       = "InvalidRequestBody"
)

// writeError writes the standard {"errorMessage","errorType"} body. The
// message is quoted by strconv, whose escapes are valid JSON for the ASCII
// messages this package produces (no control or non-ASCII characters).
func writeError(w http.ResponseWriter, status int, errorType, msg string) {
	b := make([]byte, 0, 64+len(msg)+len(errorType))
	b = append(b, `{"errorMessage":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"errorType":`...)
	b = appendJSONString(b, errorType)
	b = append(b, '}')
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var (
	contentTypeJSON = []string{"application/json"}
	statusOKBody    = []byte(`{"status":"OK"}` + "\n")
)

// writeAccepted answers 202 {"status":"OK"} as Lambda does.
func writeAccepted(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(statusOKBody)
}
