package testcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ignis-run/ignis/internal/server/servertest"
)

// Mode is how a cluster runs its hosts.
type Mode int

const (
	// Auto is Namespaces where network namespaces can be made, else
	// Loopback.
	Auto Mode = iota
	// Namespaces runs each host as a process in a network namespace and a
	// cgroup of its own. A test that asks for it is skipped where
	// namespaces cannot be made.
	Namespaces
	// Loopback runs each host as a process in a cgroup of its own, on
	// 127.0.N.1 and a free port. No Partition.
	Loopback
	// InProcess runs each host as a server inside the test process, on
	// 127.0.N.1 and a free port. No Kill, Partition or CPU quota.
	InProcess
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Namespaces:
		return "namespaces"
	case Loopback:
		return "loopback"
	case InProcess:
		return "in-process"
	}
	return "mode" + strconv.Itoa(int(m))
}

// Options configure a cluster. The zero value is a cluster in namespaces
// (where possible) with half a CPU per host.
type Options struct {
	Mode Mode
	// CPUMillis is each host's CPU quota in thousandths of a CPU; 0 means
	// 500. Process modes only.
	CPUMillis int
	// HostCPUMillis overrides CPUMillis per host: element i is host
	// h(i+1)'s quota, 0 (or no element) keeps CPUMillis.
	HostCPUMillis []int
	// Args are `ignis server` flags every host starts with, before those
	// given to Host.Start. Process modes only.
	Args []string
}

// Capabilities says which operations a cluster's hosts support.
type Capabilities struct {
	// Kill: Host.Kill sends SIGKILL to every process of the host.
	Kill bool
	// Partition: Host.Partition and Host.Heal.
	Partition bool
	// CPUQuota: each host runs under its own CPU quota (Host.CPUQuota).
	CPUQuota bool
}

// namePrefix starts the name of every namespace and cgroup a cluster
// makes; the sweeper reads the owner's pid after it.
const namePrefix = "ignis-tc-"

// Cluster is N hosts made for one test. Its methods, and those of its
// hosts, are for the test's goroutines: a Host is not safe for concurrent
// use, different hosts are.
type Cluster struct {
	t     testing.TB
	id    string
	mode  Mode
	opts  Options
	bins  servertest.Binaries
	cg    *cgroups // nil in process-less modes without cgroups
	hosts []*Host
	// switchName and switchNS are the switch namespace (Namespaces mode),
	// open for dialing; netnsNames are the namespaces made, to delete.
	switchName string
	switchNS   *os.File
	netnsNames []string
	transport  *http.Transport
	client     *http.Client
}

// New makes a cluster of n hosts, none of them started (Host.Start), and
// registers its removal with t.Cleanup. It skips the test where the
// cluster cannot run: not root (the jail, cgroups), or Options.Mode
// Namespaces without network namespaces.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 || n > 250 {
		t.Fatalf("testcluster.New: %d hosts, want 1 to 250", n)
	}
	if os.Getuid() != 0 {
		t.Skip("testcluster needs root: sandboxes, cgroups and namespaces")
	}
	if opts.CPUMillis == 0 {
		opts.CPUMillis = 500
	}
	c := &Cluster{t: t, opts: opts, mode: opts.Mode,
		id: fmt.Sprintf("%s%d-%06x", namePrefix, os.Getpid(), rand.Uint32()&0xffffff)}
	cg, err := loadCgroups()
	if err != nil && c.mode != InProcess {
		t.Skipf("testcluster: hosts as processes need cgroups: %v", err)
	}
	c.cg = cg
	sweep(t, cg)
	c.bins = servertest.Build(t)
	// Before the cleanup, so that it is removed after it (t.Cleanup is
	// last in, first out) and never under a running host.
	base := t.TempDir()
	t.Cleanup(c.cleanup)

	for i := 1; i <= n; i++ {
		name := "h" + strconv.Itoa(i)
		c.hosts = append(c.hosts, &Host{c: c, index: i, name: name, dataDir: filepath.Join(base, name), cgroup: c.id + "/" + name})
	}
	if c.mode == Auto || c.mode == Namespaces {
		if err := c.makeNetwork(); err != nil {
			c.deleteNetwork()
			if c.mode == Namespaces {
				t.Skipf("testcluster: no network namespaces here: %v", err)
			}
			t.Logf("testcluster: no network namespaces here (%v): hosts on loopback addresses", err)
			c.mode = Loopback
		} else {
			c.mode = Namespaces
		}
	}
	c.transport = http.DefaultTransport.(*http.Transport).Clone()
	c.transport.Proxy = nil // the hosts' addresses are nowhere else
	if c.mode == Namespaces {
		c.transport.DialContext = dialFrom(c.switchNS)
	}
	c.client = &http.Client{Transport: c.transport}
	for i, h := range c.hosts {
		if c.mode != Namespaces {
			h.addr = freeAddr(t, fmt.Sprintf("127.0.%d.1", i+1))
			h.route = freeAddr(t, fmt.Sprintf("127.0.%d.1", i+1))
		}
		if c.mode != InProcess {
			if err := c.cg.create(h.cgroup, h.cpuMillis()); err != nil {
				t.Fatal(err)
			}
		}
		h.lambda = servertest.NewLambdaClient("http://"+h.addr, func(o *lambda.Options) { o.HTTPClient = c.client })
	}
	t.Logf("testcluster %s: %d hosts, %s", c.id, n, c.mode)
	return c
}

// makeNetwork makes the switch namespace and one namespace per host,
// plugged into the switch.
func (c *Cluster) makeNetwork() error {
	if _, err := exec.LookPath("ip"); err != nil {
		return err
	}
	sw := c.id + "-sw"
	c.switchName = sw
	c.netnsNames = append(c.netnsNames, sw)
	f, err := makeSwitch(sw)
	c.switchNS = f
	if err != nil {
		return err
	}
	for i, h := range c.hosts {
		h.netnsName = c.id + "-" + h.name
		c.netnsNames = append(c.netnsNames, h.netnsName)
		if h.netns, err = addNetns(h.netnsName); err != nil {
			return err
		}
		ip := subnet + strconv.Itoa(i+1)
		if err := plugHost(sw, h.netnsName, h.name, ip); err != nil {
			return err
		}
		h.addr = net.JoinHostPort(ip, hostPort)
		h.route = net.JoinHostPort(ip, routePort)
	}
	return nil
}

// deleteNetwork deletes the namespaces made, and with them their veths
// and the bridge. A namespace lives on, unnamed, while a process or an
// open file is in it: the cluster closes its own first.
func (c *Cluster) deleteNetwork() error {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	var errs []error
	for _, h := range c.hosts {
		if h.netns != nil {
			h.netns.Close()
			h.netns = nil
		}
	}
	if c.switchNS != nil {
		c.switchNS.Close()
		c.switchNS = nil
	}
	for _, ns := range c.netnsNames {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue // never made
		}
		// The hosts' processes are gone with their cgroups: one found
		// here had escaped its host's.
		if killed, err := killNetns(ns); err != nil || len(killed) > 0 {
			errs = append(errs, fmt.Errorf("processes %v were left in namespace %s (%v)", killed, ns, err))
		}
		if err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	c.netnsNames = nil
	return errors.Join(errs...)
}

// cleanup stops every host, then removes the cgroups and namespaces.
func (c *Cluster) cleanup() {
	var wg sync.WaitGroup
	errs := make([]error, len(c.hosts))
	for i, h := range c.hosts {
		wg.Go(func() { errs[i] = h.stop() })
	}
	wg.Wait()
	if c.cg != nil {
		errs = append(errs, c.cg.remove(c.id))
	}
	errs = append(errs, c.deleteNetwork())
	if err := errors.Join(errs...); err != nil {
		c.t.Errorf("testcluster %s cleanup: %v", c.id, err)
	}
}

// ID names the cluster; every namespace and cgroup it makes starts with it.
func (c *Cluster) ID() string { return c.id }

// Mode is how the cluster runs its hosts (Auto resolved).
func (c *Cluster) Mode() Mode { return c.mode }

// Hosts are the cluster's hosts, h1 first.
func (c *Cluster) Hosts() []*Host { return c.hosts }

// Host returns host hN (1-based, as in its name).
func (c *Cluster) Host(n int) *Host { return c.hosts[n-1] }

// Capabilities says which operations the cluster's mode supports.
func (c *Cluster) Capabilities() Capabilities {
	return Capabilities{
		Kill:      c.mode != InProcess,
		Partition: c.mode == Namespaces,
		CPUQuota:  c.mode != InProcess,
	}
}

// HTTPClient reaches the hosts' addresses: in Namespaces mode it dials
// from the switch namespace.
func (c *Cluster) HTTPClient() *http.Client { return c.client }

// Command returns a command that runs where the cluster's clients run
// (inside the switch namespace in Namespaces mode), so that it reaches
// the hosts: the AWS CLI, `ignis fleet`.
func (c *Cluster) Command(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	if c.mode != Namespaces {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", c.switchName, name}, args...)...)
}

// Peers are the NATS route addresses of every host: what `ignis server
// --peers` takes, the same on each.
func (c *Cluster) Peers() []string {
	out := make([]string, len(c.hosts))
	for i, h := range c.hosts {
		out[i] = h.route
	}
	return out
}

// ClusterArgs are the flags that make h a member of the cluster's NATS
// cluster (all hosts, --replicas automatic) with roles (none: all).
func (c *Cluster) ClusterArgs(h *Host, roles ...string) []string {
	args := []string{"--node-id", h.name, "--cluster-listen", h.route, "--peers", strings.Join(c.Peers(), ",")}
	if len(roles) > 0 {
		args = append(args, "--roles", strings.Join(roles, ","))
	}
	return args
}

// StartAll starts hosts at once, each with args(h), and waits until all
// answer: the first start of a cluster waits for a quorum of its nodes.
func (c *Cluster) StartAll(t testing.TB, args func(h *Host) []string, hosts ...*Host) {
	t.Helper()
	for _, h := range hosts {
		if err := h.spawnServer(args(h)); err != nil {
			t.Fatalf("starting %s: %v", h.name, err)
		}
	}
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { errs[i] = h.waitReady(h.proc.exited) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("starting %s: %v", hosts[i].name, err)
		}
	}
}

// freeAddr returns ip with a port free at the moment.
func freeAddr(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
