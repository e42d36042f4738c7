package sandboxtest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"
)

// deniedSyscalls are the operations the probe's syscalls action attempts
// (issue 11's list). Inside any sandbox each must fail with EPERM (refused:
// no capability, or a seccomp rule) or ENOSYS (not there at all, as in a
// kernel like gVisor's Sentry that does not implement it). Any other
// outcome, EINVAL or EBUSY included, means the permission check let the
// call through to its arguments.
var deniedSyscalls = []string{
	"mount", "umount2", "unshare_newuser", "clone_newuser", "setns", "ptrace",
	"kexec_load", "init_module", "finit_module", "bpf", "keyctl",
	"perf_event_open", "open_by_handle_at", "reboot", "swapon", "pivot_root",
	"clock_settime",
}

// checkDenied fails t for each of deniedSyscalls that the probe's syscalls
// answer r does not report as EPERM or ENOSYS.
func checkDenied(t *testing.T, r probeResp) {
	t.Helper()
	var got map[string]string
	if err := json.Unmarshal(r.Data, &got); err != nil {
		t.Fatalf("decoding the syscalls answer %s: %v", r.Data, err)
	}
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("%-18s %s", n, got[n])
	}
	for _, n := range deniedSyscalls {
		switch v, ok := got[n]; {
		case !ok:
			t.Errorf("%s: not attempted by the probe", n)
		case v != "EPERM" && v != "ENOSYS":
			t.Errorf("%s: %s, want EPERM or ENOSYS", n, v)
		}
	}
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// hostAddrs returns host:port for every address of the host's interfaces,
// loopback included: where a sandbox might find a host service listening on
// all addresses.
func hostAddrs(t *testing.T, port int) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("listing host addresses: %v", err)
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() {
			continue // link-local needs a zone, and is on a listed interface anyway
		}
		out = append(out, net.JoinHostPort(ipn.IP.String(), fmt.Sprint(port)))
	}
	return out
}

// victim is a host process outside every sandbox that a sandbox tries to
// signal.
type victim struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it exited
}

// startVictim starts a sleeping host process, ended in t.Cleanup.
func startVictim(t *testing.T) *victim {
	t.Helper()
	v := &victim{cmd: exec.Command("sleep", "3600"), done: make(chan struct{})}
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("starting a host process: %v", err)
	}
	go func() {
		v.cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		v.cmd.Process.Kill()
		<-v.done
	})
	return v
}

func (v *victim) pid() int { return v.cmd.Process.Pid }

// checkAlive fails t if the victim has died. A signal is delivered before
// kill returns; the grace period covers the exit and its reaping.
func (v *victim) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case <-v.done:
		t.Errorf("host process %d died: %v", v.pid(), v.cmd.ProcessState)
	case <-time.After(200 * time.Millisecond):
	}
}

// hostPIDs returns the host pids of processes running the executable at
// path (compared by inode, across mount namespaces). Under a driver whose
// processes are not host processes (gVisor) there are none.
func hostPIDs(path string) []int {
	want, ok := statID(path)
	if !ok {
		return nil
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if id, ok := statID(fmt.Sprintf("/proc/%d/exe", pid)); ok && id == want {
			pids = append(pids, pid)
		}
	}
	return pids
}
