package testcluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ignis-run/ignis/internal/testcluster"
)

// TestCluster_CleanupLeavesNothing breaks a cluster every way it can be
// broken, lets its cleanup run, and looks for anything of it left on the
// machine: a namespace, a network device, a cgroup, a process, an open
// namespace file.
func TestCluster_CleanupLeavesNothing(t *testing.T) {
	var (
		id   string
		pids []int
		// The namespaces' inodes: an open file or socket keeps a
		// namespace alive, with its devices, after `ip netns del`.
		inodes []syscall.Stat_t
	)
	sockets := openSockets()
	t.Run("cluster", func(t *testing.T) {
		c := testcluster.New(t, 3, testcluster.Options{Mode: testcluster.Namespaces})
		id = c.ID()
		h1, h2, h3 := c.Host(1), c.Host(2), c.Host(3)
		for _, h := range c.Hosts() {
			h.Start(t)
		}
		for _, ns := range []string{c.ID() + "-sw", h1.Netns(), h2.Netns(), h3.Netns()} {
			fi, err := os.Stat("/run/netns/" + ns)
			if err != nil {
				t.Fatal(err)
			}
			inodes = append(inodes, *fi.Sys().(*syscall.Stat_t))
		}
		// Sandboxes (their cgroups under the host's), a killed host (the
		// leftover cgroups of its sandboxes), partitions (qdiscs), an idle
		// keep-alive connection from the switch namespace that its
		// server's FIN cannot close (h3 is partitioned after answering).
		createFunction(t, h1)
		invoke(t, h1)
		createFunction(t, h2)
		invoke(t, h2)
		for _, h := range c.Hosts() {
			pids = append(pids, h.PIDs(t)...)
		}
		h2.Kill(t)
		h1.Partition(t)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, err := h1.Lambda().ListFunctions(ctx, &lambda.ListFunctionsInput{}); err == nil {
			t.Fatal("partitioned h1 answers")
		}
		if _, err := h3.Lambda().ListFunctions(context.Background(), &lambda.ListFunctionsInput{}); err != nil {
			t.Fatal(err)
		}
		h3.Partition(t)
	})
	if id == "" {
		t.Fatal("no cluster made")
	}
	for _, l := range leftovers(id, pids, inodes) {
		t.Errorf("left behind by cluster %s: %s", id, l)
	}
	if n := openSockets(); n > sockets {
		t.Errorf("%d sockets open after the cluster, %d before: a socket in a cluster namespace keeps it alive", n, sockets)
	}
}

// leftovers finds what cluster id left on the machine, without the
// package's own code: ip, /sys/fs/cgroup, /proc.
func leftovers(id string, pids []int, netns []syscall.Stat_t) []string {
	var found []string
	for _, args := range [][]string{{"netns", "list"}, {"-o", "link", "show"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			found = append(found, fmt.Sprintf("ip %s: %v %s", strings.Join(args, " "), err, out))
		}
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, id) {
				found = append(found, "ip "+strings.Join(args, " ")+": "+strings.TrimSpace(line))
			}
		}
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	if _, err := os.Stat("/sys/fs/cgroup/" + id); err == nil {
		cgs = append(cgs, "/sys/fs/cgroup/"+id)
	}
	for _, cg := range cgs {
		found = append(found, "cgroup "+cg)
	}
	for _, pid := range pids {
		if alive(pid) {
			found = append(found, fmt.Sprintf("process %d", pid))
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "/"+id+"/") {
			found = append(found, "process in its cgroup: "+filepath.Dir(p))
		}
	}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		fi, err := os.Stat(fd) // the file itself: a namespace once unmounted reads as "/"
		if err != nil {
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		for _, ns := range netns {
			if st.Dev == ns.Dev && st.Ino == ns.Ino {
				found = append(found, fmt.Sprintf("open namespace file %s (inode %d)", fd, ns.Ino))
			}
		}
	}
	return found
}

// openSockets counts the test process's open sockets.
func openSockets() int {
	n := 0
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if target, _ := os.Readlink(fd); strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}
