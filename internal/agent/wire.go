package agent

import (
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// appendJSONString appends s as a JSON string, copying plain ASCII directly
// and deferring to encoding/json for anything needing escapes.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// headed starts a header-framed body in b: 4 length bytes, to be filled by
// finishHeaded once the JSON header is appended.
func headed(b []byte) []byte { return append(b[:0], 0, 0, 0, 0) }

func finishHeaded(b []byte) []byte {
	binary.BigEndian.PutUint32(b[:4], uint32(len(b)-4))
	return b
}

// appendResultHeader encodes res's header exactly as agentproto's JSON
// would (same keys, same omitempty), without reflection.
func appendResultHeader(b []byte, res *agentproto.Result) []byte {
	b = headed(b)
	b = append(b, `{"requestId":`...)
	b = appendJSONString(b, res.RequestID)
	if res.Error {
		b = append(b, `,"error":true`...)
	}
	if res.ErrorType != "" {
		b = append(b, `,"errorType":`...)
		b = appendJSONString(b, res.ErrorType)
	}
	if res.ContentType != "" {
		b = append(b, `,"contentType":`...)
		b = appendJSONString(b, res.ContentType)
	}
	b = append(b, '}')
	return finishHeaded(b)
}

// appendLogHeader encodes a Log header.
func appendLogHeader(b []byte, stream, requestID string) []byte {
	b = headed(b)
	b = append(b, `{"stream":`...)
	b = appendJSONString(b, stream)
	if requestID != "" {
		b = append(b, `,"requestId":`...)
		b = appendJSONString(b, requestID)
	}
	b = append(b, '}')
	return finishHeaded(b)
}

// errorJSON builds the {"errorMessage","errorType"} body the agent sends
// for failures it detects itself.
func errorJSON(errorType, msg string) []byte {
	b := append([]byte(`{"errorMessage":`), appendJSONString(nil, msg)...)
	b = append(b, `,"errorType":`...)
	b = appendJSONString(b, errorType)
	return append(b, '}')
}
