package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/vishvananda/netlink"

	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/sandboxnet/sandboxnettest"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// netFunction is a Python function that tries the network from inside its
// sandbox: TCP connections (reading what the server says), an HTTP GET, a
// DNS lookup, its interfaces, and on request a listener of its own.
const netFunction = `
import socket, threading, time, urllib.request, uuid

_listener = None
_sandbox = str(uuid.uuid4())  # one per execution environment

def _serve(s):
    while True:
        c, _ = s.accept()
        c.sendall(b"sandbox")
        c.close()

def handler(event, context):
    global _listener
    with open("/proc/net/route") as f:
        routes = len(f.read().splitlines()) - 1
    out = {"ifaces": sorted(n for _, n in socket.if_nameindex()), "routes": routes, "sandbox": _sandbox}
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("listen"):
        if _listener is None:
            _listener = socket.socket()
            _listener.bind(("0.0.0.0", 0))
            _listener.listen(8)
            threading.Thread(target=_serve, args=(_listener,), daemon=True).start()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.connect((event["listen"], 9))
        out["addr"] = "%s:%d" % (u.getsockname()[0], _listener.getsockname()[1])
    for name, target in event.get("tcp", {}).items():
        host, port = target.rsplit(":", 1)
        try:
            s = socket.create_connection((host, int(port)), timeout=1.5)
            s.settimeout(2)
            out[name] = "connected: " + s.recv(200).decode()
            s.close()
        except Exception as e:
            out[name] = "error: %s" % e
    if event.get("http"):
        try:
            out["http"] = urllib.request.urlopen(event["http"], timeout=3).read().decode()
        except Exception as e:
            out["http"] = "error: %s" % e
    if event.get("resolve"):
        try:
            out["resolve"] = socket.gethostbyname(event["resolve"])
        except Exception as e:
            out["resolve"] = "error: %s" % e
    return out
`

// freeAddrOn returns a free TCP address on ip (one the test made).
func freeAddrOn(t *testing.T, ip netip.Addr) string {
	t.Helper()
	l, err := net.Listen("tcp4", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func invokeNet(t *testing.T, c *lambda.Client, fn string, event map[string]any) map[string]any {
	t.Helper()
	payload, _ := json.Marshal(event)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload})
	if err != nil {
		t.Fatalf("invoking %s: %v", fn, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("invoking %s: %s: %s", fn, *out.FunctionError, out.Payload)
	}
	var res map[string]any
	if err := json.Unmarshal(out.Payload, &res); err != nil {
		t.Fatalf("invoking %s: %v: %s", fn, err, out.Payload)
	}
	t.Logf("%s %s → %v", fn, payload, res)
	return res
}

func createNetFunction(t *testing.T, c *lambda.Client, name string, tags map[string]string) {
	t.Helper()
	_, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.Runtime("python3.11"),
		Role:         aws.String("arn:aws:iam::000000000000:role/net"),
		Handler:      aws.String("net.handler"),
		Code:         &types.FunctionCode{ZipFile: servertest.Zip(t, map[string][]byte{"net.py": []byte(netFunction)})},
		Tags:         tags,
		Timeout:      aws.Int32(30),
	})
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
}

func requireNetworkTest(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandbox networking needs root")
	}
	if _, err := os.Stat("/usr/bin/python3.11"); err != nil {
		t.Skip("python3.11 not installed")
	}
}

// TestServer_SandboxNetwork runs a real ignis server process (jail) and
// Python functions that try the network the way Lambda functions outside a
// VPC can and cannot: the world over HTTP by a DNS name, a TCP service on a
// second host; never the Ignis API, NATS, the host, link-local metadata or
// another sandbox; a function tagged ignis:network=none has no route at
// all; one with an allow-list reaches the host service it names. Tags are
// set with the AWS CLI (create-function --tags, tag-resource).
func TestServer_SandboxNetwork(t *testing.T) {
	requireNetworkTest(t)
	testSandboxNetwork(t, servertest.Build(t))
}

// TestServer_SandboxNetwork_GVisor is the same through gVisor, with the
// runsc make unit names in IGNIS_RUNSC (the pinned build, which can run
// its network stack in Ignis's namespaces), installed beside a copy of the
// ignis binary where the server looks first.
func TestServer_SandboxNetwork_GVisor(t *testing.T) {
	requireNetworkTest(t)
	runsc := os.Getenv("IGNIS_RUNSC")
	if runsc == "" {
		t.Skip("IGNIS_RUNSC is not set (make unit sets it to bin/runsc)")
	}
	bins := servertest.Build(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
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
	testSandboxNetwork(t, bins, "--sandbox", "gvisor")
}

func testSandboxNetwork(t *testing.T, bins servertest.Binaries, args ...string) {
	world := sandboxnettest.NewWorld(t)
	other := sandboxnettest.NewWorld(t) // a second host with a TCP service
	api := freeAddrOn(t, world.HostSide)
	nats := freeAddrOn(t, world.HostSide)
	p := servertest.StartProcess(t, bins, api, t.TempDir(), append([]string{"--sandbox-dns", world.Addr.String(), "--nats-listen", nats}, args...)...)
	db := sandboxnettest.Serve(t, "", world.HostSide.String(), "db") // a host service

	createNetFunction(t, p.Lambda, "egress", nil)
	createNetFunction(t, p.Lambda, "neighbour", nil)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "net.zip")
	if err := os.WriteFile(zipPath, servertest.Zip(t, map[string][]byte{"net.py": []byte(netFunction)}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, p.Endpoint, "lambda", "create-function", "--function-name", "isolated", "--runtime", "python3.11",
		"--role", "arn:aws:iam::000000000000:role/net", "--handler", "net.handler", "--zip-file", "fileb://"+zipPath,
		"--tags", "ignis:network=none"); err != nil {
		t.Fatal(err)
	}
	createNetFunction(t, p.Lambda, "allowed", nil)
	fnARN := func(name string) string { return "arn:aws:lambda:us-east-1:000000000000:function:" + name }
	if _, err := cli(t, p.Endpoint, "lambda", "tag-resource", "--resource", fnARN("allowed"),
		"--tags", fmt.Sprintf("ignis:network-allow=%s/32:%d", world.HostSide, db.Port())); err != nil {
		t.Fatal(err)
	}
	// A bad policy is refused, AWS-shaped, and changes nothing.
	if out, err := cli(t, p.Endpoint, "lambda", "tag-resource", "--resource", fnARN("allowed"),
		"--tags", "ignis:network=vpc"); err == nil || !strings.Contains(err.Error(), "InvalidParameterValueException") {
		t.Errorf("tag-resource ignis:network=vpc: %s %v; want InvalidParameterValueException", out, err)
	}

	nb := invokeNet(t, p.Lambda, "neighbour", map[string]any{"listen": world.Addr.String()})
	neighbour, _ := nb["addr"].(string)
	if neighbour == "" {
		t.Fatalf("the neighbour has no address: %v", nb)
	}
	// Control: the neighbour's listener answers, from inside its sandbox.
	if self := invokeNet(t, p.Lambda, "neighbour", map[string]any{"tcp": map[string]string{"self": neighbour}}); self["self"] != "connected: sandbox" {
		t.Fatalf("control: the neighbour cannot reach its own %s: %v", neighbour, self["self"])
	}
	res := invokeNet(t, p.Lambda, "egress", map[string]any{
		"http":    fmt.Sprintf("http://%s:%d/", sandboxnettest.WorldName, world.HTTP.Port()),
		"resolve": sandboxnettest.WorldName,
		"tcp": map[string]string{
			"other host": other.Server.String(),
			"api":        api,
			"nats":       nats,
			"metadata":   world.MetadataServer.String(),
			"neighbour":  neighbour,
			"db":         db.String(),
		},
	})
	if got := res["http"]; got != sandboxnettest.WorldGreeting {
		t.Errorf("HTTP GET of the world by name: %v", got)
	}
	if got := res["resolve"]; got != world.Addr.String() {
		t.Errorf("resolving %s: %v, want %s", sandboxnettest.WorldName, got, world.Addr)
	}
	if got, _ := res["other host"].(string); !strings.HasPrefix(got, "connected: world") {
		t.Errorf("TCP to a service on another host: %v", got)
	}
	for _, name := range []string{"api", "nats", "metadata", "neighbour", "db"} {
		if got, _ := res[name].(string); !strings.HasPrefix(got, "error") {
			t.Errorf("a sandbox reached %s: %v", name, got)
		}
	}

	// Controls: the refused targets are there for whoever may reach them.
	if _, err := sandboxnettest.Dial(t, "", world.MetadataServer); err != nil {
		t.Errorf("control: the host cannot reach the metadata server: %v", err)
	}
	if c, err := net.DialTimeout("tcp", nats, time.Second); err != nil {
		t.Errorf("control: NATS is not listening at %s: %v", nats, err)
	} else {
		c.Close()
	}

	none := invokeNet(t, p.Lambda, "isolated", map[string]any{"tcp": map[string]string{"world": world.Server.String()}})
	if routes := none["routes"]; routes != 0.0 {
		t.Errorf("a function tagged ignis:network=none has %v routes", routes)
	}
	if got, _ := none["world"].(string); !strings.Contains(got, "unreachable") {
		t.Errorf("a function without network connecting to the world: %v; want network unreachable (no route)", got)
	}

	allowed := invokeNet(t, p.Lambda, "allowed", map[string]any{"tcp": map[string]string{"db": db.String(), "api": api}})
	if got, _ := allowed["db"].(string); !strings.HasPrefix(got, "connected: db") {
		t.Errorf("the allow-listed host service: %v", got)
	}
	if got, _ := allowed["api"].(string); !strings.HasPrefix(got, "error") {
		t.Errorf("an allow-list for one port opened the API: %v", got)
	}

	// Tagging a function none takes its network away from the next invoke
	// (a new revision: no warm sandbox of the old policy is reused).
	if _, err := cli(t, p.Endpoint, "lambda", "tag-resource", "--resource", fnARN("egress"), "--tags", "ignis:network=none"); err != nil {
		t.Fatal(err)
	}
	after := invokeNet(t, p.Lambda, "egress", map[string]any{"tcp": map[string]string{"world": world.Server.String()}})
	if got, _ := after["world"].(string); !strings.HasPrefix(got, "error") {
		t.Errorf("after tagging ignis:network=none the function still reached the world: %v", got)
	}
}

// netResidue is what sandbox networking leaves on the host: interfaces
// with a host-side address in pool, and chains whose interface is gone.
type netResidue struct {
	links   []string // in pool
	orphans []string // chains without their interface
}

func residue(t *testing.T, pool netip.Prefix) netResidue {
	t.Helper()
	var r netResidue
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, l := range links {
		present[l.Attrs().Name] = true
		if !strings.HasPrefix(l.Attrs().Name, sandboxnet.IfPrefix) {
			continue
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && pool.Contains(ip) {
				r.links = append(r.links, l.Attrs().Name)
			}
		}
	}
	for _, name := range sandboxnettest.Chained(t) {
		if !present[name] {
			r.orphans = append(r.orphans, name)
		}
	}
	return r
}

// prestarted is how many setup stages the jail keeps ready, each attached
// to the network ahead of its sandbox (jail.Config.Prestart's default).
const prestarted = 2

// awaitClean waits until pool has no interface left but those of the
// jail's prestarted stages, and no chain is without its interface. Other
// tests on the host attach and release sandboxes meanwhile; an orphan of
// theirs lives for microseconds, so one clean sample within the wait is
// the criterion.
func awaitClean(t *testing.T, pool netip.Prefix, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := residue(t, pool)
		if len(r.links) <= prestarted && len(r.orphans) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: left behind: interfaces %v, chains of vanished interfaces %v", what, r.links, r.orphans)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServer_SandboxNetwork_LeavesNothing creates and destroys 200
// sandboxes with network links, then kills the server with SIGKILL while
// sandboxes are attached and restarts it: no interface of its pool and no
// rule of a vanished interface remains.
func TestServer_SandboxNetwork_LeavesNothing(t *testing.T) {
	requireNetworkTest(t)
	world := sandboxnettest.NewWorld(t)
	bins := servertest.Build(t)
	// A pool of its own, so that its interfaces are told from those of
	// tests running beside it.
	pool := netip.MustParsePrefix("10.205.0.0/22")
	data := t.TempDir()
	api := servertest.FreeAddr(t)
	args := []string{"--sandbox-cidr", pool.String(), "--sandbox-dns", world.Addr.String(), "--keep-alive", "300ms"}
	p := servertest.StartProcess(t, bins, api, data, args...)
	createNetFunction(t, p.Lambda, "churn", nil)

	const rounds, width = 20, 10
	created := 0
	sandboxes := map[string]bool{}
	var mu sync.Mutex
	for range rounds {
		errs := make(chan error, width)
		for range width {
			go func() {
				payload, _ := json.Marshal(map[string]any{"sleep": 0.3, "tcp": map[string]string{"world": world.Server.String()}})
				out, err := p.Lambda.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("churn"), Payload: payload})
				if err == nil && out.FunctionError != nil {
					err = fmt.Errorf("%s: %s", *out.FunctionError, out.Payload)
				}
				if err == nil && !strings.Contains(string(out.Payload), "connected: world") {
					err = fmt.Errorf("no egress: %s", out.Payload)
				}
				if err == nil {
					var res struct{ Sandbox string }
					json.Unmarshal(out.Payload, &res)
					mu.Lock()
					sandboxes[res.Sandbox] = true
					mu.Unlock()
				}
				errs <- err
			}()
		}
		for range width {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		created += width
		// Past the keep-alive: the next round's sandboxes are new ones.
		time.Sleep(700 * time.Millisecond)
	}
	t.Logf("%d invokes in %d rounds of %d concurrent ran in %d sandboxes", created, rounds, width, len(sandboxes))
	if len(sandboxes) < created*3/4 {
		t.Errorf("only %d sandboxes for %d invokes: the churn did not make new ones", len(sandboxes), created)
	}
	awaitClean(t, pool, "after the sandboxes were reaped")

	// SIGKILL with sandboxes attached: their namespaces die with them
	// (the jail's PID 1 dies with the worker), their rules stay until the
	// restart sweeps them.
	busy := make(chan struct{}, 5)
	for range 5 {
		go func() {
			payload, _ := json.Marshal(map[string]any{"sleep": 20})
			p.Lambda.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("churn"), Payload: payload})
			busy <- struct{}{}
		}()
	}
	deadline := time.Now().Add(time.Minute)
	for len(residue(t, pool).links) < 5+prestarted {
		if time.Now().After(deadline) {
			t.Fatalf("5 busy sandboxes did not attach: %v", residue(t, pool).links)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Kill9(t)
	for range 5 {
		<-busy
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(residue(t, pool).orphans) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	killed := residue(t, pool)
	t.Logf("after SIGKILL: %+v", killed)
	if len(killed.orphans) == 0 {
		t.Fatal("the SIGKILL left no rules behind: the restart's sweep goes untested")
	}
	p = servertest.StartProcess(t, bins, api, data, args...)
	awaitClean(t, pool, "after SIGKILL and restart")
	res := invokeNet(t, p.Lambda, "churn", map[string]any{"tcp": map[string]string{"world": world.Server.String()}})
	if got, _ := res["world"].(string); !strings.HasPrefix(got, "connected: world") {
		t.Errorf("egress after the restart: %v", got)
	}
}
