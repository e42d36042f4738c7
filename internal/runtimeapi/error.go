package runtimeapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// contentTypeErrorCause marks an error body carrying an errorCause member
// that the platform strips before returning the body to the caller.
const contentTypeErrorCause = "application/vnd.aws.lambda.error.cause+json"

// handleError serves POST /2018-06-01/runtime/invocation/{id}/error. The
// body is passed on as the function error; the Lambda-Runtime-Function-Error-Type
// header, when valid, becomes the result's error type, else Runtime.Unknown
// (the Python and Node clients and aws-lambda-go do not send it).
func (s *Server) handleError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.beginAnswer(w, id); !ok {
		return
	}
	body, tooLarge, err := readBody(s.buf, r.Body, r.ContentLength, MaxResponseSize)
	if err != nil {
		s.finishAnswer(false, body)
		writeError(w, http.StatusBadRequest, errTruncatedHTTPRequest, "Truncated HTTP request: "+err.Error())
		return
	}
	if tooLarge {
		s.deliver(&agentproto.Result{RequestID: id, Error: true, ErrorType: ErrorTypeResponseSizeTooLarge,
			ContentType: "application/json", Body: tooLargeBody})
		s.finishAnswer(true, body)
		writeError(w, http.StatusRequestEntityTooLarge, errRequestEntityTooLarge,
			"Exceeded maximum allowed payload size ("+strconv.Itoa(MaxResponseSize)+" bytes).")
		return
	}
	out := body
	if r.Header.Get("Content-Type") == contentTypeErrorCause {
		out = stripErrorCause(body)
	}
	if len(out) == 0 {
		out = []byte(`{"errorMessage":"","errorType":"` + ErrorTypeRuntimeUnknown + `"}`)
	}
	s.deliver(&agentproto.Result{
		RequestID:   id,
		Error:       true,
		ErrorType:   normaliseErrorType(r.Header.Get(HeaderFunctionError)),
		ContentType: "application/json",
		Body:        out,
	})
	s.finishAnswer(true, body)
	writeAccepted(w)
}

// stripErrorCause removes the errorCause member from an error body. A body
// that is not a JSON object is returned unchanged.
func stripErrorCause(body []byte) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return body
	}
	if _, ok := m["errorCause"]; !ok {
		return body
	}
	delete(m, "errorCause")
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return b
}
