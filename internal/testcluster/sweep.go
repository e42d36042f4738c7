package testcluster

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sweep removes what clusters of test processes that died before their
// cleanup ran left behind: cgroups (with their processes) and network
// namespaces named namePrefix<pid>-…, whose pid no longer runs. A pid
// reused since keeps its leftovers until that process ends too.
func sweep(t testing.TB, cg *cgroups) {
	t.Helper()
	if cg != nil {
		for _, name := range cg.named(namePrefix) {
			if ownerAlive(name) {
				continue
			}
			if err := cg.remove(name); err != nil {
				t.Logf("testcluster: removing leftover cgroup %s: %v", name, err)
			} else {
				t.Logf("testcluster: removed leftover cgroup %s", name)
			}
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return // no ip, no namespaces
	}
	// A loop, not range over strings.Lines: t.Helper does not reach into
	// the closure a range-over-func body is.
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], namePrefix) || ownerAlive(f[0]) {
			continue
		}
		if _, err := killNetns(f[0]); err != nil {
			t.Logf("testcluster: killing the processes of leftover namespace %s: %v", f[0], err)
		}
		if err := run("ip", "netns", "del", f[0]); err != nil {
			t.Logf("testcluster: removing leftover namespace %s: %v", f[0], err)
		} else {
			t.Logf("testcluster: removed leftover namespace %s", f[0])
		}
	}
}

// ownerAlive reports whether the process named in a cluster resource's
// name (namePrefix<pid>-…) still runs; true when the name is not ours to
// judge.
func ownerAlive(name string) bool {
	pidStr, _, _ := strings.Cut(strings.TrimPrefix(name, namePrefix), "-")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return true
	}
	err = unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// named lists the top-level cgroups, in any hierarchy, whose name starts
// with prefix.
func (cg *cgroups) named(prefix string) []string {
	var names []string
	for _, mp := range cg.all {
		entries, _ := os.ReadDir(mp)
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) && !slices.Contains(names, e.Name()) {
				names = append(names, e.Name())
			}
		}
	}
	return names
}
