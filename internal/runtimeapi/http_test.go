package runtimeapi

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/lambdaerr"
)

// The wire-level contract of the server's HTTP/1.1, driven over raw TCP
// (server_test.go drives the APIs through net/http's client).

// rawEnv is a Server on loopback with a Result recorder.
type rawEnv struct {
	s       *Server
	addr    string
	results chan agentproto.Result
}

func newRawEnv(t *testing.T) *rawEnv {
	t.Helper()
	e := &rawEnv{results: make(chan agentproto.Result, 8)}
	e.s = New(Config{Hooks: Hooks{Result: func(r *agentproto.Result) {
		c := *r
		c.Body = append([]byte(nil), r.Body...)
		e.results <- c
	}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.s.Serve(ln) }()
	t.Cleanup(func() { _ = e.s.Close() })
	e.addr = ln.Addr().String()
	return e
}

// dial opens a raw client connection.
func (e *rawEnv) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// running gives the server an invoke "r" in flight, taken by a /next on
// its own connection.
func (e *rawEnv) running(t *testing.T) {
	t.Helper()
	if err := e.s.Invoke(&agentproto.Invoke{RequestID: "r", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	c, br := e.dial(t)
	send(t, c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp := readResp(t, br); resp.StatusCode != 200 {
		t.Fatalf("next: %d", resp.StatusCode)
	}
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

type rawResp struct {
	*http.Response
	body string
}

func readResp(t *testing.T, br *bufio.Reader) rawResp {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return rawResp{resp, string(b)}
}

// expectClosed checks that the server closed the connection.
func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		t.Fatalf("connection still open (read %q)", b)
	}
}

func TestHTTP_RefusedRequests(t *testing.T) {
	tests := []struct {
		name   string
		req    string
		status int
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400},
		{"missing host", "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"obsolete folding", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400},
		{"bad content length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
		{"conflicting content lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"chunked and length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
		{"http/2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"bad version", "GET / HTTQ/1.1\r\nHost: a\r\n\r\n", 400},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n", 431},
	}
	e := newRawEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := e.dial(t)
			go io.WriteString(c, tt.req) // may be cut short by the close
			resp := readResp(t, br)
			if resp.StatusCode != tt.status || !resp.Close {
				t.Fatalf("got %d close=%v %q, want %d and close", resp.StatusCode, resp.Close, resp.body, tt.status)
			}
			expectClosed(t, br)
		})
	}
}

func TestHTTP_RoutingLikeServeMux(t *testing.T) {
	e := newRawEnv(t)
	c, br := e.dial(t)
	// Pipelined: answered in order on one connection.
	send(t, c, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"+
		"GET /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET http://a/2018-06-01/runtime/invocation/r/a/response?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []struct {
		status int
		allow  string
	}{{404, ""}, {405, "GET"}, {405, "POST"}, {404, ""}} {
		resp := readResp(t, br)
		if resp.StatusCode != want.status || resp.Header.Get("Allow") != want.allow {
			t.Fatalf("got %d Allow %q, want %d %q", resp.StatusCode, resp.Header.Get("Allow"), want.status, want.allow)
		}
	}
}

func TestHTTP_ExpectContinue(t *testing.T) {
	e := newRawEnv(t)
	e.running(t)
	c, br := e.dial(t)
	body := strings.Repeat("x", 2000)
	send(t, c, "POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim response %q %v", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("interim response not ended: %q", blank)
	}
	send(t, c, body)
	if resp := readResp(t, br); resp.StatusCode != 202 || resp.Close {
		t.Fatalf("response: %d close=%v", resp.StatusCode, resp.Close)
	}
	if res := <-e.results; string(res.Body) != body {
		t.Fatalf("body %d bytes", len(res.Body))
	}
	// Still usable: the next /next parks.
	send(t, c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := e.s.Invoke(&agentproto.Invoke{RequestID: "r2", Payload: []byte(`{"n":2}`)}); err != nil {
		t.Fatal(err)
	}
	if resp := readResp(t, br); resp.StatusCode != 200 || resp.body != `{"n":2}` || resp.Header.Get(HeaderRequestID) != "r2" {
		t.Fatalf("next: %d %q", resp.StatusCode, resp.body)
	}
}

func TestHTTP_ExpectContinueTooLarge(t *testing.T) {
	e := newRawEnv(t)
	e.running(t)
	c, br := e.dial(t)
	send(t, c, "POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 6291557\r\n\r\n")
	resp := readResp(t, br)
	if resp.StatusCode != 413 || !resp.Close || !strings.Contains(resp.body, "RequestEntityTooLarge") {
		t.Fatalf("got %d close=%v %s", resp.StatusCode, resp.Close, resp.body)
	}
	if res := <-e.results; res.ErrorType != lambdaerr.FunctionResponseSizeTooLarge {
		t.Fatalf("result %+v", res)
	}
	expectClosed(t, br)
}

func TestHTTP_ChunkedWithExtensionsAndTrailers(t *testing.T) {
	e := newRawEnv(t)
	e.running(t)
	c, br := e.dial(t)
	send(t, c, "POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"+
		"Lambda-Runtime-Function-Response-Mode: streaming\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"+
		"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nLambda-Runtime-Function-Error-Type: Function.Broke\r\n\r\n")
	if resp := readResp(t, br); resp.StatusCode != 202 {
		t.Fatalf("got %d %s", resp.StatusCode, resp.body)
	}
	res := <-e.results
	if !res.Error || res.ErrorType != "Function.Broke" || string(res.Body) != `{"errorMessage":"","errorType":"Function.Broke"}` {
		t.Fatalf("result %+v %s", res, res.Body)
	}
}

func TestHTTP_TruncatedBody(t *testing.T) {
	e := newRawEnv(t)
	e.running(t)
	c, br := e.dial(t)
	send(t, c, "POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	c.(*net.TCPConn).CloseWrite()
	// The server answers once it finds the body short; a runtime retries
	// after that, not while the server may still be reading the first
	// answer (the two would race).
	if resp := readResp(t, br); resp.StatusCode < 400 {
		t.Fatalf("truncated answer: %d %s", resp.StatusCode, resp.body)
	}
	// The answer is refused: the runtime may answer again.
	c2, br2 := e.dial(t)
	send(t, c2, "POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
	if resp := readResp(t, br2); resp.StatusCode != 202 {
		t.Fatalf("second answer: %d %s", resp.StatusCode, resp.body)
	}
	if res := <-e.results; string(res.Body) != "ok" {
		t.Fatalf("result %+v", res)
	}
}

func TestHTTP_HTTP10(t *testing.T) {
	e := newRawEnv(t)
	c, br := e.dial(t)
	send(t, c, "GET /nope HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if resp := readResp(t, br); resp.StatusCode != 404 || resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("keep-alive: %d %v", resp.StatusCode, resp.Header)
	}
	send(t, c, "GET /nope HTTP/1.0\r\n\r\n")
	if resp := readResp(t, br); resp.StatusCode != 404 || !resp.Close {
		t.Fatalf("close: %d %v", resp.StatusCode, resp.Header)
	}
	expectClosed(t, br)
}

func TestHTTP_ConnectionCloseOnParkedNext(t *testing.T) {
	e := newRawEnv(t)
	c, br := e.dial(t)
	send(t, c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	waitParked(t, e.s)
	if err := e.s.Invoke(&agentproto.Invoke{RequestID: "r", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if resp := readResp(t, br); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("got %d close=%v", resp.StatusCode, resp.Close)
	}
	expectClosed(t, br)
}

// A request pipelined behind a parked /next is answered after it.
func TestHTTP_PipelinedBehindParkedNext(t *testing.T) {
	e := newRawEnv(t)
	c, br := e.dial(t)
	send(t, c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
	waitParked(t, e.s)
	time.Sleep(20 * time.Millisecond)
	if err := e.s.Invoke(&agentproto.Invoke{RequestID: "r", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if resp := readResp(t, br); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	if resp := readResp(t, br); resp.StatusCode != 404 {
		t.Fatalf("second: %d", resp.StatusCode)
	}
}

// A runtime that drops its parked /next does not swallow the next event.
func TestHTTP_DisconnectWhileParked(t *testing.T) {
	e := newRawEnv(t)
	c, _ := e.dial(t)
	send(t, c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\n\r\n")
	waitParked(t, e.s)
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.s.mu.Lock()
		w := e.s.waiter
		e.s.mu.Unlock()
		if w == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waiter kept after disconnect")
		}
		time.Sleep(time.Millisecond)
	}
	if err := e.s.Invoke(&agentproto.Invoke{RequestID: "r", Payload: []byte(`{"late":1}`)}); err != nil {
		t.Fatal(err)
	}
	c2, br2 := e.dial(t)
	send(t, c2, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp := readResp(t, br2); resp.StatusCode != 200 || resp.body != `{"late":1}` {
		t.Fatalf("got %d %q", resp.StatusCode, resp.body)
	}
}

// The Python client puts a stack trace in a header; it may be large.
func TestHTTP_LargeHeaderOnError(t *testing.T) {
	e := newRawEnv(t)
	e.running(t)
	c, br := e.dial(t)
	send(t, c, "POST /2018-06-01/runtime/invocation/r/error HTTP/1.1\r\nHost: a\r\nLambda-Runtime-Function-XRay-Error-Cause: "+
		strings.Repeat("s", 200<<10)+"\r\nLambda-Runtime-Function-Error-Type: Function.Big\r\nContent-Length: 2\r\n\r\n{}")
	if resp := readResp(t, br); resp.StatusCode != 202 {
		t.Fatalf("got %d %s", resp.StatusCode, resp.body)
	}
	if res := <-e.results; res.ErrorType != "Function.Big" {
		t.Fatalf("result %+v", res)
	}
}

// Header values from the worker cannot inject fields.
func TestHTTP_EventHeadersSanitised(t *testing.T) {
	e := newRawEnv(t)
	if err := e.s.Invoke(&agentproto.Invoke{RequestID: "r", TraceID: "a\r\nX-Evil: 1", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	c, br := e.dial(t)
	send(t, c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := readResp(t, br)
	if resp.Header.Get("X-Evil") != "" || resp.Header.Get(HeaderTraceID) != "a  X-Evil: 1" {
		t.Fatalf("headers %v", resp.Header)
	}
}

func waitParked(t testing.TB, s *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		w := s.waiter
		s.mu.Unlock()
		if w != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no /next parked")
		}
		time.Sleep(time.Millisecond)
	}
}

// FuzzServeConn feeds arbitrary bytes to a connection as pipelined
// requests: the server must never panic, and must stop at the first
// request it refuses.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
		"POST /2018-06-01/runtime/invocation/r/error HTTP/1.1\r\nHost: a\r\nContent-Type: application/vnd.aws.lambda.error.cause+json\r\nContent-Length: 30\r\n\r\n{\"errorMessage\":\"m\",\"errorCause\":1}",
		"POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;x=y\r\nabc\r\n0\r\nLambda-Runtime-Function-Error-Type: Function.X\r\nLambda-Runtime-Function-Error-Body: e30=\r\n\r\n",
		"POST /2018-06-01/runtime/init/error HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"POST /2020-01-01/extension/register HTTP/1.1\r\nHost: a\r\nLambda-Extension-Name: e\r\nContent-Length: 21\r\n\r\n{\"events\":[\"INVOKE\"]}",
		"GET /2020-01-01/extension/event/next HTTP/1.1\r\nHost: a\r\nLambda-Extension-Identifier: x\r\n\r\n",
		"GET http://a/2018-06-01/runtime/invocation/next?x HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\nGET / HTTP/1.1\nHost: a\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := New(Config{Hooks: Hooks{
			Result:    func(r *agentproto.Result) { _ = append([]byte(nil), r.Body...) },
			InitError: func(string, []byte) {},
		}})
		_ = s.Invoke(&agentproto.Invoke{RequestID: "r", Payload: []byte(`{}`)})
		var out bytes.Buffer
		c := newStreamConn(s, bytes.NewReader(in), &out)
		for i := 0; i < 64; i++ {
			more := c.serveOne()
			// A parked /next stays unanswered here: unpark it so the next
			// request is served.
			s.mu.Lock()
			if s.waiter == c {
				s.waiter = nil
			}
			for _, e := range s.extList {
				e.waiter = nil
			}
			c.parked = false
			s.mu.Unlock()
			if p := c.req.path; int(p.off)+int(p.n) > len(c.req.arena) {
				t.Fatalf("path span %v beyond arena %d", p, len(c.req.arena))
			}
			if !more {
				break
			}
		}
		if out.Len() > 0 && !bytes.HasPrefix(out.Bytes(), []byte("HTTP/1.1 ")) {
			t.Fatalf("output is not a response: %q", out.Bytes())
		}
	})
}

// BenchmarkServer_WarmInvoke is one warm invoke through the server with a
// raw keep-alive client: Invoke answers the parked /next, the client posts
// the response (Result hook), gets 202 and parks again. allocs/op counts
// the server's allocations (the client reuses its buffers).
func BenchmarkServer_WarmInvoke(b *testing.B) {
	results := make(chan struct{}, 1)
	s := New(Config{Hooks: Hooks{Result: func(*agentproto.Result) { results <- struct{}{} }}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	next := []byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUser-Agent: Go-http-client/1.1\r\n\r\n")
	post := []byte("POST /2018-06-01/runtime/invocation/00000000-0000-4000-8000-000000000000/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n" +
		"User-Agent: Go-http-client/1.1\r\nContent-Length: 12\r\nContent-Type: application/json\r\n\r\n{\"msg\":\"hi\"}")
	br := bufio.NewReader(c)
	// readResp skips one response by its Content-Length without allocating.
	readResp := func() {
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if bytes.HasPrefix(line, []byte("Content-Length: ")) {
				n, _ = parseInt(line[16 : len(line)-2])
			}
		}
		if _, err := br.Discard(n); err != nil {
			b.Fatal(err)
		}
	}
	inv := &agentproto.Invoke{RequestID: "00000000-0000-4000-8000-000000000000", DeadlineMs: 1700000000000,
		InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:fn", Payload: []byte(`{"msg":"hi"}`)}
	c.Write(next)
	waitParked(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Invoke(inv); err != nil {
			b.Fatal(err)
		}
		readResp()
		c.Write(post)
		<-results
		readResp()
		c.Write(next)
	}
}

func parseInt(b []byte) (int, bool) {
	n, ok := parseContentLength(b)
	return int(n), ok
}
