package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
)

func goFn(t *testing.T) *fn {
	f := newFn(t, "provided.al2023", "bootstrap")
	copyFile(t, goFuncBin, filepath.Join(f.taskRoot, "bootstrap"), 0o755)
	return f
}

func TestAgent_GoFunction(t *testing.T) {
	t.Parallel()
	f := goFn(t)
	p := f.start(t)
	if p.hello.Version != agentproto.Version || p.hello.PID == 0 {
		t.Fatalf("hello = %+v", p.hello)
	}
	p.initOK(f.init())

	for i := 0; i < 3; i++ {
		id, res := p.invoke(`{"msg":"hi"}`)
		if res.Error {
			t.Fatalf("unexpected error result: %s", res.Body)
		}
		m := decode(t, res.Body)
		if m["msg"] != "hi" || m["requestId"] != id || m["function"] != f.name || m["memory"] != float64(128) ||
			m["hasDeadline"] != true || m["arn"] != "arn:aws:lambda:us-east-1:123456789012:function:fn" {
			t.Fatalf("reply = %v", m)
		}
	}

	id, res := p.invoke(`{"fail":"boom"}`)
	if !res.Error || res.ErrorType != "Runtime.Unknown" {
		t.Fatalf("error result = %+v %s", res, res.Body)
	}
	if m := decode(t, res.Body); m["errorMessage"] != "boom" || m["errorType"] != "errorString" {
		t.Fatalf("error body (%s) = %v", id, m)
	}

	id, res = p.invoke(`{"msg":"x","print":"hello from go"}`)
	if res.Error {
		t.Fatalf("print: %s", res.Body)
	}
	if got := p.logsUntil("stdout", id, "hello from go\n", 5*time.Second); got != "hello from go\n" {
		t.Fatalf("stdout for %s = %q (all logs: %q)", id, got, p.logText("", ""))
	}
	if got := p.logsUntil("stderr", id, "err:hello from go\n", 5*time.Second); got != "err:hello from go\n" {
		t.Fatalf("stderr for %s = %q", id, got)
	}
	p.shutdown()
}

func TestAgent_Python(t *testing.T) {
	t.Parallel()
	f := newFn(t, "python3.11", "app.handler")
	if _, err := os.Stat(f.bootstrap[0]); err != nil {
		t.Skipf("python3.11 not installed: %v", err)
	}
	f.fixture(t, "py-echo")
	f.userVars = map[string]string{"GREETING": "hello", "AWS_REGION": "ignored"}
	p := f.start(t)
	p.initOK(f.init())

	id, res := p.invoke(`{"k":"v","print":"line from python"}`)
	if res.Error {
		t.Fatalf("error: %s", res.Body)
	}
	m := decode(t, res.Body)
	if m["function_name"] != f.name || m["function_version"] != "$LATEST" || m["memory_limit_in_mb"] != float64(128) ||
		m["request_id"] != id || m["env_greeting"] != "hello" || m["handler_env"] != "app.handler" ||
		m["invoked_arn"] != "arn:aws:lambda:us-east-1:123456789012:function:fn" || m["calls_in_this_sandbox"] != float64(1) {
		t.Fatalf("reply = %v", m)
	}
	if r := m["remaining_ms"].(float64); r <= 0 || r > 30000 {
		t.Fatalf("remaining_ms = %v", r)
	}
	_, res = p.invoke(`{}`)
	if m := decode(t, res.Body); m["calls_in_this_sandbox"] != float64(2) {
		t.Fatalf("second call = %v", m)
	}

	id2, res := p.invoke(`{"raise":"x"}`)
	if !res.Error {
		t.Fatalf("raise: not an error: %s", res.Body)
	}
	em := decode(t, res.Body)
	if em["errorType"] != "ValueError" || em["errorMessage"] != "asked to fail: x" {
		t.Fatalf("error body = %v", em)
	}
	if st, ok := em["stackTrace"].([]any); !ok || len(st) == 0 || !strings.Contains(st[len(st)-1].(string), "app.py") {
		t.Fatalf("stackTrace = %v", em["stackTrace"])
	}
	if got := p.logsUntil("stdout", id, "line from python\n", 5*time.Second); !strings.Contains(got, "line from python\n") {
		t.Fatalf("stdout for %s = %q; all: %+v", id, got, p.logs)
	}
	if got := p.logsUntil("stdout", id2, "[ERROR] ValueError: asked to fail: x", 5*time.Second); !strings.Contains(got, "[ERROR] ValueError: asked to fail: x") {
		t.Fatalf("error log for %s = %q", id2, got)
	}
	p.shutdown()
}

func TestAgent_NodeESM(t *testing.T) {
	t.Parallel()
	f := newFn(t, "nodejs20.x", "index.handler")
	if _, err := os.Stat(f.bootstrap[0]); err != nil {
		t.Skipf("node not installed: %v", err)
	}
	f.fixture(t, "node-echo")
	p := f.start(t)
	p.initOK(f.init())
	id, res := p.invoke(`{"a":1}`)
	if res.Error {
		t.Fatalf("error: %s", res.Body)
	}
	m := decode(t, res.Body)
	if m["fn"] != f.name || m["mem"] != float64(128) || m["rid"] != id || m["calls"] != float64(1) {
		t.Fatalf("reply = %v", m)
	}
	if r := m["remaining"].(float64); r <= 0 || r > 30000 {
		t.Fatalf("remaining = %v", r)
	}
	_, res = p.invoke(`{"raise":"y"}`)
	em := decode(t, res.Body)
	if !res.Error || em["errorType"] != "Error" || em["errorMessage"] != "node asked to fail: y" {
		t.Fatalf("error = %+v %v", res, em)
	}
	if tr, ok := em["trace"].([]any); !ok || len(tr) < 2 {
		t.Fatalf("trace = %v", em["trace"])
	}
	p.shutdown()
}

func TestAgent_NodeCommonJSCallback(t *testing.T) {
	t.Parallel()
	f := newFn(t, "nodejs20.x", "lib/cb.handler")
	if _, err := os.Stat(f.bootstrap[0]); err != nil {
		t.Skipf("node not installed: %v", err)
	}
	f.write(t, "lib/cb.js", `
exports.handler = function (event, context, callback) {
  console.log("cb got", JSON.stringify(event));
  setTimeout(() => {
    if (event.fail) return callback(new TypeError("cb failed"));
    callback(null, { ok: true, id: context.awsRequestId, left: context.getRemainingTimeInMillis() > 0, name: context.functionName });
  }, 5);
};
`, 0o644)
	p := f.start(t)
	p.initOK(f.init())
	id, res := p.invoke(`{"x":1}`)
	if m := decode(t, res.Body); res.Error || m["ok"] != true || m["id"] != id || m["left"] != true || m["name"] != f.name {
		t.Fatalf("reply = %+v %s", res, res.Body)
	}
	_, res = p.invoke(`{"fail":true}`)
	if m := decode(t, res.Body); !res.Error || m["errorType"] != "TypeError" || m["errorMessage"] != "cb failed" {
		t.Fatalf("error = %+v %s", res, res.Body)
	}
	if got := p.logsUntil("stdout", id, "cb got", 5*time.Second); !strings.Contains(got, "\t"+id+"\tINFO\tcb got {\"x\":1}") {
		t.Fatalf("console.log line = %q", got)
	}
	p.shutdown()
}

func TestAgent_InitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, runtime, handler string
		files                  map[string]string
		timeoutMs              int64
		wantType, wantMsg      string
	}{
		{name: "missing bootstrap", runtime: "provided.al2023", handler: "x",
			wantType: "Runtime.InvalidEntrypoint", wantMsg: "Couldn't find valid bootstrap(s): ["},
		{name: "bootstrap exits", runtime: "provided.al2", handler: "x",
			files:    map[string]string{"bootstrap": "#!/bin/sh\necho dying >&2\nexit 2\n"},
			wantType: "Runtime.ExitError", wantMsg: "Runtime exited with error: exit status 2"},
		{name: "init timeout", runtime: "provided.al2", handler: "x", timeoutMs: 300,
			files:    map[string]string{"bootstrap": "#!/bin/sh\nexec sleep 30\n"},
			wantType: "Sandbox.Timedout", wantMsg: "Init phase timed out after"},
		{name: "python missing module", runtime: "python3.11", handler: "nope.handler",
			wantType: "Runtime.ImportModuleError", wantMsg: "Unable to import module 'nope'"},
		{name: "python missing handler", runtime: "python3.11", handler: "app.nope",
			files:    map[string]string{"app.py": "def handler(e, c):\n    return 1\n"},
			wantType: "Runtime.HandlerNotFound", wantMsg: "Handler 'nope' missing on module 'app'"},
		{name: "python syntax error", runtime: "python3.11", handler: "app.handler",
			files:    map[string]string{"app.py": "def handler(e, c)\n    return 1\n"},
			wantType: "Runtime.UserCodeSyntaxError", wantMsg: "Syntax error in module 'app'"},
		{name: "node missing module", runtime: "nodejs20.x", handler: "nope.handler",
			wantType: "Runtime.ImportModuleError", wantMsg: "Cannot find module 'nope'"},
		{name: "node missing handler", runtime: "nodejs20.x", handler: "index.nope",
			files:    map[string]string{"index.mjs": "export const handler = async () => 1;\n"},
			wantType: "Runtime.HandlerNotFound", wantMsg: "index.nope is undefined or not exported"},
		{name: "node syntax error", runtime: "nodejs20.x", handler: "index.handler",
			files:    map[string]string{"index.js": "exports.handler = async () => {\n"},
			wantType: "Runtime.UserCodeSyntaxError", wantMsg: "SyntaxError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFn(t, tt.runtime, tt.handler)
			if len(f.bootstrap) > 0 {
				if _, err := os.Stat(f.bootstrap[0]); err != nil {
					t.Skipf("%s not installed: %v", f.bootstrap[0], err)
				}
			}
			for name, content := range tt.files {
				f.write(t, name, content, 0o755)
			}
			if tt.timeoutMs > 0 {
				f.initTimeoutMs = tt.timeoutMs
			}
			p := f.start(t)
			e := p.initErr(f.init())
			m := decode(t, e.Body)
			if e.ErrorType != tt.wantType || m["errorType"] != tt.wantType || !strings.Contains(m["errorMessage"].(string), tt.wantMsg) {
				t.Fatalf("InitError = %s %s; want %s %q", e.ErrorType, e.Body, tt.wantType, tt.wantMsg)
			}
			if tt.name == "missing bootstrap" {
				want := "Couldn't find valid bootstrap(s): [" + filepath.Join(f.taskRoot, "bootstrap") + " " + filepath.Join(f.optRoot, "bootstrap") + "]"
				if m["errorMessage"] != want {
					t.Fatalf("message = %q, want %q", m["errorMessage"], want)
				}
			}
			p.shutdown()
		})
	}
}

func TestAgent_RuntimeCrash(t *testing.T) {
	t.Parallel()
	t.Run("exit status", func(t *testing.T) {
		t.Parallel()
		f := goFn(t)
		p := f.start(t)
		p.initOK(f.init())
		p.send(`{"crash":true}`)
		var ex agentproto.RuntimeExit
		if err := p.next(agentproto.TypeRuntimeExit, 10*time.Second).DecodeJSON(&ex); err != nil {
			t.Fatal(err)
		}
		if ex.Status != "exit status 3" || ex.ExitCode != 3 || ex.Signal != "" {
			t.Fatalf("RuntimeExit = %+v", ex)
		}
		// Later invokes fail at once instead of hanging.
		_, res := p.invoke(`{}`)
		if !res.Error || res.ErrorType != "Runtime.ExitError" {
			t.Fatalf("after crash: %+v %s", res, res.Body)
		}
		p.shutdown()
	})
	t.Run("signal", func(t *testing.T) {
		t.Parallel()
		f := newFn(t, "provided.al2023", "x")
		// The runtime kills itself once its first /next returns.
		f.write(t, "bootstrap", "#!/bin/sh\n"+
			"exec "+goFuncBin+"\n", 0o755)
		p := f.start(t)
		p.initOK(f.init())
		id, res := p.invoke(`{}`)
		pid := int(decode(t, res.Body)["pid"].(float64))
		_ = id
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var ex agentproto.RuntimeExit
		if err := p.next(agentproto.TypeRuntimeExit, 10*time.Second).DecodeJSON(&ex); err != nil {
			t.Fatal(err)
		}
		if ex.Status != "signal: killed" || ex.ExitCode != -1 || ex.Signal != "SIGKILL" {
			t.Fatalf("RuntimeExit = %+v", ex)
		}
		p.shutdown()
	})
}

func TestAgent_OversizedResponse(t *testing.T) {
	t.Parallel()
	f := goFn(t)
	p := f.start(t)
	p.initOK(f.init())
	_, res := p.invoke(`{"big":6300000}`)
	if !res.Error || res.ErrorType != "Function.ResponseSizeTooLarge" {
		t.Fatalf("result = %+v", res)
	}
	want := `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`
	if string(res.Body) != want {
		t.Fatalf("body = %s", res.Body)
	}
	// aws-lambda-go treats the 413 as fatal and exits.
	p.next(agentproto.TypeRuntimeExit, 10*time.Second)
	p.shutdown()
}

func TestAgent_LongLogLinesSplit(t *testing.T) {
	t.Parallel()
	f := goFn(t)
	p := f.start(t)
	p.initOK(f.init())
	long := strings.Repeat("a", 256<<10) + strings.Repeat("b", 1000)
	id, res := p.invoke(`{"print":"` + long + `"}`)
	if res.Error {
		t.Fatalf("%s", res.Body)
	}
	p.logsUntil("stdout", id, strings.Repeat("b", 1000), 5*time.Second)
	var lines []string
	for _, l := range p.logs {
		if l.Stream == "stdout" && l.RequestID == id {
			lines = append(lines, string(l.Line))
		}
	}
	if len(lines) != 2 || len(lines[0]) != 256<<10 || lines[1] != strings.Repeat("b", 1000) {
		t.Fatalf("got %d lines, lengths %v", len(lines), lens(lines))
	}
	p.shutdown()
}

func lens(ss []string) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = len(s)
	}
	return out
}

// extensionPy registers for INVOKE and SHUTDOWN and prints what it gets.
const extensionPy = `#!/usr/bin/env python3
import http.client, json, os, sys
sys.stdout.reconfigure(line_buffering=True)
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
c.request("POST", "/2020-01-01/extension/register", body=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}),
          headers={"Lambda-Extension-Name": os.path.basename(sys.argv[0])})
r = c.getresponse(); body = json.loads(r.read())
ext_id = r.getheader("Lambda-Extension-Identifier")
print("EXT registered", r.status, body["functionName"], body["handler"], "_HANDLER" in os.environ)
while True:
    c.request("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ext_id})
    r = c.getresponse(); ev = json.loads(r.read())
    if ev["eventType"] == "INVOKE":
        print("EXT INVOKE", ev["requestId"], ev["invokedFunctionArn"], ev["deadlineMs"] > 0)
    else:
        print("EXT SHUTDOWN", ev["shutdownReason"])
        sys.exit(0)
`

func TestAgent_Extensions(t *testing.T) {
	t.Parallel()
	f := goFn(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 not installed")
	}
	if err := os.MkdirAll(filepath.Join(f.optRoot, "extensions"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.optRoot, "extensions", "printer"), []byte(extensionPy), 0o755); err != nil {
		t.Fatal(err)
	}
	p := f.start(t)
	p.initOK(f.init())
	id, res := p.invoke(`{"msg":"e"}`)
	if res.Error {
		t.Fatalf("%s", res.Body)
	}
	all := p.logsUntil("stdout", "", "EXT INVOKE "+id, 5*time.Second)
	if !strings.Contains(all, "EXT registered 200 "+f.name+" bootstrap False\n") {
		t.Fatalf("no registration line in %q", all)
	}
	if !strings.Contains(all, "EXT INVOKE "+id+" arn:aws:lambda:us-east-1:123456789012:function:fn True\n") {
		t.Fatalf("no INVOKE line in %q", all)
	}
	p.shutdown()
	p.drainLogs(100 * time.Millisecond)
	if all := p.logText("stdout", ""); !strings.Contains(all, "EXT SHUTDOWN spindown\n") {
		t.Fatalf("no SHUTDOWN line in %q", all)
	}
}

func TestAgent_StdinEOFKillsEverything(t *testing.T) {
	t.Parallel()
	f := goFn(t)
	p := f.start(t)
	p.initOK(f.init())
	_, res := p.invoke(`{}`)
	pid := int(decode(t, res.Body)["pid"].(float64))
	p.stdin.Close()
	select {
	case err := <-p.waited:
		p.waited <- err
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not exit on stdin EOF")
	}
	// The runtime was killed (and, being our grandchild, reaped by init or
	// the agent): it must be gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(b), ") Z ") {
			break // zombie awaiting the test's init: dead
		}
		if time.Now().After(deadline) {
			t.Fatalf("runtime %d still alive after agent exit", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
