package sandboxnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

func newNetwork(t *testing.T, cfg sandboxnet.Config) *sandboxnet.Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandbox networking needs root")
	}
	n, err := sandboxnet.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// namespace makes a network namespace with its loopback up.
func namespace(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := sandboxnet.NewNamespace(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sandboxnet.RemoveNamespace(p); err != nil {
			t.Error(err)
		}
	})
	in(t, p, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	return p
}

// in runs fn on a thread in the namespace at path. Sockets fn creates stay
// in that namespace after it returns.
func in(t *testing.T, path string, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in %s: %v", filepath.Base(path), err)
	}
}

// serve listens on addr:0 in the namespace at path (the host's if empty)
// and answers every connection with its name and the peer's address.
func serve(t *testing.T, path, addr, name string) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	listen := func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(addr, "0"))
		return err
	}
	if path == "" {
		if err := listen(); err != nil {
			t.Fatal(err)
		}
	} else {
		in(t, path, listen)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s", name, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// dial connects from the namespace at path to to and returns what the
// server said.
func dial(t *testing.T, path string, to netip.AddrPort) (string, error) {
	t.Helper()
	var c net.Conn
	var derr error
	in(t, path, func() error {
		d := net.Dialer{Timeout: 700 * time.Millisecond}
		c, derr = d.Dial("tcp4", to.String())
		return nil
	})
	if derr != nil {
		return "", derr
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// world is a namespace standing for the internet: a veth to the host, a
// server, and 169.254.169.254 (a metadata service) routed to it too.
type world struct {
	path     string
	hostSide netip.Addr // the host's address on the link to it
	server   netip.AddrPort
	metadata netip.AddrPort
}

func newWorld(t *testing.T) world {
	t.Helper()
	w := world{path: namespace(t, "world")}
	sub := rand.IntN(250) + 1
	w.hostSide = netip.AddrFrom4([4]byte{10, 214, byte(sub), 1})
	worldAddr := netip.AddrFrom4([4]byte{10, 214, byte(sub), 2})
	name := fmt.Sprintf("igtw%d", rand.IntN(1e6))
	ns, err := netns.GetFromPath(w.path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			netlink.LinkDel(l)
		}
	})
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	must(t, netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: w.hostSide.AsSlice(), Mask: net.CIDRMask(30, 32)}}))
	must(t, netlink.LinkSetUp(link))
	metadata := netip.MustParseAddr("169.254.169.254")
	must(t, netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: metadata.AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: worldAddr.AsSlice()}))
	in(t, w.path, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: worldAddr.AsSlice(), Mask: net.CIDRMask(30, 32)}}); err != nil {
			return err
		}
		lo, _ := netlink.LinkByName("lo")
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: metadata.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(eth)
	})
	// The world answers to the whole pool through the host, as the
	// internet answers a NAT gateway's public address: only NAT makes
	// the replies come back.
	w.server = serve(t, w.path, worldAddr.String(), "world")
	w.metadata = serve(t, w.path, metadata.String(), "metadata")
	return w
}

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

// hostAddrs lists the host's IPv4 addresses outside the sandbox links.
func hostAddrs(t *testing.T) []netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		p := netip.MustParsePrefix(a.String())
		if p.Addr().Is4() && !sandboxnet.DefaultCIDR.Contains(p.Addr()) {
			out = append(out, p.Addr())
		}
	}
	return out
}

func TestAttach_Egress(t *testing.T) {
	n := newNetwork(t, sandboxnet.Config{})
	w := newWorld(t)
	a, la := sandbox(t, n, "a", fnspec.Network{})
	b, lb := sandbox(t, n, "b", fnspec.Network{})

	t.Run("the world, through NAT", func(t *testing.T) {
		got, err := dial(t, a, w.server)
		if err != nil {
			t.Fatalf("dialing the world from a sandbox: %v", err)
		}
		if want := "world " + w.hostSide.String(); got != want {
			t.Errorf("the world saw %q, want %q (masqueraded)", got, want)
		}
	})

	// Every address of the host, on the port of a listener on all of them
	// (as the API or NATS would be), and the sandbox's own gateway.
	hostLn := serve(t, "", "0.0.0.0", "host")
	targets := map[string]netip.AddrPort{
		"the gateway":      netip.AddrPortFrom(la.Gateway(), hostLn.Port()),
		"another sandbox":  serve(t, b, lb.Addr().String(), "b"),
		"metadata service": w.metadata,
		"loopback":         netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), hostLn.Port()),
	}
	for _, h := range hostAddrs(t) {
		targets["the host at "+h.String()] = netip.AddrPortFrom(h, hostLn.Port())
	}
	for name, to := range targets {
		t.Run("not "+name, func(t *testing.T) {
			if got, err := dial(t, a, to); err == nil {
				t.Errorf("a sandbox reached %s at %s: %q", name, to, got)
			}
		})
	}
	// The targets are there: reached from the host, the refusals above
	// are the rules' doing, not a missing route.
	for _, to := range []netip.AddrPort{w.metadata, targets["another sandbox"]} {
		if _, err := dial(t, w.path, w.server); err != nil {
			t.Fatalf("control: the world namespace cannot reach itself: %v", err)
		}
		if to == w.metadata {
			if _, err := dialHost(to); err != nil {
				t.Errorf("control: the host cannot reach %s: %v", to, err)
			}
		}
	}
}

func dialHost(to netip.AddrPort) (string, error) {
	c, err := net.DialTimeout("tcp4", to.String(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestAttach_AllowList(t *testing.T) {
	n := newNetwork(t, sandboxnet.Config{})
	w := newWorld(t)
	hostLn := serve(t, "", "0.0.0.0", "db")
	other := serve(t, "", "0.0.0.0", "other")
	pol := fnspec.Network{Allow: []fnspec.Allow{{Prefix: netip.PrefixFrom(w.hostSide, 32), PortLo: hostLn.Port(), PortHi: hostLn.Port()}}}
	a, _ := sandbox(t, n, "a", pol)
	if got, err := dial(t, a, netip.AddrPortFrom(w.hostSide, hostLn.Port())); err != nil || !strings.HasPrefix(got, "db ") {
		t.Errorf("an allowed host service: %q, %v", got, err)
	}
	if got, err := dial(t, a, netip.AddrPortFrom(w.hostSide, other.Port())); err == nil {
		t.Errorf("a port outside the allow-list answered: %q", got)
	}
	if _, err := dial(t, a, w.server); err != nil {
		t.Errorf("the world with an allow-list: %v", err)
	}
}

func TestAttach_Deny(t *testing.T) {
	w0 := newWorld(t)
	n := newNetwork(t, sandboxnet.Config{Deny: []netip.Prefix{netip.PrefixFrom(w0.server.Addr(), 32)}})
	a, _ := sandbox(t, n, "a", fnspec.Network{})
	if got, err := dial(t, a, w0.server); err == nil {
		t.Errorf("a denied prefix answered: %q", got)
	}
	b, _ := sandbox(t, n, "b", fnspec.Network{Allow: []fnspec.Allow{{Prefix: netip.PrefixFrom(w0.server.Addr(), 32)}}})
	if _, err := dial(t, b, w0.server); err != nil {
		t.Errorf("a denied prefix on the allow-list: %v", err)
	}
}

func TestAttach_None(t *testing.T) {
	n := newNetwork(t, sandboxnet.Config{})
	w := newWorld(t)
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
	if _, err := dial(t, p, w.server); err == nil {
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
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		if ch.Table.Name == sandboxnet.TableName && strings.HasPrefix(ch.Name, "sb_") {
			s.chains = append(s.chains, strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(ch.Name, "sb_"), "_out"), "_in"))
		}
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
