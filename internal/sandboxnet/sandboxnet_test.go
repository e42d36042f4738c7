package sandboxnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/sandboxnet/sandboxnettest"
)

func newNetwork(t *testing.T, cfg sandboxnet.Config) *sandboxnet.Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandbox networking needs root")
	}
	return sandboxnettest.NewNetwork(t, cfg)
}

var (
	namespace = sandboxnettest.Namespace
	in        = sandboxnettest.In
	serve     = sandboxnettest.Serve
	dial      = sandboxnettest.Dial
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sandbox is a namespace attached with pol.
func sandbox(t *testing.T, n *sandboxnet.Network, name string, pol fnspec.Network) (string, *sandboxnet.Link) {
	t.Helper()
	p := namespace(t, name)
	l, err := n.Attach(context.Background(), p, pol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return p, l
}

func TestAttach_Egress(t *testing.T) {
	n := newNetwork(t, sandboxnet.Config{})
	w := sandboxnettest.NewWorld(t)
	a, la := sandbox(t, n, "a", fnspec.Network{})
	b, lb := sandbox(t, n, "b", fnspec.Network{})

	t.Run("the world, through NAT", func(t *testing.T) {
		got, err := dial(t, a, w.Server)
		if err != nil {
			t.Fatalf("dialing the world from a sandbox: %v", err)
		}
		if want := "world " + w.HostSide.String(); got != want {
			t.Errorf("the world saw %q, want %q (masqueraded)", got, want)
		}
	})

	// Addresses of the host: its side of the sandbox's own link and of
	// another link (standing for any interface of the host: they all
	// arrive on the input hook). The tests bind only addresses they made.
	targets := map[string]netip.AddrPort{
		"the gateway":            serve(t, "", la.Gateway().String(), "host"),
		"the host's other links": serve(t, "", w.HostSide.String(), "host"),
		"another sandbox":        serve(t, b, lb.Addr().String(), "b"),
		"metadata service":       w.MetadataServer,
	}
	for name, to := range targets {
		t.Run("not "+name, func(t *testing.T) {
			if got, err := dial(t, a, to); err == nil {
				t.Errorf("a sandbox reached %s at %s: %q", name, to, got)
			}
		})
	}
	// The targets are there: the host reaches the ones it can route to, so
	// the refusals above are the rules' doing, not a missing listener.
	for _, name := range []string{"the gateway", "the host's other links", "metadata service"} {
		if _, err := dial(t, "", targets[name]); err != nil {
			t.Errorf("control: the host cannot reach %s at %s: %v", name, targets[name], err)
		}
	}
}

func TestAttach_AllowList(t *testing.T) {
	n := newNetwork(t, sandboxnet.Config{})
	w := sandboxnettest.NewWorld(t)
	hostLn := serve(t, "", w.HostSide.String(), "db")
	other := serve(t, "", w.HostSide.String(), "other")
	pol := fnspec.Network{Allow: []fnspec.Allow{{Prefix: netip.PrefixFrom(w.HostSide, 32), PortLo: hostLn.Port(), PortHi: hostLn.Port()}}}
	a, _ := sandbox(t, n, "a", pol)
	if got, err := dial(t, a, netip.AddrPortFrom(w.HostSide, hostLn.Port())); err != nil || !strings.HasPrefix(got, "db ") {
		t.Errorf("an allowed host service: %q, %v", got, err)
	}
	if got, err := dial(t, a, netip.AddrPortFrom(w.HostSide, other.Port())); err == nil {
		t.Errorf("a port outside the allow-list answered: %q", got)
	}
	if _, err := dial(t, a, w.Server); err != nil {
		t.Errorf("the world with an allow-list: %v", err)
	}
}

func TestAttach_Deny(t *testing.T) {
	w0 := sandboxnettest.NewWorld(t)
	n := newNetwork(t, sandboxnet.Config{Deny: []netip.Prefix{netip.PrefixFrom(w0.Server.Addr(), 32)}})
	a, _ := sandbox(t, n, "a", fnspec.Network{})
	if got, err := dial(t, a, w0.Server); err == nil {
		t.Errorf("a denied prefix answered: %q", got)
	}
	b, _ := sandbox(t, n, "b", fnspec.Network{Allow: []fnspec.Allow{{Prefix: netip.PrefixFrom(w0.Server.Addr(), 32)}}})
	if _, err := dial(t, b, w0.Server); err != nil {
		t.Errorf("a denied prefix on the allow-list: %v", err)
	}
}

func TestAttach_None(t *testing.T) {
	n := newNetwork(t, sandboxnet.Config{})
	w := sandboxnettest.NewWorld(t)
	p, l := sandbox(t, n, "none", fnspec.Network{Mode: fnspec.NetworkNone})
	if l != nil {
		t.Fatalf("a none policy attached %s", l.Name())
	}
	in(t, p, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				t.Errorf("a none sandbox has interface %s", l.Attrs().Name)
			}
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst == nil || !r.Dst.IP.IsLoopback() {
				t.Errorf("a none sandbox has route %v", r)
			}
		}
		return nil
	})
	if _, err := dial(t, p, w.Server); err == nil {
		t.Error("a none sandbox reached the world")
	}
}

// TestRelease_LeavesNothing counts interfaces and chains: Close removes a
// link's, and Sweep those of a sandbox whose namespace died unclosed.
func TestRelease_LeavesNothing(t *testing.T) {
	n := newNetwork(t, sandboxnet.Config{})
	before := state(t)
	var names []string
	for i := range 20 {
		p := filepath.Join(t.TempDir(), fmt.Sprint(i))
		must(t, sandboxnet.NewNamespace(p))
		l, err := n.Attach(context.Background(), p, fnspec.Network{Allow: []fnspec.Allow{{Prefix: netip.MustParsePrefix("10.9.9.9/32"), PortLo: 80, PortHi: 80}}})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, l.Name())
		if i%2 == 0 {
			must(t, l.Close())
			must(t, l.Close()) // idempotent
		}
		must(t, sandboxnet.RemoveNamespace(p)) // odd ones: as if the worker died
	}
	waitFor(t, "the links of dead namespaces to go", func() bool {
		links := state(t).links
		return !slices.ContainsFunc(names, func(n string) bool { return slices.Contains(links, n) })
	})
	must(t, n.Sweep(context.Background()))
	after := state(t)
	for _, name := range names {
		if slices.Contains(after.chains, name) || slices.Contains(after.links, name) {
			t.Errorf("%s left: chains %v, links %v", name, after.chains, after.links)
		}
	}
	if len(after.elements) != len(before.elements) {
		t.Errorf("map elements: %d before, %d after", len(before.elements), len(after.elements))
	}
}

type netState struct{ links, chains, elements []string }

func state(t *testing.T) netState {
	t.Helper()
	var s netState
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, sandboxnet.IfPrefix) {
			s.links = append(s.links, l.Attrs().Name)
		}
	}
	s.chains = sandboxnettest.Chained(t)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Name: sandboxnet.TableName, Family: nftables.TableFamilyINet}
	for _, m := range []string{"sb_out", "sb_in"} {
		elems, err := c.GetSetElements(&nftables.Set{Table: tbl, Name: m, IsMap: true})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range elems {
			s.elements = append(s.elements, strings.TrimRight(string(e.Key), "\x00"))
		}
	}
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAttach_ConnectionLimit: a sandbox holding MaxConns connections gets
// no more (a socket bomb fills its own share of the host's connection
// tracking, not the host's), and gets them back as it closes them.
func TestAttach_ConnectionLimit(t *testing.T) {
	const limit = 8
	n := newNetwork(t, sandboxnet.Config{MaxConns: limit})
	w := sandboxnettest.NewWorld(t)
	holdLn := holdServer(t, w)
	a, _ := sandbox(t, n, "a", fnspec.Network{})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dialOne := func() (net.Conn, error) {
		var c net.Conn
		var derr error
		in(t, a, func() error {
			c, derr = net.DialTimeout("tcp4", holdLn.String(), 700*time.Millisecond)
			return nil
		})
		return c, derr
	}
	for i := range limit {
		c, err := dialOne()
		if err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, limit, err)
		}
		conns = append(conns, c)
	}
	if c, err := dialOne(); err == nil {
		c.Close()
		t.Fatalf("connection %d went through a limit of %d", limit+1, limit)
	}
	conns[0].Close()
	conns = conns[1:]
	waitFor(t, "a closed connection to free its slot", func() bool {
		c, err := dialOne()
		if err == nil {
			conns = append(conns, c)
		}
		return err == nil
	})
}

// holdServer listens in the world and keeps every connection open until
// its client closes it.
func holdServer(t *testing.T, w sandboxnettest.World) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	in(t, w.Path, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(w.Addr.String(), "0"))
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestAttach_RateLimit: a sandbox sends at most RateBytes a second (after
// a second's burst). The bound is a lower bound on time, which a slow
// machine only makes safer.
func TestAttach_RateLimit(t *testing.T) {
	const rate = 1 << 20 // 1 MiB/s
	n := newNetwork(t, sandboxnet.Config{RateBytes: rate})
	w := sandboxnettest.NewWorld(t)
	var ln net.Listener
	in(t, w.Path, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(w.Addr.String(), "0"))
		return err
	})
	t.Cleanup(func() { ln.Close() })
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer c.Close()
		got, _ := io.Copy(io.Discard, c)
		received <- got
	}()
	a, _ := sandbox(t, n, "a", fnspec.Network{})
	var c net.Conn
	in(t, a, func() (err error) {
		c, err = net.DialTimeout("tcp4", ln.Addr().String(), time.Second)
		return err
	})
	const size = 4 * rate // a second of burst, then at least ~3 s at the rate
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-received; got != size {
		t.Fatalf("the world received %d of %d bytes", got, size)
	}
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Errorf("%d bytes at a limit of %d B/s took %s", size, rate, took)
	} else {
		t.Logf("%d bytes at a limit of %d B/s took %s", size, rate, took)
	}
}

// TestDNSForwarder: where the host's resolver is out of a sandbox's reach
// (loopback), the worker forwards: the sandbox resolves over UDP and TCP
// through the pool's first address, and reaches nothing else there.
func TestDNSForwarder(t *testing.T) {
	pool := netip.MustParsePrefix("10.206.0.0/24")
	fwd := netip.MustParseAddr("10.206.0.1")
	if os.Geteuid() != 0 {
		t.Skip("sandbox networking needs root")
	}
	t.Cleanup(func() {
		if lo, err := netlink.LinkByName("lo"); err == nil {
			netlink.AddrDel(lo, &netlink.Addr{IPNet: &net.IPNet{IP: fwd.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		}
	})
	w := sandboxnettest.NewWorld(t)
	n := newNetwork(t, sandboxnet.Config{CIDR: pool, DNSUpstreams: []netip.AddrPort{netip.AddrPortFrom(w.Addr, 53)}})
	if got := string(n.ResolvConf()); !strings.Contains(got, "nameserver "+fwd.String()+"\n") {
		t.Fatalf("resolv.conf without the forwarder:\n%s", got)
	}
	other := serve(t, "", fwd.String(), "host") // another port of the same address
	a, _ := sandbox(t, n, "a", fnspec.Network{})
	for _, network := range []string{"udp", "tcp"} {
		// The socket is made in the sandbox's namespace (a resolver
		// would dial from goroutines of its own, in the host's).
		var c net.Conn
		in(t, a, func() (err error) {
			c, err = net.DialTimeout(network, netip.AddrPortFrom(fwd, 53).String(), time.Second)
			return err
		})
		got, err := lookupA(c, network == "tcp", sandboxnettest.WorldName)
		c.Close()
		if err != nil || got != w.Addr {
			t.Errorf("resolving %s over %s through the forwarder: %v %v", sandboxnettest.WorldName, network, got, err)
		}
	}
	if got, err := dial(t, a, other); err == nil {
		t.Errorf("a sandbox reached %s on the forwarder's address: %q", other, got)
	}
}

// lookupA asks c for name's A record.
func lookupA(c net.Conn, tcp bool, name string) (netip.Addr, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x1d, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	q, err := b.Finish()
	if err != nil {
		return netip.Addr{}, err
	}
	if tcp {
		q = append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)
	}
	if _, err := c.Write(q); err != nil {
		return netip.Addr{}, err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return netip.Addr{}, err
	}
	if tcp {
		buf, n = buf[2:], n-2
	}
	var p dnsmessage.Parser
	if _, err := p.Start(buf[:n]); err != nil {
		return netip.Addr{}, err
	}
	p.SkipAllQuestions()
	for {
		h, err := p.AnswerHeader()
		if err != nil {
			return netip.Addr{}, err
		}
		if h.Type == dnsmessage.TypeA {
			a, err := p.AResource()
			return netip.AddrFrom4(a.A), err
		}
		p.SkipAnswer()
	}
}
