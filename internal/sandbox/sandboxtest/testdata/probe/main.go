// Command probe is the conformance suite's function: a provided-runtime
// bootstrap built with aws-lambda-go whose event selects an action, so the
// suite can observe limits and isolation from inside a sandbox.
//
// Run as "probe child-sleep" it only sleeps: that is the process the spawn and
// fork-bomb actions start.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// request is the event. Fields are read depending on Action.
type request struct {
	Action string          `json:"action"`
	N      int             `json:"n,omitempty"`
	Path   string          `json:"path,omitempty"`
	Addr   string          `json:"addr,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// response is what every action returns; Err carries the failure an escape
// probe expects to see.
type response struct {
	OK   bool   `json:"ok"`
	Err  string `json:"err,omitempty"`
	N    int64  `json:"n,omitempty"`
	Data any    `json:"data,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child-sleep" {
		time.Sleep(time.Hour)
		return
	}
	lambda.Start(handle)
}

func fail(err error, n int64) response { return response{Err: err.Error(), N: n} }

func handle(ctx context.Context, req request) (response, error) {
	switch req.Action {
	case "echo":
		return response{OK: true, Data: req.Data}, nil
	case "sleep":
		// Deliberately deaf to ctx's deadline: a stuck function is what the
		// timeout test needs.
		time.Sleep(time.Duration(req.N) * time.Millisecond)
		return response{OK: true}, nil
	case "alloc":
		b := make([]byte, req.N<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		runtime.KeepAlive(b)
		return response{OK: true, N: int64(len(b))}, nil
	case "grow":
		// N MB one MB at a time, each touched before the next is asked
		// for: a function that creeps towards its limit.
		var held [][]byte
		for i := 0; i < req.N; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			held = append(held, b)
		}
		runtime.KeepAlive(held)
		return response{OK: true, N: int64(len(held)) << 20}, nil
	case "exit":
		os.Exit(req.N)
	case "panic":
		panic("probe: panic requested")
	case "error":
		return response{}, errors.New("probe: error requested")
	case "read":
		b, err := os.ReadFile(req.Path)
		if err != nil {
			return fail(err, 0), nil
		}
		resp := response{OK: true, N: int64(len(b))}
		if len(b) <= 4096 {
			resp.Data = string(b)
		}
		return resp, nil
	case "connect":
		c, err := net.DialTimeout("tcp", req.Addr, time.Second)
		if err != nil {
			return fail(err, 0), nil
		}
		c.Close()
		return response{OK: true}, nil
	case "forkbomb":
		return forkBomb(req.N), nil
	case "writetmp":
		return writeFile("/tmp/probe-fill", req.N), nil
	case "touch":
		if err := os.WriteFile(req.Path, req.Data, 0o644); err != nil {
			return fail(err, 0), nil
		}
		return response{OK: true}, nil
	case "writetask":
		err := os.WriteFile("/var/task/probe-write", []byte("x"), 0o644)
		if err != nil {
			return fail(err, 0), nil
		}
		return response{OK: true}, nil
	case "procs":
		return procs()
	case "whoami":
		return whoami()
	case "spawn":
		cmd := exec.Command("/proc/self/exe", "child-sleep")
		if err := cmd.Start(); err != nil {
			return fail(err, 0), nil
		}
		return response{OK: true, N: int64(cmd.Process.Pid)}, nil
	case "syscalls":
		return syscalls(), nil
	}
	return response{}, fmt.Errorf("probe: unknown action %q", req.Action)
}

// forkBomb starts up to n sleeping children, stops at the first failure,
// then kills and reaps them all so the sandbox stays usable.
func forkBomb(n int) response {
	var cmds []*exec.Cmd
	var err error
	for len(cmds) < n {
		cmd := exec.Command("/proc/self/exe", "child-sleep")
		if err = cmd.Start(); err != nil {
			break
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		c.Process.Kill()
	}
	for _, c := range cmds {
		c.Wait()
	}
	if err != nil {
		return fail(err, int64(len(cmds)))
	}
	return response{OK: true, N: int64(len(cmds))}
}

func writeFile(path string, mb int) response {
	f, err := os.Create(path)
	if err != nil {
		return fail(err, 0)
	}
	defer os.Remove(path)
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var written int64
	for i := 0; i < mb; i++ {
		n, err := f.Write(chunk)
		written += int64(n)
		if err != nil {
			return fail(err, written)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err, written)
	}
	return response{OK: true, N: written}
}

type proc struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

func procs() (response, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return fail(err, 0), nil
	}
	var ps []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		ps = append(ps, proc{PID: pid, Comm: strings.TrimSpace(string(comm))})
	}
	return response{OK: true, N: int64(len(ps)), Data: ps}, nil
}

func whoami() (response, error) {
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	status, _ := os.ReadFile("/proc/self/status")
	var capEff string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			capEff = strings.TrimSpace(strings.TrimPrefix(l, "CapEff:"))
		}
	}
	return response{OK: true, Data: map[string]any{
		"uid": os.Getuid(), "gid": os.Getgid(), "euid": os.Geteuid(),
		"hostname": host, "cwd": wd, "env": os.Environ(), "capEff": capEff,
		"pid": os.Getpid(),
	}}, nil
}

// syscalls tries operations a function never needs; the suite logs the
// outcome (what is denied differs between kernels and drivers).
func syscalls() response {
	res := map[string]string{}
	errStr := func(err error) string {
		if err == nil {
			return "allowed"
		}
		return err.Error()
	}
	res["mount"] = errStr(syscall.Mount("none", "/tmp", "tmpfs", 0, ""))
	cmd := exec.Command("/proc/self/exe", "child-sleep")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS}
	err := cmd.Start()
	if err == nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
	res["clone_newuser"] = errStr(err)
	_, _, e := syscall.Syscall(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, 1, 0)
	res["ptrace"] = errStr(errnoErr(e))
	_, _, e = syscall.Syscall(321 /* bpf */, 0, 0, 0)
	res["bpf"] = errStr(errnoErr(e))
	_, _, e = syscall.Syscall(syscall.SYS_KEYCTL, 0, 0, 0)
	res["keyctl"] = errStr(errnoErr(e))
	return response{OK: true, Data: res}
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}
