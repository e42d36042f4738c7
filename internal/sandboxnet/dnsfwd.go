package sandboxnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A DNS forwarder for hosts whose resolvers sandboxes cannot reach: a
// nameserver on loopback (systemd-resolved's 127.0.0.53, the default on
// many laptops) or on an address of the host. It listens on the pool's
// first address (index 0, never a link's), added to the host's loopback
// interface; the sandboxes' own chains let UDP and TCP port 53 of that
// address through and nothing else of the host. It relays each query to
// the host's resolvers as is, so it is no more than the host's resolver
// made reachable; a bounded number run at once, and the rest are dropped
// (clients retry).

const (
	dnsMaxInFlight = 256
	dnsTimeout     = 3 * time.Second
	dnsMaxMessage  = 65535
)

type dnsForwarder struct {
	addr      netip.Addr
	upstreams []netip.AddrPort
	log       *slog.Logger
	udp       *net.UDPConn
	tcp       net.Listener
	slots     chan struct{}
	wg        sync.WaitGroup
}

// startDNSForwarder serves DNS on addr:53 for upstreams. Several workers
// sharing a pool share the address (SO_REUSEPORT): the kernel spreads
// queries over them.
func startDNSForwarder(addr netip.Addr, upstreams []netip.AddrPort, log *slog.Logger) (*dnsForwarder, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("dns forwarder: %w", err)
	}
	if err := netlink.AddrReplace(lo, &netlink.Addr{IPNet: ipNet(addr, 32)}); err != nil {
		return nil, fmt.Errorf("dns forwarder: adding %s to lo: %w", addr, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	at := netip.AddrPortFrom(addr, 53).String()
	pc, err := lc.ListenPacket(context.Background(), "udp4", at)
	if err != nil {
		return nil, fmt.Errorf("dns forwarder: %w", err)
	}
	ln, err := lc.Listen(context.Background(), "tcp4", at)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dns forwarder: %w", err)
	}
	f := &dnsForwarder{addr: addr, upstreams: upstreams, log: log, udp: pc.(*net.UDPConn), tcp: ln, slots: make(chan struct{}, dnsMaxInFlight)}
	f.wg.Add(2)
	go f.serveUDP()
	go f.serveTCP()
	log.Info("dns forwarder for sandboxes", "addr", at, "upstreams", upstreams)
	return f, nil
}

// close stops serving and waits for the queries in flight. The address
// stays on lo: another worker of the host may serve on it too.
func (f *dnsForwarder) close() {
	f.udp.Close()
	f.tcp.Close()
	f.wg.Wait()
}

// acquire takes an in-flight slot, or reports that none is free.
func (f *dnsForwarder) acquire() bool {
	select {
	case f.slots <- struct{}{}:
		f.wg.Add(1)
		return true
	default:
		return false
	}
}

func (f *dnsForwarder) release() {
	<-f.slots
	f.wg.Done()
}

func (f *dnsForwarder) serveUDP() {
	defer f.wg.Done()
	buf := make([]byte, dnsMaxMessage)
	for {
		n, from, err := f.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 12 || !f.acquire() { // shorter than a DNS header, or too busy
			continue
		}
		q := append([]byte(nil), buf[:n]...) // the query alone: buf is read into again
		go func() {
			defer f.release()
			resp, err := f.exchange("udp4", q)
			if err != nil {
				f.log.Debug("dns forwarder", "err", err)
				return
			}
			f.udp.WriteToUDPAddrPort(resp, from)
		}()
	}
}

func (f *dnsForwarder) serveTCP() {
	defer f.wg.Done()
	for {
		c, err := f.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !f.acquire() {
			c.Close()
			continue
		}
		go func() {
			defer f.release()
			defer c.Close()
			c.SetDeadline(time.Now().Add(dnsTimeout))
			q, err := readTCPMessage(c)
			if err != nil {
				return
			}
			resp, err := f.exchange("tcp4", q)
			if err != nil {
				f.log.Debug("dns forwarder", "err", err)
				return
			}
			writeTCPMessage(c, resp)
		}()
	}
}

// exchange sends one query to the upstreams in turn and returns the first
// answer.
func (f *dnsForwarder) exchange(network string, q []byte) ([]byte, error) {
	var errs []error
	for _, up := range f.upstreams {
		c, err := net.DialTimeout(network, up.String(), dnsTimeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp, err := roundTrip(c, network, q)
		c.Close()
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func roundTrip(c net.Conn, network string, q []byte) ([]byte, error) {
	c.SetDeadline(time.Now().Add(dnsTimeout))
	if network == "tcp4" {
		if err := writeTCPMessage(c, q); err != nil {
			return nil, err
		}
		return readTCPMessage(c)
	}
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	buf := make([]byte, dnsMaxMessage)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		// The answer to this query: same ID.
		if n >= 12 && buf[0] == q[0] && buf[1] == q[1] {
			return buf[:n], nil
		}
	}
}

// readTCPMessage reads one length-prefixed DNS message (RFC 1035 4.2.2).
func readTCPMessage(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(l[:])
	if n < 12 {
		return nil, errors.New("dns message shorter than its header")
	}
	msg := make([]byte, n)
	_, err := io.ReadFull(r, msg)
	return msg, err
}

func writeTCPMessage(w io.Writer, msg []byte) error {
	if len(msg) > dnsMaxMessage {
		return errors.New("dns message too long")
	}
	_, err := w.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...))
	return err
}
