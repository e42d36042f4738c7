package jail

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// limitCPU sets the CFS quota for the cgroup's period, on a cgroup made by
// create and on one loaded by path (as a renamed stage's is).
func TestCgroup_LimitCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	mode, err := hostCgroupMode()
	if err != nil {
		t.Skip(err)
	}
	h, err := newHostCgroups(mode)
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("ignis-jailtest-cpu-%d", os.Getpid())
	cg, err := h.create(path, limits{memoryBytes: 64 << 20, pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := removeCgroup(ctx, cg); err != nil {
			t.Error(err)
		}
	})
	quota := func() string {
		t.Helper()
		var f string
		switch mode {
		case cgroupV1:
			f = filepath.Join(h.v1Dir(cgroup1.Cpu, path), "cpu.cfs_quota_us")
		default:
			f = filepath.Join("/sys/fs/cgroup", path, "cpu.max")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	want := func(millis int) string {
		q, p := cpuMax(millis)
		if mode == cgroupV1 {
			return fmt.Sprint(q)
		}
		return fmt.Sprintf("%d %d", q, p)
	}
	if err := cg.limitCPU(250); err != nil {
		t.Fatal(err)
	}
	if got := quota(); got != want(250) {
		t.Errorf("after limitCPU(250): quota %q, want %q", got, want(250))
	}
	if mode == cgroupV1 {
		// limitCPU writes only the quota: the period must be cpuPeriod.
		b, err := os.ReadFile(filepath.Join(h.v1Dir(cgroup1.Cpu, path), "cpu.cfs_period_us"))
		if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(cpuPeriod) {
			t.Errorf("cpu.cfs_period_us = %q, %v; want %d", b, err, cpuPeriod)
		}
	}
	loaded, err := h.load(mode, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.limitCPU(1500); err != nil {
		t.Fatal(err)
	}
	if got := quota(); got != want(1500) {
		t.Errorf("after limitCPU(1500) on the loaded cgroup: quota %q, want %q", got, want(1500))
	}
}

// New removes the empty cgroups a dead worker left under its parent (a
// sandbox it never recorded) and keeps one that still holds a process.
func TestNew_RemovesEmptySandboxCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	mode, err := hostCgroupMode()
	if err != nil || mode != cgroupV1 {
		t.Skip("cgroup v1 only")
	}
	h, err := newHostCgroups(mode)
	if err != nil {
		t.Fatal(err)
	}
	parent := fmt.Sprintf("ignis-jailtest-sweep-%d", os.Getpid())
	dead, err := h.create(parent+"/sb-dead", limits{pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	live, err := h.create(parent+"/sb-live", limits{pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleeper.Process.Kill()
		sleeper.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, cg := range []cgroup{live, dead} {
			if err := removeCgroup(ctx, cg); err != nil {
				t.Error(err)
			}
		}
		h.removeParentIfEmpty(parent)
	})
	if err := live.add(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{StateDir: t.TempDir(), CgroupParent: parent, Prestart: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, want := range map[string]bool{"sb-dead": false, "sb-live": true} {
		_, err := os.Stat(filepath.Join(h.v1Dir(cgroup1.Pids, parent), name))
		if exists := err == nil; exists != want {
			t.Errorf("%s exists = %v after New, want %v", name, exists, want)
		}
	}
}
