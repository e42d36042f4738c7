package runtimeapi

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// handleResponse serves POST /2018-06-01/runtime/invocation/{id}/response.
//
// Buffered and streaming responses are both accepted. A streaming response
// (Lambda-Runtime-Function-Response-Mode: streaming, chunked) is buffered
// whole; a mid-stream failure reported in the Lambda-Runtime-Function-Error-*
// trailers turns the result into a function error. Bodies above
// MaxResponseSize get 413 and fail the invoke with
// Function.ResponseSizeTooLarge.
func (s *Server) handleResponse(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	mode := r.Header.Get(HeaderResponseMode)
	if mode != "" && mode != "streaming" {
		writeError(w, http.StatusBadRequest, errInvalidResponseMode, "Invalid function response mode: "+strconv.Quote(mode))
		return
	}
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
	res := agentproto.Result{RequestID: id, ContentType: r.Header.Get("Content-Type"), Body: body}
	// Trailers are only readable once the body is consumed, which it is.
	if et := r.Trailer.Get(HeaderFunctionError); et != "" {
		res.Error = true
		res.ErrorType = normaliseErrorType(et)
		res.ContentType = "application/json"
		res.Body = streamErrorBody(r.Trailer.Get(HeaderFunctionErrBody), et)
	}
	s.deliver(&res)
	s.finishAnswer(true, body)
	writeAccepted(w)
}

// streamErrorBody decodes the base64 error body of a failed stream, or
// builds one from the error type when it is absent or not base64.
func streamErrorBody(b64, errorType string) []byte {
	if b64 != "" {
		if b, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return b
		}
	}
	b := append([]byte(`{"errorMessage":"","errorType":`), appendJSONString(nil, errorType)...)
	return append(b, '}')
}
