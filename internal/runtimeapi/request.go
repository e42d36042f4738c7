package runtimeapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// The request side of the server's HTTP/1.1 (RFC 9112): the request line,
// the header fields and the chunked framing, parsed straight out of the
// connection's bufio.Reader. Only what the Runtime and Extensions APIs use
// is kept: the fields in headerNames, each as a span of the request's arena,
// so a request costs no maps and, in steady state, no allocations.

// Limits on a request head. maxHeaderBytes matches net/http's default (1 MB
// plus slack): a runtime may send a large Lambda-Runtime-Function-XRay-Error-Cause.
const (
	maxHeaderBytes = 1<<20 + 4096
	maxChunkLine   = 4096
	// maxDiscard is how much of an unread body is skipped to keep the
	// connection; above it the connection is closed instead (net/http's
	// rule too).
	maxDiscard = 256 << 10
)

// Indexes of the header fields a request keeps (request.hdr). The
// trailer-only Error-Body is kept from trailers only.
const (
	hContentType = iota
	hFunctionError
	hFunctionErrBody
	hResponseMode
	hExtensionName
	hExtensionID
	hExtensionError
	numKept
)

// Framing fields, handled by the parser itself.
const (
	hHost = numKept + iota
	hContentLength
	hTransferEncoding
	hConnection
	hExpect
)

// headerNames maps the indexes above to canonical names.
var headerNames = [...]string{
	hContentType:      "Content-Type",
	hFunctionError:    HeaderFunctionError,
	hFunctionErrBody:  HeaderFunctionErrBody,
	hResponseMode:     HeaderResponseMode,
	hExtensionName:    HeaderExtensionName,
	hExtensionID:      HeaderExtensionID,
	hExtensionError:   HeaderExtensionError,
	hHost:             "Host",
	hContentLength:    "Content-Length",
	hTransferEncoding: "Transfer-Encoding",
	hConnection:       "Connection",
	hExpect:           "Expect",
}

// span is a byte range of request.arena; the zero span is empty.
type span struct{ off, n int32 }

// method is a request method the APIs route on.
type method uint8

const (
	methodOther method = iota
	methodGET
	methodPOST
)

// request is one parsed request head. Its spans index arena, which is
// reused by the next request on the connection.
type request struct {
	arena  []byte
	method method
	path   span // without the query
	http10 bool // HTTP/1.0 (else 1.1)

	contentLength int64 // -1 when absent
	chunked       bool
	// expectContinue is set for Expect: 100-continue: the client waits
	// for "100 Continue" before it sends the body.
	expectContinue bool
	// closeConn is set when the connection ends after this request: the
	// client sent Connection: close, or is HTTP/1.0 without keep-alive.
	closeConn bool
	keepAlive bool // Connection: keep-alive (matters for HTTP/1.0)

	hdr     [numKept]span // first occurrence of each kept header field
	trailer [numKept]span // the same, from a chunked body's trailer
}

// get returns the value of a kept header field ("" when absent). The
// conversion allocates; use getBytes on the hot path.
func (r *request) get(h int) string { return string(r.getBytes(h)) }

func (r *request) getBytes(h int) []byte { return r.bytes(r.hdr[h]) }

func (r *request) bytes(s span) []byte { return r.arena[s.off : s.off+s.n] }

// keep appends v to the arena and returns its span.
func (r *request) keep(v []byte) span {
	off := len(r.arena)
	r.arena = append(r.arena, v...)
	return span{int32(off), int32(len(v))}
}

// httpError is a request the server refuses before routing: it answers
// status with msg (text/plain) and closes the connection, as net/http does.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(msg string) error { return &httpError{400, msg} }

// errLineTooLong is returned by readLine for a line over its budget.
var errLineTooLong = errors.New("line too long")

// lineReader reads CRLF (or bare LF) terminated lines from a bufio.Reader
// within a byte budget. A line longer than the bufio buffer is gathered in
// long, so only rare, long lines copy.
type lineReader struct {
	br   *bufio.Reader
	long []byte
}

// readLine returns the next line without its terminator. The line is only
// valid until the next read. budget is decremented by the bytes consumed.
func (lr *lineReader) readLine(budget *int) ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		lr.long = append(lr.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(lr.long) > *budget {
				return nil, errLineTooLong
			}
			line, err = lr.br.ReadSlice('\n')
			lr.long = append(lr.long, line...)
		}
		line = lr.long
		if cap(lr.long) > 64<<10 {
			lr.long = nil // do not pin a rare huge line's buffer
		}
	}
	*budget -= len(line)
	if *budget < 0 {
		return nil, errLineTooLong
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readRequest parses the next request head into r. It returns io.EOF when
// the connection ends cleanly between requests, *httpError for a malformed
// request, and other read errors as they come.
func (lr *lineReader) readRequest(r *request) error {
	arena := r.arena[:0]
	*r = request{arena: arena, contentLength: -1}
	budget := maxHeaderBytes

	var line []byte
	var err error
	// RFC 9112 §2.2: ignore at least one empty line before the request line.
	for range 3 {
		if line, err = lr.readLine(&budget); err != nil || len(line) > 0 {
			break
		}
	}
	if err != nil {
		return headErr(err, false)
	}
	if err := r.parseRequestLine(line); err != nil {
		return err
	}
	var seen [hExpect + 1]bool
	for {
		line, err = lr.readLine(&budget)
		if err != nil {
			return headErr(err, true)
		}
		if len(line) == 0 {
			break
		}
		h, val, err := parseField(line)
		if err != nil {
			return err
		}
		if h < 0 {
			continue
		}
		if err := r.setField(h, val, &seen); err != nil {
			return err
		}
	}
	if !r.http10 && !seen[hHost] {
		return badRequest("missing required Host header")
	}
	if r.chunked {
		if r.contentLength >= 0 {
			return badRequest("both Transfer-Encoding and Content-Length")
		}
		if r.http10 {
			return badRequest("chunked body in an HTTP/1.0 request")
		}
	}
	if r.http10 && !r.keepAlive {
		r.closeConn = true
	}
	return nil
}

// headErr maps a read error inside a request head: EOF before any byte is
// a clean end; a truncated head is io.ErrUnexpectedEOF.
func headErr(err error, started bool) error {
	switch {
	case err == errLineTooLong:
		return &httpError{431, "request header fields too large"}
	case started && err == io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseRequestLine parses "METHOD SP request-target SP HTTP/1.x".
func (r *request) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return badRequest("malformed request line")
	}
	m, rest := line[:sp1], line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return badRequest("malformed request line")
	}
	target, proto := rest[:sp2], rest[sp2+1:]
	for _, c := range m {
		if !isTokenChar(c) {
			return badRequest("invalid method")
		}
	}
	switch string(m) {
	case "GET":
		r.method = methodGET
	case "POST":
		r.method = methodPOST
	default:
		r.method = methodOther
	}
	switch {
	case string(proto) == "HTTP/1.1":
	case string(proto) == "HTTP/1.0":
		r.http10 = true
	case len(proto) == 8 && string(proto[:5]) == "HTTP/" && isDigit(proto[5]) && proto[6] == '.' && isDigit(proto[7]):
		if proto[5] != '1' {
			return &httpError{505, "unsupported protocol version"}
		}
		// A later HTTP/1.x minor is answered as 1.1 (RFC 9110 §6.2).
	default:
		return badRequest("malformed HTTP version")
	}
	// Absolute form (RFC 9112 §3.2.2): keep the path.
	if len(target) > 0 && target[0] != '/' {
		var ok bool
		if target, ok = stripScheme(target); !ok {
			return badRequest("invalid request target")
		}
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return badRequest("invalid request target")
		}
	}
	if i := bytes.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	r.path = r.keep(target)
	return nil
}

// stripScheme turns an absolute-form target into its path ("/" if none).
func stripScheme(t []byte) ([]byte, bool) {
	var rest []byte
	switch {
	case len(t) >= 7 && asciiEqualFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) >= 8 && asciiEqualFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return nil, false
	}
	i := bytes.IndexAny(rest, "/?#")
	if i < 0 {
		return []byte("/"), true
	}
	if rest[i] != '/' {
		return append([]byte("/"), rest[i:]...), true
	}
	return rest[i:], true
}

// parseField splits a header line into the index of a field the server
// keeps (-1 for any other) and its trimmed value.
func parseField(line []byte) (int, []byte, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return 0, nil, badRequest("obsolete line folding")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return 0, nil, badRequest("malformed header line")
	}
	name := line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return 0, nil, badRequest("invalid header field name")
		}
	}
	val := line[colon+1:]
	for len(val) > 0 && (val[0] == ' ' || val[0] == '\t') {
		val = val[1:]
	}
	for len(val) > 0 && (val[len(val)-1] == ' ' || val[len(val)-1] == '\t') {
		val = val[:len(val)-1]
	}
	for _, c := range val {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return 0, nil, badRequest("invalid header field value")
		}
	}
	return fieldIndex(name), val, nil
}

// fieldIndex returns the index of a header name in headerNames, or -1.
func fieldIndex(name []byte) int {
	for i, n := range headerNames {
		if len(n) == len(name) && asciiEqualFold(name, n) {
			return i
		}
	}
	return -1
}

// setField records one header field of the request head.
func (r *request) setField(h int, val []byte, seen *[hExpect + 1]bool) error {
	dup := seen[h]
	seen[h] = true
	switch h {
	case hHost:
		if dup {
			return badRequest("too many Host headers")
		}
	case hContentLength:
		n, ok := parseContentLength(val)
		if !ok || (dup && n != r.contentLength) {
			return badRequest("invalid Content-Length")
		}
		r.contentLength = n
	case hTransferEncoding:
		if dup || !asciiEqualFold(val, "chunked") {
			return &httpError{501, "unsupported transfer encoding"}
		}
		r.chunked = true
	case hConnection:
		for tok := range bytes.SplitSeq(val, []byte(",")) {
			tok = bytes.TrimSpace(tok)
			switch {
			case asciiEqualFold(tok, "close"):
				r.closeConn = true
			case asciiEqualFold(tok, "keep-alive"):
				r.keepAlive = true
			}
		}
	case hExpect:
		if !asciiEqualFold(val, "100-continue") {
			return &httpError{417, "unsupported Expect"}
		}
		r.expectContinue = true
	case hFunctionErrBody:
		// Meaningful as a trailer only.
	default:
		if !dup {
			r.hdr[h] = r.keep(val)
		}
	}
	return nil
}

// parseContentLength parses a non-negative decimal of at most 18 digits.
func parseContentLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// readChunkSize reads a chunk-size line (extensions ignored).
func (lr *lineReader) readChunkSize() (int64, error) {
	budget := maxChunkLine
	line, err := lr.readLine(&budget)
	if err != nil {
		if err == errLineTooLong {
			return 0, badRequest("chunk size line too long")
		}
		return 0, eofIsUnexpected(err)
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, badRequest("invalid chunk size")
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, badRequest("invalid chunk size")
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}

// readChunkEnd consumes the CRLF after a chunk's data.
func (lr *lineReader) readChunkEnd() error {
	budget := 2
	line, err := lr.readLine(&budget)
	if err != nil {
		if err == errLineTooLong {
			return badRequest("malformed chunk")
		}
		return eofIsUnexpected(err)
	}
	if len(line) != 0 {
		return badRequest("malformed chunk")
	}
	return nil
}

// readTrailer reads the trailer section after the last chunk, keeping the
// fields the server uses in r.trailer. Framing fields in a trailer are
// ignored (RFC 9110 §6.5.1).
func (lr *lineReader) readTrailer(r *request) error {
	budget := maxHeaderBytes
	for {
		line, err := lr.readLine(&budget)
		if err != nil {
			if err == errLineTooLong {
				return &httpError{431, "trailer fields too large"}
			}
			return eofIsUnexpected(err)
		}
		if len(line) == 0 {
			return nil
		}
		h, val, err := parseField(line)
		if err != nil {
			return err
		}
		if h >= 0 && h < numKept && r.trailer[h].n == 0 {
			r.trailer[h] = r.keep(val)
		}
	}
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', isDigit(c):
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// asciiEqualFold reports whether b equals s ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
