package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The cluster network: one /24 behind the switch namespace's bridge (see
// the package doc for why every cluster may use the same one).
const (
	subnet   = "10.213.0."
	switchIP = subnet + "254"
	hostPort = "9000"
	// routePort is each host's NATS route listener (ClusterArgs).
	routePort = "6222"
	// bridgeName and hostIface are names inside the cluster's own
	// namespaces, so fixed ones cannot clash.
	bridgeName = "br0"
	hostIface  = "eth0"
)

// run runs a command (ip, tc) and returns its output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// addNetns creates the network namespace name with its loopback up, and
// opens it.
func addNetns(name string) (*os.File, error) {
	if err := run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	if err := run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return os.Open("/run/netns/" + name)
}

// makeSwitch creates the switch namespace sw with its bridge and address.
func makeSwitch(sw string) (*os.File, error) {
	f, err := addNetns(sw)
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", sw, "link", "add", bridgeName, "type", "bridge"},
		{"-n", sw, "addr", "add", switchIP + "/24", "dev", bridgeName},
		{"-n", sw, "link", "set", bridgeName, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return f, err
		}
	}
	return f, nil
}

// plugHost connects the host namespace ns to the switch sw: a veth pair
// with the end port in sw, enslaved to the bridge, and eth0 with ip in ns.
func plugHost(sw, ns, port, ip string) error {
	for _, args := range [][]string{
		{"-n", sw, "link", "add", port, "type", "veth", "peer", "name", hostIface, "netns", ns},
		{"-n", sw, "link", "set", port, "master", bridgeName},
		{"-n", sw, "link", "set", port, "up"},
		{"-n", ns, "addr", "add", ip + "/24", "dev", hostIface},
		{"-n", ns, "link", "set", hostIface, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// killNetns sends SIGKILL to every process in the network namespace ns
// until none is left, and returns those it found.
func killNetns(ns string) (killed []int, err error) {
	for range 200 {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil {
			return killed, fmt.Errorf("ip netns pids %s: %w", ns, err)
		}
		var left int
		for _, f := range strings.Fields(string(out)) {
			if pid, _ := strconv.Atoi(f); pid > 0 && pid != os.Getpid() {
				unix.Kill(pid, unix.SIGKILL)
				if !slices.Contains(killed, pid) {
					killed = append(killed, pid)
				}
				left++
			}
		}
		if left == 0 {
			return killed, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return killed, fmt.Errorf("processes %v in namespace %s survive SIGKILL", killed, ns)
}

// dropAll makes dev in namespace ns drop every packet it sends, with a
// queue that holds none; restore removes it.
func dropAll(ns, dev string) error {
	return run("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "pfifo", "limit", "0")
}

func restore(ns, dev string) error {
	return run("tc", "-n", ns, "qdisc", "del", "dev", dev, "root")
}

// enterNetns moves the calling thread, which must be locked to its
// goroutine, into the network namespace ns; leave moves it back. Only the
// thread changes: the rest of the test process stays where it was.
func enterNetns(ns *os.File) (leave func() error, err error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return func() error { return nil }, err
	}
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		self.Close()
		return func() error { return nil }, fmt.Errorf("joining network namespace %s: %w", ns.Name(), err)
	}
	return func() error {
		defer self.Close()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("returning to the test's network namespace: %w", err)
		}
		return nil
	}, nil
}

// dialFrom returns a dial function whose sockets live in the network
// namespace ns. A socket belongs to the namespace of the thread that
// created it, for its whole life, whichever thread uses it later; Go
// creates it in the dialing goroutine for a literal IP address.
func dialFrom(ns *os.File) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		done := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			leave, err := enterNetns(ns)
			var conn net.Conn
			if err == nil {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, addr)
			}
			if lerr := leave(); lerr != nil {
				if conn != nil {
					conn.Close()
				}
				done <- result{err: errors.Join(err, lerr)}
				return // still locked: the thread, in the wrong namespace, ends with the goroutine
			}
			runtime.UnlockOSThread()
			done <- result{conn, err}
		}()
		r := <-done
		return r.conn, r.err
	}
}
