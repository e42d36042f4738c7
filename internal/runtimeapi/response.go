package runtimeapi

import (
	"encoding/base64"
	"strconv"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
)

// handleResponse serves POST /2018-06-01/runtime/invocation/{id}/response.
//
// Buffered and streaming responses are both accepted. A streaming response
// (Lambda-Runtime-Function-Response-Mode: streaming, chunked) is buffered
// whole; a mid-stream failure reported in the Lambda-Runtime-Function-Error-*
// trailers turns the result into a function error. Bodies above
// MaxResponseSize get 413 and fail the invoke with
// Function.ResponseSizeTooLarge.
func (s *Server) handleResponse(c *conn, id []byte) {
	if mode := c.req.getBytes(hResponseMode); len(mode) != 0 && string(mode) != "streaming" {
		c.writeError(400, errInvalidResponseMode, "Invalid function response mode: "+strconv.Quote(string(mode)))
		return
	}
	cur, ok := s.beginAnswer(c, id)
	if !ok {
		return
	}
	body, ok := s.readAnswer(c, cur)
	if !ok {
		return
	}
	res := &s.res
	*res = agentproto.Result{RequestID: cur.RequestID, ContentType: contentType(c.req.getBytes(hContentType)), Body: body}
	// Trailers are only known once the body is consumed, which it is.
	if et := c.req.bytes(c.req.trailer[hFunctionError]); len(et) > 0 {
		res.Error = true
		res.ErrorType = normaliseErrorType(string(et))
		res.ContentType = contentTypeJSON
		res.Body = streamErrorBody(string(c.req.bytes(c.req.trailer[hFunctionErrBody])), string(et))
	}
	s.deliver(res)
	s.finishAnswer(true, body)
	c.writeAccepted()
}

// contentType returns a request's Content-Type as a string, without
// allocating for the usual one.
func contentType(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case contentTypeJSON:
		return contentTypeJSON
	}
	return string(b)
}

// deliverTooLarge fails the invoke with Function.ResponseSizeTooLarge.
func (s *Server) deliverTooLarge(id string) {
	s.res = agentproto.Result{RequestID: id, Error: true, ErrorType: lambdaerr.FunctionResponseSizeTooLarge,
		ContentType: contentTypeJSON, Body: tooLargeBody}
	s.deliver(&s.res)
}

// streamErrorBody decodes the base64 error body of a failed stream, or
// builds one from the error type when it is absent or not base64.
func streamErrorBody(b64, errorType string) []byte {
	if b64 != "" {
		if b, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return b
		}
	}
	return lambdaerr.Body(errorType, "")
}
