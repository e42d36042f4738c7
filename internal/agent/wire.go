package agent

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/ignis-run/ignis/internal/agentproto"
)

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
	b = agentproto.AppendJSONString(b, res.RequestID)
	if res.Error {
		b = append(b, `,"error":true`...)
	}
	if res.ErrorType != "" {
		b = append(b, `,"errorType":`...)
		b = agentproto.AppendJSONString(b, res.ErrorType)
	}
	if res.ContentType != "" {
		b = append(b, `,"contentType":`...)
		b = agentproto.AppendJSONString(b, res.ContentType)
	}
	b = append(b, '}')
	return finishHeaded(b)
}

// appendLogHeader encodes a Log header.
func appendLogHeader(b []byte, stream, requestID string) []byte {
	b = headed(b)
	b = append(b, `{"stream":`...)
	b = agentproto.AppendJSONString(b, stream)
	if requestID != "" {
		b = append(b, `,"requestId":`...)
		b = agentproto.AppendJSONString(b, requestID)
	}
	b = append(b, '}')
	return finishHeaded(b)
}

// frameReader reads agentproto frames (uint32 length | type | body) into
// one reused buffer: unlike agentproto.Reader it does not allocate a body
// per frame. A body is valid until the next call to next.
type frameReader struct {
	r    *bufio.Reader
	hdr  [5]byte
	body []byte
}

// keepFrameBuf is the largest body buffer kept between frames.
const keepFrameBuf = 1 << 20

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), body: make([]byte, 0, 4096)}
}

// next reads the next frame. It returns io.EOF at a clean end of stream and
// io.ErrUnexpectedEOF for a truncated frame, as agentproto.Reader does.
func (fr *frameReader) next() (agentproto.Type, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:4])
	if n == 0 || n > agentproto.MaxFrame {
		return 0, nil, agentproto.ErrFrameTooLarge
	}
	if cap(fr.body) > keepFrameBuf {
		fr.body = make([]byte, 0, 4096)
	}
	if int(n-1) > cap(fr.body) {
		fr.body = make([]byte, 0, n-1)
	}
	body := fr.body[:n-1]
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return agentproto.Type(fr.hdr[4]), body, nil
}

// decodeInvoke decodes a TypeInvoke body into m, as
// agentproto.Frame.Invoke does; m.Payload aliases body. prevARN is the
// previous invoke's ARN, reused rather than allocated again when equal.
func decodeInvoke(body []byte, m *agentproto.Invoke, prevARN string) error {
	if len(body) < 4 {
		return errors.New("decoding Invoke: short body")
	}
	n := binary.BigEndian.Uint32(body[:4])
	if uint64(n) > uint64(len(body)-4) {
		return fmt.Errorf("decoding Invoke: header length %d exceeds body", n)
	}
	head := body[4 : 4+n]
	if !decodeInvokeHeader(head, m, prevARN) {
		*m = agentproto.Invoke{}
		if err := json.Unmarshal(head, m); err != nil {
			return fmt.Errorf("decoding Invoke: %w", err)
		}
	}
	m.Payload = body[4+n:]
	return nil
}

// decodeInvokeHeader decodes the JSON header agentproto writes for an
// Invoke without reflection. It handles the plain case only (known keys,
// strings without escapes) and returns false for anything else, which the
// caller then hands to encoding/json.
func decodeInvokeHeader(h []byte, m *agentproto.Invoke, prevARN string) bool {
	*m = agentproto.Invoke{}
	i := skipSpace(h, 0)
	if i >= len(h) || h[i] != '{' {
		return false
	}
	i = skipSpace(h, i+1)
	if i < len(h) && h[i] == '}' {
		return skipSpace(h, i+1) == len(h)
	}
	for {
		key, j, ok := plainString(h, i)
		if !ok {
			return false
		}
		i = skipSpace(h, j)
		if i >= len(h) || h[i] != ':' {
			return false
		}
		i = skipSpace(h, i+1)
		if string(key) == "deadlineMs" {
			v, j, ok := plainInt(h, i)
			if !ok {
				return false
			}
			m.DeadlineMs, i = v, j
		} else {
			v, j, ok := plainString(h, i)
			if !ok {
				return false
			}
			i = j
			switch string(key) {
			case "requestId":
				m.RequestID = string(v)
			case "invokedArn":
				if string(v) == prevARN {
					m.InvokedARN = prevARN
				} else {
					m.InvokedARN = string(v)
				}
			case "traceId":
				m.TraceID = string(v)
			case "clientContext":
				m.ClientContext = string(v)
			case "cognitoIdentity":
				m.CognitoIdentity = string(v)
			case "tenantId":
				m.TenantID = string(v)
			case "contentType":
				if string(v) == "application/json" {
					m.ContentType = "application/json"
				} else {
					m.ContentType = string(v)
				}
			default:
				return false
			}
		}
		i = skipSpace(h, i)
		if i >= len(h) {
			return false
		}
		switch h[i] {
		case ',':
			i = skipSpace(h, i+1)
		case '}':
			return skipSpace(h, i+1) == len(h)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that has no escapes and no
// control characters, returning its contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !utf8.Valid(b[i+1 : j]) {
				return nil, 0, false
			}
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainInt reads a JSON integer (no fraction or exponent) at b[i].
func plainInt(b []byte, i int) (int64, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	for j < len(b) && '0' <= b[j] && b[j] <= '9' {
		j++
	}
	if j == start || j-start > 18 || (b[start] == '0' && j-start > 1) {
		return 0, 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	var v int64
	for _, c := range b[start:j] {
		v = v*10 + int64(c-'0')
	}
	if start > i {
		v = -v
	}
	return v, j, true
}
