package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// snapFunction's init takes about a second (the acceptance's "imports and
// work at module level"), registers a before-snapshot and an after-restore
// hook, and answers with what tells environments apart.
const snapFunction = `import os, random, time, uuid
from snapshot_restore_py import register_before_snapshot, register_after_restore

time.sleep(1.0)
STATE = {"before": 0, "after": [], "init_rand": random.random()}

@register_before_snapshot
def before():
    STATE["before"] += 1
    print("before-snapshot hook ran")

def after(tag):
    STATE["after"].append(tag)
    print("after-restore hook ran")

register_after_restore(after, "first")
register_after_restore(after, "second")

def handler(event, context):
    return {"rand": random.random(), "uuid": str(uuid.uuid4()), "urandom": os.urandom(8).hex(),
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
            "before": STATE["before"], "after": STATE["after"], "init_rand": STATE["init_rand"],
            "request_id": context.aws_request_id, "ip": local_ip()}

def local_ip():
    import socket
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))  # no packet is sent
        return s.getsockname()[0]
    except OSError as e:
        return "none: %s" % e
`

type snapAnswer struct {
	Rand      float64  `json:"rand"`
	UUID      string   `json:"uuid"`
	URandom   string   `json:"urandom"`
	InitType  string   `json:"init_type"`
	Before    int      `json:"before"`
	After     []string `json:"after"`
	InitRand  float64  `json:"init_rand"`
	RequestID string   `json:"request_id"`
	IP        string   `json:"ip"`
}

// requireGVisor skips without root, python3.11 or the pinned runsc, and
// puts runsc on PATH for the in-process server.
func requireGVisor(t *testing.T) string {
	t.Helper()
	requireNetworkTest(t)
	runsc := os.Getenv("IGNIS_RUNSC")
	if runsc == "" {
		t.Skip("IGNIS_RUNSC is not set (make unit sets it to bin/runsc)")
	}
	t.Setenv("PATH", filepath.Dir(runsc)+string(os.PathListSeparator)+os.Getenv("PATH"))
	return runsc
}

// TestServer_SnapStart_GVisor is SnapStart end to end through the SDK on
// the gvisor driver: a published version is Pending (invokes refused with
// SnapStartNotReadyException, $LATEST serving) while its snapshot is made,
// then Active with OptimizationStatus On; each new environment restores
// from the snapshot (REPORT with Restore Duration and no Init Duration,
// AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, before-hooks ran once before
// the snapshot, after-hooks in order in each copy), every copy draws its
// own random numbers and UUIDs, and deleting the version deletes the
// snapshot. It logs the first-invoke latency of restored vs cold
// environments (the acceptance's ≥5×, median of 10).
func TestServer_SnapStart_GVisor(t *testing.T) {
	requireGVisor(t)
	s := servertest.Start(t, "", func(c *server.Config) {
		c.Compute.Sandbox = server.SandboxGVisor
		// Idle environments go at once, so each measured invoke gets a
		// new one.
		c.Compute.KeepAlive = 100 * time.Millisecond
	})
	ctx := context.Background()
	c := s.Lambda
	_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("snappy"), Role: aws.String("arn:aws:iam::000000000000:role/x"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"), Timeout: aws.Int32(30),
		Code:      &types.FunctionCode{ZipFile: servertest.Zip(t, map[string][]byte{"app.py": []byte(snapFunction)})},
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions},
	})
	if err != nil {
		t.Fatal(err)
	}
	sandboxes := filepath.Join(s.DataDir(), "worker", "sandboxes")
	images := filepath.Join(s.DataDir(), "worker", "snapshots", "images")

	pub, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snappy")})
	if err != nil {
		t.Fatal(err)
	}
	if pub.State != types.StatePending || pub.LastUpdateStatus != types.LastUpdateStatusInProgress {
		t.Errorf("published: %s/%s, want Pending/InProgress", pub.State, pub.LastUpdateStatus)
	}
	// The snapshot's init takes over a second: the version is not ready.
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("snappy"), Qualifier: aws.String("1")})
	var nr *types.SnapStartNotReadyException
	if !errors.As(err, &nr) {
		t.Errorf("invoke of the pending version: %v, want SnapStartNotReadyException", err)
	}
	// $LATEST serves meanwhile, initialised on demand.
	latest := invokeSnap(t, c, "$LATEST")
	if latest.answer.InitType != "on-demand" || latest.answer.Before != 0 {
		t.Errorf("$LATEST answered %+v, want an on-demand init without hooks run", latest.answer)
	}

	waitActive(t, c, "snappy", "1")
	if ents, _ := os.ReadDir(images); len(ents) != 1 {
		t.Fatalf("snapshot images: %v, want one", ents)
	}

	var restored, cold, restoreDur, initDur []time.Duration
	seenRand, seenUUID, seenURandom, seenIP := map[float64]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	var initRand []float64
	for i := range 10 {
		waitNoSandboxes(t, sandboxes)
		r := invokeSnap(t, c, "1")
		restored = append(restored, r.latency)
		restoreDur = append(restoreDur, reportField(r.report, "Restore Duration: "))
		a := r.answer
		if a.InitType != "snap-start" || a.Before != 1 || !slices.Equal(a.After, []string{"first", "second"}) {
			t.Errorf("restored environment %d answered %+v; want snap-start, before-hook once, after-hooks first, second", i, a)
		}
		if !strings.Contains(r.report, "Restore Duration: ") || !strings.Contains(r.report, "Billed Restore Duration: ") || strings.Contains(r.report, "Init Duration") {
			t.Errorf("restored REPORT: %q", r.report)
		}
		if !strings.Contains(r.log, "after-restore hook ran") || !strings.Contains(r.log, "RESTORE_REPORT Restore Duration: ") {
			t.Errorf("after-restore hook output or RESTORE_REPORT missing from the first invoke's log:\n%s", r.log)
		}
		if seenRand[a.Rand] || seenUUID[a.UUID] || seenURandom[a.URandom] {
			t.Errorf("restored environment %d repeats an earlier one's random number, UUID or urandom: %+v", i, a)
		}
		seenRand[a.Rand], seenUUID[a.UUID], seenURandom[a.URandom] = true, true, true
		initRand = append(initRand, a.InitRand)
		// Each copy is attached to a link of its own (the restored
		// network stack takes the new sandbox's address).
		if seenIP[a.IP] || !strings.HasPrefix(a.IP, "10.") {
			t.Errorf("restored environment %d has address %q (seen before: %v)", i, a.IP, seenIP[a.IP])
		}
		seenIP[a.IP] = true

		// The same first invoke, cold: a new $LATEST revision each time.
		waitNoSandboxes(t, sandboxes)
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("snappy"), Description: aws.String(time.Now().String())}); err != nil {
			t.Fatal(err)
		}
		cr := invokeSnap(t, c, "$LATEST")
		if !strings.Contains(cr.report, "Init Duration") {
			t.Errorf("cold REPORT without Init Duration: %q", cr.report)
		}
		cold = append(cold, cr.latency)
		initDur = append(initDur, reportField(cr.report, "Init Duration: "))
	}
	// Every copy resumed the same init (one snapshot).
	for _, v := range initRand {
		if v != initRand[0] {
			t.Errorf("init-time state differs between restores: %v", initRand)
			break
		}
	}
	mr, mc := median(restored), median(cold)
	t.Logf("first invoke of a new environment, median of 10: restored from snapshot %v, cold init %v: %.1f× faster (restored %v; cold %v)",
		mr, mc, float64(mc)/float64(mr), restored, cold)
	t.Logf("by the REPORT lines, median of 10: Restore Duration %v, Init Duration %v", median(restoreDur), median(initDur))

	// Publishing again: version 1 keeps serving from its snapshot while
	// version 2's is made.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("snappy"), Description: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snappy")}); err != nil {
		t.Fatal(err)
	}
	if r := invokeSnap(t, c, "1"); r.answer.InitType != "snap-start" {
		t.Errorf("version 1 while version 2 is made: %+v", r.answer)
	}
	// That invoke took less than version 2's init of over a second.
	if v2, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snappy"), Qualifier: aws.String("2")}); err != nil || v2.State != types.StatePending {
		t.Errorf("version 2 after version 1 served: %v, %v; want still Pending", v2.State, err)
	}
	waitActive(t, c, "snappy", "2")
	if r := invokeSnap(t, c, "2"); r.answer.InitType != "snap-start" || !strings.Contains(r.report, "Restore Duration") {
		t.Errorf("version 2: %+v %q", r.answer, r.report)
	}

	// A damaged image does not take the version down: its environments
	// initialise on demand instead.
	imgs, err := filepath.Glob(filepath.Join(images, "snappy@2@*", "image", "checkpoint.img"))
	if err != nil || len(imgs) != 1 {
		t.Fatalf("version 2's image: %v %v", imgs, err)
	}
	if err := os.WriteFile(imgs[0], []byte("not a checkpoint"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitNoSandboxes(t, sandboxes)
	if r := invokeSnap(t, c, "2"); r.answer.InitType != "on-demand" || !strings.Contains(r.report, "Init Duration") {
		t.Errorf("version 2 with a damaged image: %+v %q; want an on-demand init", r.answer, r.report)
	}

	// Deleting a version deletes its snapshot; deleting the function
	// deletes the rest.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("snappy"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	waitImages(t, images, 1)
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("snappy")}); err != nil {
		t.Fatal(err)
	}
	waitImages(t, images, 0)
}

// waitImages waits until the worker holds n snapshot images.
func waitImages(t *testing.T, images string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ents, _ := os.ReadDir(images)
		if len(ents) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot images %v, want %d", ents, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type snapInvoke struct {
	answer  snapAnswer
	latency time.Duration
	log     string
	report  string
}

func invokeSnap(t *testing.T, c *lambda.Client, qualifier string) snapInvoke {
	t.Helper()
	t0 := time.Now()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String("snappy"), Qualifier: aws.String(qualifier), LogType: types.LogTypeTail,
	})
	lat := time.Since(t0)
	if err != nil {
		t.Fatalf("invoke %s: %v", qualifier, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("invoke %s: function error %s: %s", qualifier, *out.FunctionError, out.Payload)
	}
	var r snapInvoke
	if err := json.Unmarshal(out.Payload, &r.answer); err != nil {
		t.Fatalf("invoke %s answered %s: %v", qualifier, out.Payload, err)
	}
	logb, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	r.log, r.latency = string(logb), lat
	for _, l := range strings.Split(r.log, "\n") {
		if strings.HasPrefix(l, "REPORT ") {
			r.report = l
		}
	}
	return r
}

// waitActive waits until a version's snapshot is made.
func waitActive(t *testing.T, c *lambda.Client, name, version string) *lambda.GetFunctionConfigurationOutput {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got, err := c.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name), Qualifier: aws.String(version)})
		if err != nil {
			t.Fatal(err)
		}
		switch got.State {
		case types.StateActive:
			if got.LastUpdateStatus != types.LastUpdateStatusSuccessful || got.SnapStart.OptimizationStatus != types.SnapStartOptimizationStatusOn {
				t.Fatalf("active version: %s, SnapStart %+v; want Successful, On", got.LastUpdateStatus, got.SnapStart)
			}
			return got
		case types.StateFailed:
			t.Fatalf("version failed: %s %s", got.StateReasonCode, aws.ToString(got.StateReason))
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %s still %s", version, got.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitNoSandboxes waits until the worker holds no sandbox (the keep-alive
// reaped the last one).
func waitNoSandboxes(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ents, _ := os.ReadDir(dir)
		n := 0
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".json") {
				n++
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sandboxes still live", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestServer_SnapStart_Kill9DuringPublish kills `ignis server` while a
// version's snapshot is being made and restarts it on the same data: the
// version is never left Pending (the restart makes the snapshot and the
// version turns Active, restoring as it should), and nothing of the
// half-made image is left.
func TestServer_SnapStart_Kill9DuringPublish(t *testing.T) {
	runsc := requireGVisor(t)
	if testing.Short() {
		t.Skip("short mode")
	}
	bins := servertest.Build(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// runsc beside ignis, where the server looks first.
	ignis := filepath.Join(dir, "ignis")
	b, err := os.ReadFile(bins.Ignis)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ignis, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(runsc, filepath.Join(dir, "runsc")); err != nil {
		t.Fatal(err)
	}
	bins.Ignis = ignis
	data := t.TempDir()
	start := func() *servertest.Process {
		return servertest.StartProcess(t, bins, servertest.FreeAddr(t), data, "--sandbox", "gvisor", "--sandbox-network=false")
	}
	p := start()
	ctx := context.Background()
	// An init of 3 s: the kill lands in it.
	slow := strings.Replace(snapFunction, "time.sleep(1.0)", "time.sleep(3.0)", 1)
	if _, err := p.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("snappy"), Role: aws.String("arn:aws:iam::000000000000:role/x"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"),
		Code:      &types.FunctionCode{ZipFile: servertest.Zip(t, map[string][]byte{"app.py": []byte(slow)})},
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snappy")}); err != nil {
		t.Fatal(err)
	}
	sandboxes := filepath.Join(data, "worker", "sandboxes")
	waitFor(t, 30*time.Second, func() bool {
		ents, _ := os.ReadDir(sandboxes)
		return len(ents) > 0
	}, "the snapshot's sandbox to start")
	time.Sleep(time.Second) // into the function's init
	got, err := p.Lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snappy"), Qualifier: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != types.StatePending {
		t.Fatalf("version %s before the kill, want Pending (the kill must land during the snapshot)", got.State)
	}
	p.Kill9(t)

	p = start()
	waitActive(t, p.Lambda, "snappy", "1")
	out, err := p.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("snappy"), Qualifier: aws.String("1")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke after restart: %v %v", err, out)
	}
	var a snapAnswer
	if err := json.Unmarshal(out.Payload, &a); err != nil || a.InitType != "snap-start" || a.Before != 1 {
		t.Errorf("restored after restart: %s (%v)", out.Payload, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "worker", "snapshots", "tmp")); len(ents) != 0 {
		t.Errorf("half-made images left: %v", ents)
	}
}

// TestServer_SnapStart_Jail: a driver that cannot checkpoint accepts
// SnapStart as Lambda would accept the configuration, and the version
// publishes Active with OptimizationStatus Off and initialises on demand.
// The configuration goes through the AWS CLI (its waiter included).
func TestServer_SnapStart_Jail(t *testing.T) {
	requireNetworkTest(t)
	s := servertest.Start(t, "", func(c *server.Config) {
		c.Compute.Sandbox = server.SandboxJail
		c.Compute.SandboxNetwork = false
	})
	ctx := context.Background()
	c := s.Lambda
	fast := strings.Replace(snapFunction, "time.sleep(1.0)", "", 1)
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("snappy"), Role: aws.String("arn:aws:iam::000000000000:role/x"),
		Runtime: types.RuntimePython311, Handler: aws.String("app.handler"),
		Code: &types.FunctionCode{ZipFile: servertest.Zip(t, map[string][]byte{"app.py": []byte(fast)})},
	}); err != nil {
		t.Fatal(err)
	}
	// With the AWS CLI, as the README shows it.
	if out, err := cli(t, s.Endpoint(), "lambda", "update-function-configuration", "--function-name", "snappy", "--snap-start", "ApplyOn=Always"); err == nil || !strings.Contains(err.Error(), "InvalidParameterValueException") {
		t.Errorf("ApplyOn=Always: %s %v; want InvalidParameterValueException", out, err)
	}
	if _, err := cli(t, s.Endpoint(), "lambda", "update-function-configuration", "--function-name", "snappy", "--snap-start", "ApplyOn=PublishedVersions"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, s.Endpoint(), "lambda", "publish-version", "--function-name", "snappy"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, s.Endpoint(), "lambda", "wait", "published-version-active", "--function-name", "snappy", "--qualifier", "1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snappy"), Qualifier: aws.String("1")})
		if err != nil {
			t.Fatal(err)
		}
		if got.State == types.StateActive {
			if got.SnapStart.OptimizationStatus != types.SnapStartOptimizationStatusOff || got.SnapStart.ApplyOn != types.SnapStartApplyOnPublishedVersions {
				t.Errorf("SnapStart on jail: %+v, want PublishedVersions/Off", got.SnapStart)
			}
			break
		}
		if got.State != types.StatePending || time.Now().After(deadline) {
			t.Fatalf("version state %s", got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := invokeSnap(t, c, "1")
	if r.answer.InitType != "on-demand" || r.answer.Before != 0 || !strings.Contains(r.report, "Init Duration") {
		t.Errorf("version on jail: %+v %q; want an on-demand init", r.answer, r.report)
	}
}

// reportField reads a "Name: X ms" field of a REPORT line (0 if absent).
func reportField(report, name string) time.Duration {
	i := strings.Index(report, name)
	if i < 0 {
		return 0
	}
	v, _, _ := strings.Cut(report[i+len(name):], " ms")
	ms, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return time.Duration(ms * float64(time.Millisecond))
}
