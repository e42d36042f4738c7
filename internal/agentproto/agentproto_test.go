package agentproto_test

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ignis-run/ignis/internal/agentproto"
)

func TestRoundTrip_EveryType(t *testing.T) {
	var buf bytes.Buffer
	w := agentproto.NewWriter(&buf)
	inv := agentproto.Invoke{RequestID: "r1", DeadlineMs: 42, InvokedARN: "arn", Payload: []byte(`{"k":"v"}`)}
	res := agentproto.Result{RequestID: "r1", Error: true, ErrorType: "Runtime.Unknown", Body: []byte(`{"errorMessage":"x"}`)}
	lg := agentproto.Log{Stream: agentproto.StreamStdout, RequestID: "r1", Line: []byte("hello")}
	steps := []func() error{
		func() error { return w.Hello(agentproto.Hello{Version: agentproto.Version, PID: 1}) },
		func() error { return w.Init(agentproto.Init{Env: []string{"A=1"}, Dir: "/var/task"}) },
		func() error { return w.InitDone(agentproto.InitDone{DurationNs: 5}) },
		func() error { return w.Invoke(inv) },
		func() error { return w.Log(lg) },
		func() error { return w.Result(res) },
		func() error { return w.ShutdownDone() },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	r := agentproto.NewReader(&buf)
	want := []agentproto.Type{agentproto.TypeHello, agentproto.TypeInit, agentproto.TypeInitDone, agentproto.TypeInvoke, agentproto.TypeLog, agentproto.TypeResult, agentproto.TypeShutdownDone}
	for _, wt := range want {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("reading %v: %v", wt, err)
		}
		if f.Type != wt {
			t.Fatalf("type = %v, want %v", f.Type, wt)
		}
		switch f.Type {
		case agentproto.TypeInvoke:
			got, err := f.Invoke()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(inv, got); diff != "" {
				t.Errorf("invoke (-want +got):\n%s", diff)
			}
		case agentproto.TypeResult:
			got, err := f.Result()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		case agentproto.TypeLog:
			got, err := f.Log()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(lg, got); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after last frame: err = %v, want EOF", err)
	}
}

func TestReader_Truncated(t *testing.T) {
	var buf bytes.Buffer
	w := agentproto.NewWriter(&buf)
	if err := w.Result(agentproto.Result{RequestID: "r", Body: []byte("abcdef")}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()[:buf.Len()-3]
	if _, err := agentproto.NewReader(bytes.NewReader(b)).ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w := agentproto.NewWriter(&buf)
	_ = w.Invoke(agentproto.Invoke{RequestID: "r", Payload: []byte("{}")})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := agentproto.NewReader(bytes.NewReader(b))
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				return
			}
			_, _ = fr.Invoke()
			_, _ = fr.Result()
			_, _ = fr.Log()
		}
	})
}

func BenchmarkInvokeRoundTrip(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 100)
	var buf bytes.Buffer
	w := agentproto.NewWriter(&buf)
	r := agentproto.NewReader(&buf)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := w.Invoke(agentproto.Invoke{RequestID: "8d4e2c1a-0000-4000-8000-000000000000", DeadlineMs: 1, InvokedARN: "arn:aws:lambda:us-east-1:000000000000:function:f", Payload: payload}); err != nil {
			b.Fatal(err)
		}
		f, err := r.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Invoke(); err != nil {
			b.Fatal(err)
		}
	}
}

// AppendJSONString writes what encoding/json writes, for plain ASCII (the
// fast path) and for everything that needs escaping.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "8476a536-e9f4-11e8-9739-2dfe598c3fcd", "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
		`quote " and \ backslash`, "tab\tnewline\n", "<html>&amp;", "héllo ☃", "\x00\x1f\x7f", string([]byte{0xff, 'a'}), "\u2028\u2029"} {
		want, _ := json.Marshal(s)
		if got := agentproto.AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendJSONString(%q) = %s, want x%s", s, got, want)
		}
	}
}
