package sandboxnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/fnspec"
)

// Defaults.
var (
	// DefaultCIDR is the default pool. It is from 10/8 rather than the
	// shared address space (100.64/10) that Tailscale and carrier NAT use.
	DefaultCIDR = netip.MustParsePrefix("10.203.0.0/16")
)

const (
	// DefaultRateBytes is each direction's bandwidth per sandbox, 600
	// Mbit/s, about what a Lambda environment measures.
	DefaultRateBytes = 75 << 20
	// DefaultMaxConns bounds a sandbox's tracked connections (the host's
	// conntrack table is shared): Lambda's file descriptor limit.
	DefaultMaxConns = 1024
	// IfPrefix starts the host-side name of every sandbox interface.
	IfPrefix = "igs"
	// SandboxIf is the interface's name inside the sandbox.
	SandboxIf = "eth0"
)

// Config configures a Network.
type Config struct {
	// CIDR is the pool sandbox links are cut from, two addresses each
	// (host side even, sandbox odd). Workers sharing a host must use the
	// same pool or disjoint ones. Default DefaultCIDR.
	CIDR netip.Prefix
	// Nameservers for /etc/resolv.conf in sandboxes. Default: the host's
	// that a sandbox can reach (see doc); when it has none, the worker's
	// DNS forwarder.
	Nameservers []netip.Addr
	// DNSUpstreams, when set, are served to sandboxes through a DNS
	// forwarder of the worker's at the pool's first address (see
	// dnsfwd.go), which is then their nameserver. Default: the host's
	// nameservers, when none of them is reachable from a sandbox (one on
	// loopback, as systemd-resolved's).
	DNSUpstreams []netip.AddrPort
	// Deny lists further destinations no sandbox reaches unless its
	// allow-list names them (the cluster's nodes).
	Deny []netip.Prefix
	// RateBytes is the bandwidth per direction per sandbox, bytes/s.
	// Default DefaultRateBytes.
	RateBytes uint64
	// MaxConns bounds a sandbox's connections. Default DefaultMaxConns.
	MaxConns uint32
	// Logger receives diagnostics. Default: discarded.
	Logger *slog.Logger
}

// Network attaches sandboxes to the host's network. It is safe for
// concurrent use.
type Network struct {
	cfg  Config
	log  *slog.Logger
	base netip.Addr // the pool's first address, as a number below
	size uint64     // /31 links in the pool

	fwd *dnsForwarder // nil without one

	mu     sync.Mutex
	nft    *nftables.Conn // batches are not safe to interleave: mu guards
	cursor uint64         // next index to try; guarded by mu
}

// New sets the host up for sandbox networking, once per worker: IPv4
// forwarding on, the shared nftables table (re)installed with this worker's
// pool, and the chains of vanished sandboxes removed. Fails with an error
// wrapping ErrUnsupported when the host cannot (no nftables, no veth).
func New(ctx context.Context, cfg Config) (*Network, error) {
	if !cfg.CIDR.IsValid() {
		cfg.CIDR = DefaultCIDR
	}
	cfg.CIDR = cfg.CIDR.Masked()
	if !cfg.CIDR.Addr().Is4() || cfg.CIDR.Bits() > 30 {
		return nil, fmt.Errorf("sandbox network %s: need an IPv4 prefix of /30 or larger", cfg.CIDR)
	}
	if cfg.RateBytes == 0 {
		cfg.RateBytes = DefaultRateBytes
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.Deny {
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("sandbox network: deny %s: only IPv4 is routed to sandboxes", p)
		}
	}
	n := &Network{cfg: cfg, log: cfg.Logger.With("component", "sandboxnet"), base: cfg.CIDR.Addr(), cursor: 1}
	n.size = 1 << (32 - cfg.CIDR.Bits() - 1)
	if cfg.Nameservers == nil {
		reachable, unreachable := hostNameservers(n.log)
		n.cfg.Nameservers = reachable
		if len(reachable) == 0 && n.cfg.DNSUpstreams == nil {
			for _, a := range unreachable {
				n.cfg.DNSUpstreams = append(n.cfg.DNSUpstreams, netip.AddrPortFrom(a, 53))
			}
		}
	}
	var err error
	if n.nft, err = nftables.New(nftables.AsLasting()); err != nil {
		return nil, fmt.Errorf("sandbox network: opening nftables: %w: %w", err, ErrUnsupported)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0); err != nil {
		n.nft.CloseLasting()
		return nil, fmt.Errorf("sandbox network: enabling IPv4 forwarding: %w", err)
	}
	n.mu.Lock()
	err = n.installBase()
	n.mu.Unlock()
	if err != nil {
		n.nft.CloseLasting()
		return nil, fmt.Errorf("sandbox network: installing rules: %w: %w", err, ErrUnsupported)
	}
	if err := n.Sweep(ctx); err != nil {
		n.log.Warn("removing rules of vanished sandboxes", "err", err)
	}
	if len(n.cfg.DNSUpstreams) > 0 {
		// Index 0's sandbox address: no link is ever given index 0.
		// Without it sandboxes lack DNS, not the world: a warning, not a
		// failed start (something else may hold port 53 on every address).
		if n.fwd, err = startDNSForwarder(n.addr(1), n.cfg.DNSUpstreams, n.log); err != nil {
			n.log.Warn("no DNS for sandboxes: pass the server --sandbox-dns", "err", err)
		} else if cfg.Nameservers == nil {
			n.cfg.Nameservers = []netip.Addr{n.fwd.addr}
		}
	}
	n.log.Info("sandbox network ready", "cidr", cfg.CIDR, "nameservers", n.cfg.Nameservers, "deny", cfg.Deny)
	return n, nil
}

// ErrUnsupported reports a host without what sandbox networking needs.
var ErrUnsupported = errors.New("sandbox networking unsupported on this host")

// Close releases the worker's nftables connection. Sandboxes keep their
// links and rules.
func (n *Network) Close() error {
	if n.fwd != nil {
		n.fwd.close()
	}
	return n.nft.CloseLasting()
}

// ResolvConf is the /etc/resolv.conf for sandboxes.
func (n *Network) ResolvConf() []byte {
	var b strings.Builder
	b.WriteString("# written by ignis: the nameservers sandboxes reach\n")
	for _, a := range n.cfg.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	b.WriteString("options timeout:2 attempts:2\n")
	return []byte(b.String())
}

// Link is one sandbox's attachment: its host-side interface and its rules.
type Link struct {
	n       *Network
	name    string
	index   int // the host-side interface's index: names are reused, indexes are not
	host    netip.Addr
	sandbox netip.Addr
}

// Name is the host-side interface's name, for a sandbox's handle: after a
// worker restart, ReleaseIn releases it by name from its namespace.
func (l *Link) Name() string { return l.name }

// Addr is the sandbox's address.
func (l *Link) Addr() netip.Addr { return l.sandbox }

// Gateway is the host side's address, the sandbox's default route.
func (l *Link) Gateway() netip.Addr { return l.host }

// Attach gives the network namespace at nsPath (/proc/PID/ns/net, or a
// mount of one) its link and rules under policy pol. A NetworkNone policy
// attaches nothing and returns a nil Link: the namespace keeps its
// loopback alone. On error the link's rules are removed, and the link goes
// with the namespace.
func (n *Network) Attach(ctx context.Context, nsPath string, pol fnspec.Network) (_ *Link, err error) {
	if pol.None() {
		return nil, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("attaching sandbox network: %w", err)
	}
	defer ns.Close()
	l, err := n.createVeth(ctx, ns)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	n.mu.Lock()
	err = n.installSandbox(l.name, pol)
	n.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("attaching sandbox network: installing rules: %w", err)
	}
	// Up only once its rules are in place; until then the interface is
	// down and the base chains drop whatever it sends regardless.
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("attaching sandbox network: entering the namespace: %w", err)
	}
	defer h.Close()
	if err := configureSandboxSide(h, l); err != nil {
		return nil, err
	}
	if err := configureHostSide(l); err != nil {
		return nil, err
	}
	if err := awaitOperUp(ctx, h, l.name); err != nil {
		return nil, err
	}
	return l, nil
}

// awaitOperUp waits until both ends of the link are operationally up. A
// veth end opened while its peer was down gets its queue from the kernel's
// link watcher, asynchronously; until then it drops what it should send,
// and the first connection of a sandbox would wait a SYN retransmission
// (one second) for it.
// h is a handle in the sandbox's namespace.
func awaitOperUp(ctx context.Context, h *netlink.Handle, hostName string) error {
	deadline := time.Now().Add(5 * time.Second)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		host, herr := netlink.LinkByName(hostName)
		sb, serr := h.LinkByName(SandboxIf)
		if err := errors.Join(herr, serr); err != nil {
			return fmt.Errorf("attaching sandbox network: %w", err)
		}
		if host.Attrs().OperState == netlink.OperUp && sb.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("attaching sandbox network: %s and %s not up after 5s (%s, %s)", hostName, SandboxIf, host.Attrs().OperState, sb.Attrs().OperState)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("attaching sandbox network: %w", ctx.Err())
		case <-time.After(delay):
		}
	}
}

// createVeth creates a veth pair with its peer, SandboxIf, already in ns,
// under the first free index.
func (n *Network) createVeth(ctx context.Context, ns netns.NsHandle) (*Link, error) {
	for range 64 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		i := n.nextIndex()
		name := IfPrefix + strconv.FormatUint(i, 36)
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: name},
			PeerName:      SandboxIf,
			PeerNamespace: netlink.NsFd(int(ns)),
		}
		err := netlink.LinkAdd(veth)
		if errors.Is(err, unix.EEXIST) {
			if _, lerr := netlink.LinkByName(name); lerr == nil {
				continue // taken on the host: try the next index
			}
			return nil, fmt.Errorf("attaching sandbox network: the namespace already has %s", SandboxIf)
		}
		if err != nil {
			return nil, fmt.Errorf("attaching sandbox network: creating %s: %w", name, err)
		}
		host := n.addr(2 * i)
		return &Link{n: n, name: name, host: host, sandbox: host.Next()}, nil
	}
	return nil, fmt.Errorf("attaching sandbox network: no free link in %s", n.cfg.CIDR)
}

// nextIndex picks the next link index to try, round robin over the pool
// (index 0 would give the pool's network address to the host side).
func (n *Network) nextIndex() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := n.cursor
	n.cursor++
	if n.cursor >= n.size {
		n.cursor = 1
	}
	return i
}

// addr is the pool's address at offset off.
func (n *Network) addr(off uint64) netip.Addr {
	b := n.base.As4()
	v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	v += off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func configureHostSide(l *Link) error {
	link, err := netlink.LinkByName(l.name)
	if err != nil {
		return fmt.Errorf("attaching sandbox network: %w", err)
	}
	l.index = link.Attrs().Index
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(l.host, 31)}); err != nil {
		return fmt.Errorf("attaching sandbox network: addressing %s: %w", l.name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("attaching sandbox network: %s up: %w", l.name, err)
	}
	return nil
}

// configureSandboxSide addresses and raises the sandbox's end, through h,
// a handle in its namespace, and routes everything through the host.
func configureSandboxSide(h *netlink.Handle, l *Link) error {
	link, err := h.LinkByName(SandboxIf)
	if err != nil {
		return fmt.Errorf("attaching sandbox network: %w", err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(l.sandbox, 31)}); err != nil {
		return fmt.Errorf("attaching sandbox network: addressing %s: %w", SandboxIf, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("attaching sandbox network: %s up: %w", SandboxIf, err)
	}
	gw := net.IP(l.host.AsSlice())
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("attaching sandbox network: default route: %w", err)
	}
	return nil
}

func ipNet(a netip.Addr, ones int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(ones, 32)}
}

// Apply makes a link attached ahead of its sandbox's policy (a jail's
// prestarted stage, attached with the default) follow pol, and returns the
// link still attached: l itself, or nil for NetworkNone. An allow-list
// rewrites the link's rules (one transaction). NetworkNone releases the
// link: its rules go, the sandbox's end loses its address and route at
// once (no route at all, before the sandbox runs anything), and the pair is
// deleted in the background, which takes the kernel tens of milliseconds.
// A nil l is attached afresh.
func (n *Network) Apply(ctx context.Context, nsPath string, l *Link, pol fnspec.Network) (*Link, error) {
	switch {
	case l == nil:
		return n.Attach(ctx, nsPath, pol)
	case pol.None():
		if err := l.Close(); err != nil {
			return nil, err
		}
		if err := n.detach(nsPath, l); err != nil {
			return nil, err
		}
		return nil, nil
	case len(pol.Allow) > 0:
		n.mu.Lock()
		err := n.installSandbox(l.name, pol)
		n.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("applying the sandbox network policy: %w", err)
		}
	}
	return l, nil
}

// detach takes a released link out of service at once, and deletes it in
// the background.
func (n *Network) detach(nsPath string, l *Link) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("detaching sandbox network: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("detaching sandbox network: entering the namespace: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(SandboxIf)
	if err != nil {
		return fmt.Errorf("detaching sandbox network: %w", err)
	}
	if err := h.LinkSetDown(link); err != nil {
		return fmt.Errorf("detaching sandbox network: %w", err)
	}
	// Down drops neither the route nor the address: delete them.
	routes, err := h.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("detaching sandbox network: %w", err)
	}
	for _, r := range routes {
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("detaching sandbox network: deleting route %v: %w", r, err)
		}
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("detaching sandbox network: %w", err)
	}
	for _, a := range addrs {
		if err := h.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("detaching sandbox network: deleting address %v: %w", a, err)
		}
	}
	name := l.name
	go func() {
		if hl, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(hl); err != nil && !errors.Is(err, unix.ENODEV) {
				n.log.Warn("deleting a detached sandbox link", "link", name, "err", err)
			}
		}
	}()
	return nil
}

// Close removes the link's rules. The link itself goes with the sandbox's
// network namespace: when its last process exits (a jail's PID 1, runsc's
// sandbox once its mount is removed) the kernel deletes both ends, without
// the tens of milliseconds a deletion costs whoever waits for it. Once it
// is gone its name may be another sandbox's: then the rules under the name
// are that sandbox's, and Close leaves them. Idempotent; safe on a nil
// Link.
func (l *Link) Close() error {
	if l == nil {
		return nil
	}
	if cur, err := netlink.LinkByName(l.name); err == nil && l.index != 0 && cur.Attrs().Index != l.index {
		return nil
	}
	return l.n.Release(l.name)
}

// ReleaseIn removes the rules of host-side interface name if it is still
// the link of the namespace at nsPath (the peer of its SandboxIf): a worker
// cleaning up a sandbox from its handle after a restart, when the name may
// have gone to another sandbox since. Otherwise it leaves them to Sweep.
func (n *Network) ReleaseIn(nsPath, name string) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil // no namespace: no link; its rules are Sweep's
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("releasing sandbox network %s: %w", name, err)
	}
	defer h.Close()
	inner, err := h.LinkByName(SandboxIf)
	if err != nil {
		return nil
	}
	host, err := netlink.LinkByName(name)
	if err != nil || inner.Attrs().ParentIndex != host.Attrs().Index {
		return nil
	}
	return n.Release(name)
}

// Release removes the rules of the host-side interface name; see
// Link.Close. Call it only while the name is known to be the sandbox's (its
// namespace still holds the interface). Idempotent.
func (n *Network) Release(name string) error {
	if !strings.HasPrefix(name, IfPrefix) {
		return fmt.Errorf("releasing sandbox network: %q is not a sandbox interface", name)
	}
	n.mu.Lock()
	err := n.removeSandbox(name)
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("releasing sandbox network %s: %w", name, err)
	}
	return nil
}

// Sweep removes the rules of sandbox interfaces that no longer exist: those
// of sandboxes that died with a worker killed before it could Close them.
// Interfaces of live sandboxes, of this worker or another, keep theirs.
func (n *Network) Sweep(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	names, err := n.sandboxChains()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := netlink.LinkByName(name); err == nil {
			continue
		}
		if err := n.removeSandbox(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// hostNameservers reads the host's resolv.conf and sorts its IPv4
// nameservers into those a sandbox can reach and those it cannot (loopback,
// an address of the host).
func hostNameservers(log *slog.Logger) (reachable, unreachable []netip.Addr) {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		log.Warn("no DNS for sandboxes: reading the host's resolv.conf", "err", err)
		return []netip.Addr{}, nil
	}
	local := map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				local[p.Addr()] = true
			}
		}
	}
	reachable = []netip.Addr{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		switch {
		case err != nil || !a.Is4():
			continue
		case a.IsLoopback() || local[a]:
			unreachable = append(unreachable, a)
		default:
			reachable = append(reachable, a)
		}
	}
	return reachable, unreachable
}
