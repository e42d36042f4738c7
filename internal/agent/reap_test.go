package agent_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/agentproto"
)

// zombieChildren lists the pids of zombie children of ppid.
func zombieChildren(t *testing.T, ppid int) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] != "Z" {
			continue
		}
		if pp, _ := strconv.Atoi(f[1]); pp == ppid {
			pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
			out = append(out, pid)
		}
	}
	return out
}

// TestAgent_ReapsOrphansKeepsRuntimeStatus: an orphan the runtime leaves
// behind is reparented to the agent (PID 1 in a sandbox, child subreaper
// here) and reaped, while the runtime's own exit status still reaches the
// worker intact.
func TestAgent_ReapsOrphansKeepsRuntimeStatus(t *testing.T) {
	t.Parallel()
	f := newFn(t, "provided.al2023", "x")
	f.write(t, "bootstrap", "#!/bin/sh\nsh -c 'sleep 0.2 &'\nsh -c 'sleep 0.3 &'\nexec "+goFuncBin+"\n", 0o755)
	p := f.start(t)
	p.initOK(f.init())
	agentPid := p.cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	time.Sleep(400 * time.Millisecond)
	for {
		z := zombieChildren(t, agentPid)
		if len(z) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %d leaves zombie children %v", agentPid, z)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.send(`{"crash":true}`)
	var ex agentproto.RuntimeExit
	if err := p.next(agentproto.TypeRuntimeExit, 10*time.Second).DecodeJSON(&ex); err != nil {
		t.Fatal(err)
	}
	if ex.Status != "exit status 3" || ex.ExitCode != 3 {
		t.Fatalf("RuntimeExit = %+v", ex)
	}
	p.shutdown()
}
