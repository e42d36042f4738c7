package agent_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agent"
	"github.com/ignis-run/ignis/internal/agentproto"
)

// benchFns lays out the three benchmark functions.
func benchFn(b *testing.B, kind string) *fn {
	b.Helper()
	var f *fn
	switch kind {
	case "go":
		f = newFn(b, "provided.al2023", "bootstrap")
		copyFile(b, goFuncBin, filepath.Join(f.taskRoot, "bootstrap"), 0o755)
	case "python":
		f = newFn(b, "python3.11", "app.handler")
		f.fixture(b, "py-echo")
	case "node":
		f = newFn(b, "nodejs20.x", "index.handler")
		f.fixture(b, "node-echo")
	}
	if len(f.bootstrap) > 0 {
		if _, err := os.Stat(f.bootstrap[0]); err != nil {
			b.Skipf("%s not installed", f.bootstrap[0])
		}
	}
	return f
}

// BenchmarkAgent_ColdStart measures agent process start → InitDone for a
// native (unsandboxed) function: agent exec, Hello, Init, runtime start,
// handler load, first /next.
func BenchmarkAgent_ColdStart(b *testing.B) {
	for _, kind := range []string{"go", "python", "node"} {
		b.Run(kind, func(b *testing.B) {
			f := benchFn(b, kind)
			m := f.init()
			var initNs int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := f.start(b)
				d := p.initOK(m)
				initNs += d.DurationNs
				b.StopTimer()
				_ = p.cmd.Process.Kill()
				<-p.waited
				p.waited <- nil
				b.StartTimer()
			}
			b.ReportMetric(float64(initNs)/float64(b.N)/1e6, "init-ms/op")
		})
	}
}

// BenchmarkAgent_WarmInvoke measures one invoke round trip through a
// running agent subprocess: Invoke frame → Runtime API /next → runtime →
// /response → Result frame.
func BenchmarkAgent_WarmInvoke(b *testing.B) {
	for _, kind := range []string{"go", "python", "node"} {
		b.Run(kind, func(b *testing.B) {
			f := benchFn(b, kind)
			p := f.start(b)
			p.initOK(f.init())
			inv := agentproto.Invoke{RequestID: "00000000-0000-4000-8000-000000000000", InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:fn",
				DeadlineMs: time.Now().Add(time.Hour).UnixMilli(), Payload: []byte(`{"msg":"hi"}`)}
			b.ReportAllocs()
			b.ResetTimer()
			agent0, kids0 := procCPU(p.cmd.Process.Pid)
			for i := 0; i < b.N; i++ {
				if err := p.w.Invoke(inv); err != nil {
					b.Fatal(err)
				}
				if fr := p.next(agentproto.TypeResult, 30*time.Second); len(fr.Body) == 0 {
					b.Fatal("empty result")
				}
			}
			b.StopTimer()
			agent1, kids1 := procCPU(p.cmd.Process.Pid)
			if agent1 >= 0 {
				b.ReportMetric(float64(agent1-agent0)/float64(b.N)/1e3, "agent-cpu-us/op")
				b.ReportMetric(float64(kids1-kids0)/float64(b.N)/1e3, "runtime-cpu-us/op")
			}
		})
	}
}

// BenchmarkAgent_WarmInvokeInProcess runs the agent inside the benchmark
// process (the runtime is still a real aws-lambda-go process) so that
// allocs/op counts the agent's own allocations on the warm path, plus the
// harness's frame encode/decode. It must not run beside tests that start
// processes: the agent's reaper waits on every child of its process.
func BenchmarkAgent_WarmInvokeInProcess(b *testing.B) {
	f := benchFn(b, "go")
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	a := agent.New(agent.Options{TaskRoot: f.taskRoot, OptRoot: f.optRoot}, inR, outW)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	w := agentproto.NewWriter(inW)
	r := agentproto.NewReader(outR)
	read := func(want agentproto.Type) agentproto.Frame {
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			if fr.Type == agentproto.TypeLog {
				continue
			}
			if fr.Type != want {
				b.Fatalf("got %v %s, want %v", fr.Type, fr.Body, want)
			}
			return fr
		}
	}
	read(agentproto.TypeHello)
	if err := w.Init(f.init()); err != nil {
		b.Fatal(err)
	}
	read(agentproto.TypeInitDone)
	inv := agentproto.Invoke{RequestID: "00000000-0000-4000-8000-000000000000", InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:fn",
		DeadlineMs: time.Now().Add(time.Hour).UnixMilli(), Payload: []byte(`{"msg":"hi"}`)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Invoke(inv); err != nil {
			b.Fatal(err)
		}
		read(agentproto.TypeResult)
	}
	b.StopTimer()
	_ = w.Shutdown(agentproto.Shutdown{Reason: "spindown", DeadlineMs: time.Now().Add(time.Second).UnixMilli()})
	read(agentproto.TypeShutdownDone)
	cancel()
	<-done
}

// procCPU returns the CPU time (ns) of process pid and of its direct
// children (the runtime), from /proc; -1 when unavailable.
func procCPU(pid int) (self, kids int64) {
	const tick = int64(time.Second) / 100 // USER_HZ
	stat := func(pid string) (int64, []string) {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return -1, nil
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		return (u + k) * tick, nil
	}
	self, _ = stat(strconv.Itoa(pid))
	if self < 0 {
		return -1, -1
	}
	ts, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	var cs []string
	for _, t := range ts {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		cs = append(cs, strings.Fields(string(b))...)
	}
	for _, c := range cs {
		if t, _ := stat(c); t > 0 {
			kids += t
		}
	}
	return self, kids
}

// BenchmarkLoopbackHTTP is the yardstick: one small HTTP POST round trip
// on loopback with a keep-alive client, measured in the same run.
func BenchmarkLoopbackHTTP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	payload := []byte(`{"msg":"hi"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
