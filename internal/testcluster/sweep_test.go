package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestSweep_RemovesWhatDeadTestsLeft makes what a test process killed
// before its cleanup leaves (a namespace and a cgroup with a process in
// both) under a dead pid and under a live one, and sweeps: the dead
// owner's are gone, the live owner's untouched.
func TestSweep_RemovesWhatDeadTestsLeft(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	cg, err := loadCgroups()
	if err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("%s%d-sweep", namePrefix, gone.ProcessState.Pid())
	live := fmt.Sprintf("%s%d-sweep", namePrefix, os.Getpid())
	procs := map[string]*exec.Cmd{}
	for _, name := range []string{dead, live} {
		t.Cleanup(func() {
			cg.remove(name)
			killNetns(name + "-h1")
			run("ip", "netns", "del", name+"-h1")
		})
		if err := cg.create(name+"/h1", 500); err != nil {
			t.Fatal(err)
		}
		ns, err := addNetns(name + "-h1")
		if err != nil {
			t.Fatal(err)
		}
		ns.Close()
		// `ip netns exec` execs its command in place: the pid is sleep's.
		cmd := exec.Command("ip", "netns", "exec", name+"-h1", "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for _, d := range cg.dirs {
			if err := os.WriteFile(filepath.Join(d, name, "h1", "server", "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
				t.Fatal(err)
			}
		}
		procs[name] = cmd
	}

	sweep(t, cg)

	exited := make(chan error, 1)
	go func() { exited <- procs[dead].Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("the dead owner's process survived the sweep")
	}
	for name, want := range map[string]bool{dead: false, live: true} {
		if got := len(cg.named(name)) > 0; got != want {
			t.Errorf("cgroup %s exists = %v, want %v", name, got, want)
		}
		_, err := os.Stat("/run/netns/" + name + "-h1")
		if got := err == nil; got != want {
			t.Errorf("namespace %s-h1 exists = %v, want %v", name, got, want)
		}
	}
	if pids, _ := cg.procs(live); len(pids) != 1 {
		t.Errorf("the live owner's cgroup holds %v, want its one process", pids)
	}
}
