package runtimeapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/runtimeapi"
)

// env is a Server on a real loopback listener with recording hooks.
type env struct {
	srv     *runtimeapi.Server
	base    string
	mu      sync.Mutex
	results []agentproto.Result
	initErr []string
	resCh   chan agentproto.Result
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{resCh: make(chan agentproto.Result, 8)}
	e.srv = runtimeapi.New(runtimeapi.Config{
		FunctionName: "fn", FunctionVersion: "$LATEST", Handler: "app.handler",
		Hooks: runtimeapi.Hooks{
			Result: func(r *agentproto.Result) {
				c := *r
				c.Body = append([]byte(nil), r.Body...)
				e.resCh <- c
			},
			InitError: func(typ string, body []byte) {
				e.mu.Lock()
				e.initErr = append(e.initErr, typ+" "+string(body))
				e.mu.Unlock()
			},
		},
	})
	e.base = serveEnv(t, e.srv).base
	return e
}

// serveEnv serves srv on a loopback listener until the test ends.
func serveEnv(t *testing.T, srv *runtimeapi.Server) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &env{srv: srv, base: "http://" + ln.Addr().String()}
}

func (e *env) do(t *testing.T, method, path string, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// nextAsync starts a runtime /next call and returns its outcome channel.
func (e *env) nextAsync(t *testing.T) chan *http.Response {
	ch := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get(e.base + "/2018-06-01/runtime/invocation/next")
		if err != nil {
			t.Error(err)
			close(ch)
			return
		}
		ch <- resp
	}()
	return ch
}

func errType(t *testing.T, b []byte) string {
	t.Helper()
	var m struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return m.ErrorType
}

func TestServer_NextDeliversEventWithHeaders(t *testing.T) {
	e := newEnv(t)
	e.srv.CloseRegistration()
	ch := e.nextAsync(t)
	select {
	case <-e.srv.InitReady():
	case <-time.After(5 * time.Second):
		t.Fatal("init not ready after first /next")
	}
	inv := &agentproto.Invoke{RequestID: "rid-1", DeadlineMs: 1700000000123, InvokedARN: "arn:x", TraceID: "Root=1-a",
		ClientContext: `{"c":1}`, CognitoIdentity: `{"cognitoIdentityId":"i"}`, TenantID: "t1", Payload: []byte(`{"k":"v"}`)}
	if err := e.srv.Invoke(inv); err != nil {
		t.Fatal(err)
	}
	resp := <-ch
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := map[string]string{
		"Lambda-Runtime-Aws-Request-Id": "rid-1", "Lambda-Runtime-Deadline-Ms": "1700000000123",
		"Lambda-Runtime-Invoked-Function-Arn": "arn:x", "Lambda-Runtime-Trace-Id": "Root=1-a",
		"Lambda-Runtime-Client-Context": `{"c":1}`, "Lambda-Runtime-Cognito-Identity": `{"cognitoIdentityId":"i"}`,
		"Lambda-Runtime-Aws-Tenant-Id": "t1", "Content-Type": "application/json",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.StatusCode != 200 || string(body) != `{"k":"v"}` {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}

	// A second /next while the invoke is unanswered is illegal.
	r, b := e.do(t, "GET", "/2018-06-01/runtime/invocation/next", "", nil)
	if r.StatusCode != 403 || errType(t, b) != "InvalidStateTransition" {
		t.Fatalf("early next: %d %s", r.StatusCode, b)
	}
	// Wrong id → 400.
	r, b = e.do(t, "POST", "/2018-06-01/runtime/invocation/other/response", "x", nil)
	if r.StatusCode != 400 || errType(t, b) != "InvalidRequestID" {
		t.Fatalf("wrong id: %d %s", r.StatusCode, b)
	}
	// Bad response mode → 400.
	r, b = e.do(t, "POST", "/2018-06-01/runtime/invocation/rid-1/response", "x", map[string]string{"Lambda-Runtime-Function-Response-Mode": "Streaming"})
	if r.StatusCode != 400 || errType(t, b) != "InvalidFunctionResponseMode" {
		t.Fatalf("bad mode: %d %s", r.StatusCode, b)
	}
	r, b = e.do(t, "POST", "/2018-06-01/runtime/invocation/rid-1/response", `{"ok":1}`, map[string]string{"Content-Type": "application/json"})
	if r.StatusCode != 202 || string(b) != "{\"status\":\"OK\"}\n" {
		t.Fatalf("response: %d %q", r.StatusCode, b)
	}
	res := <-e.resCh
	if res.RequestID != "rid-1" || res.Error || string(res.Body) != `{"ok":1}` || res.ContentType != "application/json" {
		t.Fatalf("result = %+v %s", res, res.Body)
	}
	// Answering twice → 403.
	r, b = e.do(t, "POST", "/2018-06-01/runtime/invocation/rid-1/error", `{}`, nil)
	if r.StatusCode != 403 || errType(t, b) != "InvalidStateTransition" {
		t.Fatalf("second answer: %d %s", r.StatusCode, b)
	}
	// init/error after init → 403.
	r, b = e.do(t, "POST", "/2018-06-01/runtime/init/error", `{}`, nil)
	if r.StatusCode != 403 || errType(t, b) != "InvalidStateTransition" {
		t.Fatalf("late init error: %d %s", r.StatusCode, b)
	}
}

func TestServer_ErrorAndLimits(t *testing.T) {
	tests := []struct {
		name, path, body string
		hdr              map[string]string
		wantStatus       int
		wantType         string
		wantBody         string
	}{
		{name: "error without header", path: "error", body: `{"errorMessage":"m","errorType":"ValueError"}`,
			wantStatus: 202, wantType: "Runtime.Unknown", wantBody: `{"errorMessage":"m","errorType":"ValueError"}`},
		{name: "error with header", path: "error", body: `{"errorMessage":"m"}`, hdr: map[string]string{"Lambda-Runtime-Function-Error-Type": "Function.Custom"},
			wantStatus: 202, wantType: "Function.Custom", wantBody: `{"errorMessage":"m"}`},
		{name: "error cause stripped", path: "error", body: `{"errorMessage":"m","errorCause":{"x":1}}`,
			hdr:        map[string]string{"Content-Type": "application/vnd.aws.lambda.error.cause+json"},
			wantStatus: 202, wantType: "Runtime.Unknown", wantBody: `{"errorMessage":"m"}`},
		{name: "response too large", path: "response", body: strings.Repeat("x", runtimeapi.MaxResponseSize+1),
			wantStatus: 413, wantType: "Function.ResponseSizeTooLarge",
			wantBody: `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`},
		{name: "response at limit", path: "response", body: strings.Repeat("x", runtimeapi.MaxResponseSize),
			wantStatus: 202, wantBody: strings.Repeat("x", runtimeapi.MaxResponseSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ch := e.nextAsync(t)
			if err := e.srv.Invoke(&agentproto.Invoke{RequestID: "r", Payload: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			(<-ch).Body.Close()
			r, b := e.do(t, "POST", "/2018-06-01/runtime/invocation/r/"+tt.path, tt.body, tt.hdr)
			if r.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %s", r.StatusCode, b)
			}
			res := <-e.resCh
			if res.ErrorType != tt.wantType || string(res.Body) != tt.wantBody || res.Error != (tt.wantType != "") {
				if len(res.Body) > 200 {
					res.Body = res.Body[:200]
				}
				t.Fatalf("result = %+v %s", res, res.Body)
			}
		})
	}
}

func TestServer_StreamingResponseWithTrailers(t *testing.T) {
	e := newEnv(t)
	ch := e.nextAsync(t)
	if err := e.srv.Invoke(&agentproto.Invoke{RequestID: "s", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	(<-ch).Body.Close()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", e.base+"/2018-06-01/runtime/invocation/s/response", pr)
	req.Header.Set("Lambda-Runtime-Function-Response-Mode", "streaming")
	req.Trailer = http.Header{"Lambda-Runtime-Function-Error-Type": nil, "Lambda-Runtime-Function-Error-Body": nil}
	go func() {
		pw.Write([]byte("part1,"))
		pw.Write([]byte("part2"))
		req.Trailer.Set("Lambda-Runtime-Function-Error-Type", "Function.StreamBroke")
		req.Trailer.Set("Lambda-Runtime-Function-Error-Body", "eyJlcnJvck1lc3NhZ2UiOiJicm9rZSJ9") // {"errorMessage":"broke"}
		pw.Close()
	}()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	res := <-e.resCh
	if !res.Error || res.ErrorType != "Function.StreamBroke" || string(res.Body) != `{"errorMessage":"broke"}` {
		t.Fatalf("result = %+v %s", res, res.Body)
	}
}

func TestServer_InitError(t *testing.T) {
	e := newEnv(t)
	r, b := e.do(t, "POST", "/2018-06-01/runtime/init/error", `{"errorMessage":"no","errorType":"Runtime.ImportModuleError"}`,
		map[string]string{"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
	if r.StatusCode != 202 {
		t.Fatalf("%d %s", r.StatusCode, b)
	}
	e.mu.Lock()
	got := e.initErr
	e.mu.Unlock()
	if len(got) != 1 || got[0] != `Runtime.ImportModuleError {"errorMessage":"no","errorType":"Runtime.ImportModuleError"}` {
		t.Fatalf("init errors = %q", got)
	}
	r, b = e.do(t, "GET", "/2018-06-01/runtime/invocation/next", "", nil)
	if r.StatusCode != 403 {
		t.Fatalf("next after init error: %d %s", r.StatusCode, b)
	}
}

func TestServer_Extensions(t *testing.T) {
	e := newEnv(t)
	reg := func(name, body string) (*http.Response, []byte) {
		return e.do(t, "POST", "/2020-01-01/extension/register", body, map[string]string{"Lambda-Extension-Name": name})
	}
	r, b := e.do(t, "POST", "/2020-01-01/extension/register", `{"events":["INVOKE"]}`, nil)
	if r.StatusCode != 403 || errType(t, b) != "Extension.MissingExtensionName" {
		t.Fatalf("no name: %d %s", r.StatusCode, b)
	}
	r, b = reg("bad", `{"events":["BOGUS"]}`)
	if r.StatusCode != 403 || errType(t, b) != "Extension.InvalidEventType" {
		t.Fatalf("bad event: %d %s", r.StatusCode, b)
	}
	r, b = reg("ext1", `{"events":["INVOKE","SHUTDOWN"]}`)
	id := r.Header.Get("Lambda-Extension-Identifier")
	if r.StatusCode != 200 || id == "" || string(b) != `{"functionName":"fn","functionVersion":"$LATEST","handler":"app.handler"}` {
		t.Fatalf("register: %d %q %s", r.StatusCode, id, b)
	}
	r, b = e.do(t, "GET", "/2020-01-01/extension/event/next", "", nil)
	if r.StatusCode != 403 || errType(t, b) != "Extension.MissingExtensionIdentifier" {
		t.Fatalf("next without id: %d %s", r.StatusCode, b)
	}
	r, b = e.do(t, "GET", "/2020-01-01/extension/event/next", "", map[string]string{"Lambda-Extension-Identifier": "nope"})
	if r.StatusCode != 403 || errType(t, b) != "Extension.UnknownExtensionIdentifier" {
		t.Fatalf("next unknown id: %d %s", r.StatusCode, b)
	}
	if n := e.srv.CloseRegistration(); n != 1 {
		t.Fatalf("registered = %d", n)
	}
	r, b = reg("late", `{"events":["INVOKE"]}`)
	if r.StatusCode != 403 || errType(t, b) != "Extension.RegistrationClosed" {
		t.Fatalf("late register: %d %s", r.StatusCode, b)
	}

	// Init completes only when both the runtime and the extension wait.
	rt := e.nextAsync(t)
	time.Sleep(50 * time.Millisecond)
	select {
	case <-e.srv.InitReady():
		t.Fatal("init ready before the extension called next")
	default:
	}
	evCh := make(chan []byte, 2)
	getEvent := func() {
		req, _ := http.NewRequest("GET", e.base+"/2020-01-01/extension/event/next", nil)
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Lambda-Extension-Event-Identifier") == "" {
			t.Error("no event identifier")
		}
		evCh <- b
	}
	go getEvent()
	select {
	case <-e.srv.InitReady():
	case <-time.After(5 * time.Second):
		t.Fatal("init not ready")
	}
	if err := e.srv.Invoke(&agentproto.Invoke{RequestID: "r1", DeadlineMs: 5, InvokedARN: "arn:f", TraceID: "Root=x", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	(<-rt).Body.Close()
	if got := <-evCh; !bytes.Equal(got, []byte(`{"eventType":"INVOKE","deadlineMs":5,"requestId":"r1","invokedFunctionArn":"arn:f","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=x"}}`)) {
		t.Fatalf("INVOKE event = %s", got)
	}
	go getEvent()
	if n := e.srv.Shutdown("spindown", 9); n != 1 {
		t.Fatalf("shutdown told %d", n)
	}
	if got := <-evCh; string(got) != `{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":9}` {
		t.Fatalf("SHUTDOWN event = %s", got)
	}
	r, b = e.do(t, "POST", "/2020-01-01/extension/exit/error", "{}", map[string]string{"Lambda-Extension-Identifier": id})
	if r.StatusCode != 403 {
		t.Fatalf("exit error without type: %d %s", r.StatusCode, b)
	}
	r, _ = e.do(t, "POST", "/2020-01-01/extension/exit/error", "{}", map[string]string{"Lambda-Extension-Identifier": id, "Lambda-Extension-Function-Error-Type": "Extension.Bye"})
	if r.StatusCode != 202 {
		t.Fatalf("exit error: %d", r.StatusCode)
	}
}
