package agent_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
	"github.com/ignis-run/ignis/internal/runtimes"
)

// SnapStart's runtime side with the real bootstraps, without a checkpoint
// (the agent and runtime simply carry on from restore/next): before-hooks
// run in reverse registration order before InitDone, after-hooks in order
// after Restore, RestoreDone once the runtime is back in /next; a failing
// hook is reported with Lambda's error types. Checkpoint and restore
// themselves are tested on gvisor in internal/server.

var snapHookFunctions = map[string]struct{ handler, file, code string }{
	"python3.11": {"app.handler", "app.py", `import os, random, uuid
from snapshot_restore_py import register_before_snapshot, register_after_restore
ORDER = []
FAIL = os.environ.get("FAIL_HOOK", "")

@register_before_snapshot
def b1():
    ORDER.append("b1")
    if FAIL == "before": raise ValueError("before failed")

register_before_snapshot(lambda tag: ORDER.append(tag), "b2")

@register_after_restore
def a1():
    ORDER.append("a1")
    if FAIL == "after": raise ValueError("after failed")

register_after_restore(lambda tag: ORDER.append(tag), "a2")

def handler(event, context):
    return {"order": ORDER, "initType": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "rand": random.random(), "uuid": str(uuid.uuid4())}
`},
	"nodejs20.x": {"index.handler", "index.mjs", `import { randomUUID } from "node:crypto";
const order = [];
const fail = process.env.FAIL_HOOK || "";
snapshotRestore.registerBeforeSnapshot(() => { order.push("b1"); if (fail === "before") throw new Error("before failed"); });
snapshotRestore.registerBeforeSnapshot(async (tag) => { order.push(tag); }, "b2");
snapshotRestore.registerAfterRestore(async () => { order.push("a1"); if (fail === "after") throw new Error("after failed"); });
snapshotRestore.registerAfterRestore((tag) => order.push(tag), "a2");
export const handler = async () => ({ order, initType: process.env.AWS_LAMBDA_INITIALIZATION_TYPE, rand: Math.random(), uuid: randomUUID() });
`},
}

func snapFn(t *testing.T, rt, fail string) (*fn, agentproto.Init) {
	t.Helper()
	sf := snapHookFunctions[rt]
	f := newFn(t, rt, sf.handler)
	if _, err := os.Stat(f.bootstrap[0]); err != nil {
		t.Skipf("%s not installed: %v", rt, err)
	}
	f.write(t, sf.file, sf.code, 0o644)
	f.userVars = map[string]string{"FAIL_HOOK": fail}
	m := f.init()
	m.Env = runtimes.Env(runtimes.EnvInput{
		FunctionName: f.name, MemoryMB: 128, Handler: f.handler, Runtime: f.runtime, InitType: "snap-start",
		TaskRoot: f.taskRoot, RuntimeDir: f.runtimeDir, UserVars: f.userVars,
	})
	m.Snapshot = true
	return f, m
}

func TestAgent_SnapStartHooks(t *testing.T) {
	for rt := range snapHookFunctions {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			f, m := snapFn(t, rt, "")
			p := f.start(t)
			p.initOK(m)
			if err := p.w.Restore(agentproto.Restore{TimeoutMs: 10000}); err != nil {
				t.Fatal(err)
			}
			p.next(agentproto.TypeRestoreDone, 30*time.Second)
			_, res := p.invoke(`{}`)
			var got struct {
				Order    []string `json:"order"`
				InitType string   `json:"initType"`
			}
			if err := json.Unmarshal(res.Body, &got); err != nil {
				t.Fatalf("%s: %v", res.Body, err)
			}
			if want := []string{"b2", "b1", "a1", "a2"}; !slices.Equal(got.Order, want) || got.InitType != "snap-start" {
				t.Errorf("hooks ran %v with init type %q; want %v, snap-start", got.Order, got.InitType, want)
			}
			p.shutdown()
		})
	}
}

func TestAgent_SnapStartHooks_Errors(t *testing.T) {
	for rt := range snapHookFunctions {
		t.Run(rt+"/before", func(t *testing.T) {
			t.Parallel()
			f, m := snapFn(t, rt, "before")
			p := f.start(t)
			if e := p.initErr(m); e.ErrorType != "Runtime.BeforeSnapshotError" {
				t.Errorf("before-snapshot failure: %+v", e)
			}
		})
		t.Run(rt+"/after", func(t *testing.T) {
			t.Parallel()
			f, m := snapFn(t, rt, "after")
			p := f.start(t)
			p.initOK(m)
			if err := p.w.Restore(agentproto.Restore{TimeoutMs: 10000}); err != nil {
				t.Fatal(err)
			}
			fr := p.next(agentproto.TypeRestoreError, 30*time.Second)
			var e agentproto.InitError
			if err := fr.DecodeJSON(&e); err != nil || e.ErrorType != "Runtime.AfterRestoreError" {
				t.Errorf("after-restore failure: %+v %v", e, err)
			}
		})
	}
}

// TestAgent_SnapStart_PlainRuntime: an aws-lambda-go bootstrap knows
// nothing of restore/next; its snapshot is taken parked in /next and it
// serves as soon as it is restored.
func TestAgent_SnapStart_PlainRuntime(t *testing.T) {
	t.Parallel()
	f := goFn(t)
	m := f.init()
	m.Snapshot = true
	p := f.start(t)
	p.initOK(m)
	if err := p.w.Restore(agentproto.Restore{TimeoutMs: 10000}); err != nil {
		t.Fatal(err)
	}
	p.next(agentproto.TypeRestoreDone, 30*time.Second)
	if _, res := p.invoke(`{"msg":"hi"}`); res.Error {
		t.Fatalf("invoke after restore: %s", res.Body)
	}
	p.shutdown()
}
