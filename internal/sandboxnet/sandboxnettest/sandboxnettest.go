// Package sandboxnettest builds what tests of sandbox networking stand
// sandboxes next to: network namespaces of their own, and a "world" (a
// namespace standing for the internet, linked to the host, with a TCP
// server, a DNS server and a metadata address routed to it). Everything is
// removed in t.Cleanup. Root only: callers skip otherwise.
package sandboxnettest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// Metadata is where clouds serve instance metadata (and credentials).
var Metadata = netip.MustParseAddr("169.254.169.254")

// WorldName resolves, through the world's DNS server, to its address.
const WorldName = "server.world.test"

// NewNetwork is sandboxnet.New for a test: closed in t.Cleanup.
func NewNetwork(t testing.TB, cfg sandboxnet.Config) *sandboxnet.Network {
	t.Helper()
	n, err := sandboxnet.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Namespace makes a network namespace with its loopback up and returns
// its path.
func Namespace(t testing.TB, name string) string {
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
	In(t, p, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	return p
}

// In runs fn on a thread in the namespace at path (sandboxnet.Do) and
// fails t on its error. Sockets fn creates stay in that namespace.
func In(t testing.TB, path string, fn func() error) {
	t.Helper()
	if err := sandboxnet.Do(path, fn); err != nil {
		t.Fatalf("in %s: %v", filepath.Base(path), err)
	}
}

// Serve listens on addr:0 in the namespace at path (the host's if empty)
// and answers every connection with "NAME PEER-ADDRESS".
func Serve(t testing.TB, path, addr, name string) netip.AddrPort {
	t.Helper()
	return servePort(t, path, addr, 0, name)
}

// listen listens on TCP addr:port in the namespace at path (the host's if
// empty), until the test ends.
func listen(t testing.TB, path, addr string, port int) net.Listener {
	t.Helper()
	var ln net.Listener
	l := func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(addr, fmt.Sprint(port)))
		return err
	}
	if path == "" {
		if err := l(); err != nil {
			t.Fatal(err)
		}
	} else {
		In(t, path, l)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func servePort(t testing.TB, path, addr string, port int, name string) netip.AddrPort {
	t.Helper()
	ln := listen(t, path, addr, port)
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

// Dial connects from the namespace at path (the host's if empty) to to
// and returns what the server said.
func Dial(t testing.TB, path string, to netip.AddrPort) (string, error) {
	t.Helper()
	var c net.Conn
	var derr error
	dial := func() error {
		d := net.Dialer{Timeout: 700 * time.Millisecond}
		c, derr = d.Dial("tcp4", to.String())
		return nil
	}
	if path == "" {
		dial()
	} else {
		In(t, path, dial)
	}
	if derr != nil {
		return "", derr
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// World is a namespace standing for the internet.
type World struct {
	Path     string
	Addr     netip.Addr // the world's address; its DNS server listens here on 53
	HostSide netip.Addr // the host's address on the link to it
	Server   netip.AddrPort
	// HTTP answers every GET with WorldGreeting.
	HTTP netip.AddrPort
	// MetadataServer listens on Metadata, routed from the host to the
	// world: reachable from the host, so a sandbox failing to reach it is
	// the rules' doing.
	MetadataServer netip.AddrPort
}

// NewWorld makes a world linked to the host's namespace.
func NewWorld(t testing.TB) World {
	t.Helper()
	w := World{Path: Namespace(t, "world")}
	ns, err := netns.GetFromPath(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	// Tests in other processes make worlds at the same time: the link's
	// name holds its subnet, and the kernel refuses a name twice.
	var sub byte
	var name string
	for i, start := 0, rand.IntN(250); ; i++ {
		if i == 250 {
			t.Fatal("no free world subnet in 10.214.0.0/16")
		}
		sub = byte((start+i)%250 + 1)
		name = fmt.Sprintf("igtw%d", sub)
		err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			t.Fatal(err)
		}
	}
	w.HostSide = netip.AddrFrom4([4]byte{10, 214, sub, 1})
	w.Addr = netip.AddrFrom4([4]byte{10, 214, sub, 2})
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			netlink.LinkDel(l)
		}
	})
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	must(t, netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(w.HostSide, 30)}))
	must(t, netlink.LinkSetUp(link))
	// Worlds side by side each route the metadata address, at metrics of
	// their own; every world serves it on the same port, so whichever
	// route wins, the host reaches a metadata server.
	must(t, netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(Metadata, 32), Gw: w.Addr.AsSlice(), Priority: int(sub)}))
	In(t, w.Path, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(w.Addr, 30)}); err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(Metadata, 32)}); err != nil {
			return err
		}
		// No default route: the world knows no sandbox address, so only
		// NAT brings replies home.
		return netlink.LinkSetUp(eth)
	})
	w.Server = Serve(t, w.Path, w.Addr.String(), "world")
	w.HTTP = w.serveHTTP(t)
	w.MetadataServer = servePort(t, w.Path, Metadata.String(), 80, "metadata")
	w.serveDNS(t)
	return w
}

// WorldGreeting is the body of every World.HTTP response.
const WorldGreeting = "hello from the world"

func (w World) serveHTTP(t testing.TB) netip.AddrPort {
	t.Helper()
	ln := listen(t, w.Path, w.Addr.String(), 0)
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, WorldGreeting)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// serveDNS answers A queries for WorldName with the world's address, and
// NXDOMAIN otherwise, on UDP and TCP port 53 of the world's address.
func (w World) serveDNS(t testing.TB) {
	t.Helper()
	var pc net.PacketConn
	In(t, w.Path, func() (err error) {
		pc, err = net.ListenPacket("udp4", net.JoinHostPort(w.Addr.String(), "53"))
		return err
	})
	t.Cleanup(func() { pc.Close() })
	ln := listen(t, w.Path, w.Addr.String(), 53)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				if resp, ok := answer(q, w.Addr); ok {
					c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...))
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, ok := answer(buf[:n], w.Addr); ok {
				pc.WriteTo(resp, from)
			}
		}
	}()
}

func answer(query []byte, addr netip.Addr) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	known := strings.EqualFold(q.Name.String(), WorldName+".")
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if known && q.Type == dnsmessage.TypeA {
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: addr.As4()})
	}
	out, err := b.Finish()
	return out, err == nil
}

func ipNet(a netip.Addr, ones int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(ones, 32)}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Chained lists the host-side interface names that have sandbox chains in
// the shared table, one entry per chain (so twice per attached sandbox).
func Chained(t testing.TB) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range chains {
		if ch.Table.Name == sandboxnet.TableName && strings.HasPrefix(ch.Name, "sb_") {
			out = append(out, strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(ch.Name, "sb_"), "_out"), "_in"))
		}
	}
	return out
}
