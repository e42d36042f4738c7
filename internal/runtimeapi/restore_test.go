package runtimeapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/runtimeapi"
)

// TestServer_Restore_Lifecycle walks SnapStart's runtime side: restore/next
// completes init and parks until Restore; the first /next after it closes
// RestoreReady and then takes invokes as usual.
func TestServer_Restore_Lifecycle(t *testing.T) {
	e := newEnv(t)
	e.srv.CloseRegistration()
	if err := e.srv.Restore(); err == nil {
		t.Fatal("Restore before restore/next succeeded")
	}
	restored := make(chan int, 1)
	go func() {
		resp, err := http.Get(e.base + "/2018-06-01/runtime/restore/next")
		if err != nil {
			t.Error(err)
			restored <- 0
			return
		}
		resp.Body.Close()
		restored <- resp.StatusCode
	}()
	select {
	case <-e.srv.InitReady():
	case <-time.After(5 * time.Second):
		t.Fatal("restore/next did not complete init")
	}
	// Parked: a second runtime call to /next is refused meanwhile.
	if resp, _ := e.do(t, "GET", "/2018-06-01/runtime/invocation/next", "", nil); resp.StatusCode != 403 {
		t.Errorf("/next while snapshot-ready: %d, want 403", resp.StatusCode)
	}
	select {
	case c := <-restored:
		t.Fatalf("restore/next answered %d before Restore", c)
	case <-time.After(100 * time.Millisecond):
	}
	if err := e.srv.Restore(); err != nil {
		t.Fatal(err)
	}
	if c := <-restored; c != 200 {
		t.Fatalf("restore/next answered %d, want 200", c)
	}
	select {
	case <-e.srv.RestoreReady():
		t.Fatal("RestoreReady before /next")
	default:
	}
	next := e.nextAsync(t)
	select {
	case <-e.srv.RestoreReady():
	case <-time.After(5 * time.Second):
		t.Fatal("RestoreReady not closed by /next")
	}
	if err := e.srv.Invoke(&agentproto.Invoke{RequestID: "r1", DeadlineMs: time.Now().Add(time.Minute).UnixMilli(), Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if resp := <-next; resp == nil || resp.StatusCode != 200 {
		t.Fatalf("/next after restore: %v", resp)
	}
}

// TestServer_RestoreError reports an after-restore hook failure and refuses
// restore/error outside the restoring window.
func TestServer_RestoreError(t *testing.T) {
	got := make(chan string, 1)
	srv := runtimeapi.New(runtimeapi.Config{Hooks: runtimeapi.Hooks{
		RestoreError: func(typ string, body []byte) { got <- typ + " " + string(body) },
	}})
	e := serveEnv(t, srv)
	srv.CloseRegistration()
	if resp, _ := e.do(t, "POST", "/2018-06-01/runtime/restore/error", `{}`, nil); resp.StatusCode != 403 {
		t.Errorf("restore/error before restore: %d, want 403", resp.StatusCode)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get(e.base + "/2018-06-01/runtime/restore/next"); err == nil {
			resp.Body.Close()
		}
	}()
	<-srv.InitReady()
	if err := srv.Restore(); err != nil {
		t.Fatal(err)
	}
	<-done
	resp, _ := e.do(t, "POST", "/2018-06-01/runtime/restore/error", `{"errorMessage":"boom","errorType":"X"}`,
		map[string]string{"Lambda-Runtime-Function-Error-Type": "Runtime.AfterRestoreError"})
	if resp.StatusCode != 202 {
		t.Fatalf("restore/error: %d, want 202", resp.StatusCode)
	}
	if g := <-got; g != `Runtime.AfterRestoreError {"errorMessage":"boom","errorType":"X"}` {
		t.Errorf("hook got %q", g)
	}
	if resp, _ := e.do(t, "GET", "/2018-06-01/runtime/invocation/next", "", nil); resp.StatusCode != 403 {
		t.Errorf("/next after restore error: %d, want 403", resp.StatusCode)
	}
}

// TestServer_Restore_PlainRuntime: a runtime without SnapStart support
// calls /next right after init; restoring it needs no answer from it.
func TestServer_Restore_PlainRuntime(t *testing.T) {
	e := newEnv(t)
	e.srv.CloseRegistration()
	next := e.nextAsync(t)
	<-e.srv.InitReady()
	if err := e.srv.Restore(); err != nil {
		t.Fatalf("Restore of a runtime parked in /next: %v", err)
	}
	select {
	case <-e.srv.RestoreReady():
	case <-time.After(5 * time.Second):
		t.Fatal("RestoreReady not closed")
	}
	if err := e.srv.Invoke(&agentproto.Invoke{RequestID: "r1", DeadlineMs: time.Now().Add(time.Minute).UnixMilli(), Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if resp := <-next; resp == nil || resp.StatusCode != 200 {
		t.Fatalf("/next: %v", resp)
	}
}
