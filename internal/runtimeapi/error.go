package runtimeapi

import (
	"encoding/json"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
)

// contentTypeErrorCause marks an error body carrying an errorCause member
// that the platform strips before returning the body to the caller.
const contentTypeErrorCause = "application/vnd.aws.lambda.error.cause+json"

// handleError serves POST /2018-06-01/runtime/invocation/{id}/error. The
// body is passed on as the function error; the Lambda-Runtime-Function-Error-Type
// header, when valid, becomes the result's error type, else Runtime.Unknown
// (the Python and Node clients and aws-lambda-go do not send it).
func (s *Server) handleError(c *conn, id []byte) {
	cur, ok := s.beginAnswer(c, id)
	if !ok {
		return
	}
	body, ok := s.readAnswer(c, cur)
	if !ok {
		return
	}
	out := body
	if string(c.req.getBytes(hContentType)) == contentTypeErrorCause {
		out = stripErrorCause(body)
	}
	if len(out) == 0 {
		out = lambdaerr.Body(lambdaerr.RuntimeUnknown, "")
	}
	s.res = agentproto.Result{
		RequestID:   cur.RequestID,
		Error:       true,
		ErrorType:   normaliseErrorType(c.req.get(hFunctionError)),
		ContentType: contentTypeJSON,
		Body:        out,
	}
	s.deliver(&s.res)
	s.finishAnswer(true, body)
	c.writeAccepted()
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
