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
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/aws/aws-lambda-go/lambda"
	"golang.org/x/sys/unix"
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
		// An address starting with @ is an abstract unix socket.
		network := "tcp"
		if strings.HasPrefix(req.Addr, "@") {
			network = "unix"
		}
		c, err := net.DialTimeout(network, req.Addr, time.Second)
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
	case "signal":
		// N is the pid; Data the signal number (SIGKILL when absent).
		sig := int(unix.SIGKILL)
		json.Unmarshal(req.Data, &sig)
		return signal(req.N, sig), nil
	case "listen":
		return listen(req.Addr), nil
	case "addrs":
		return interfaces(), nil
	case "resolve":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, req.Addr)
		if err != nil {
			return fail(err, 0), nil
		}
		return response{OK: true, Data: addrs}, nil
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

// syscalls attempts, with harmless arguments, each privileged operation of
// the suite's list and returns the errno name each one got ("allowed" when
// it succeeded). Arguments are chosen so that the permission check is what
// decides: where the kernel checks arguments first, they are valid, and
// where success would harm the sandbox, they name something absent.
func syscalls() response {
	res := map[string]string{}
	try := func(name string, nr uintptr, args ...uintptr) {
		var a [6]uintptr
		copy(a[:], args)
		r, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		res[name] = errnoName(e)
		if e == 0 && (name == "bpf" || name == "perf_event_open" || name == "open_by_handle_at") {
			unix.Close(int(r))
		}
	}
	// Arguments passed by address live on the heap (Go never moves it)
	// and stay reachable until the end.
	var keep []any
	defer runtime.KeepAlive(&keep)
	ptr := func(p any) uintptr {
		keep = append(keep, p)
		return reflect.ValueOf(p).Pointer()
	}
	str := func(s string) uintptr { return ptr(&append([]byte(s), 0)[0]) }

	if err := os.MkdirAll("/tmp/probe-mnt", 0o755); err == nil {
		try("mount", unix.SYS_MOUNT, str("none"), str("/tmp/probe-mnt"), str("tmpfs"), 0, str(""))
		if res["mount"] == "allowed" {
			unix.Unmount("/tmp/probe-mnt", unix.MNT_DETACH)
		}
		os.Remove("/tmp/probe-mnt")
	} else {
		res["mount"] = err.Error()
	}
	// /var/task holds the running bootstrap: allowed, this is EBUSY.
	try("umount2", unix.SYS_UMOUNT2, str("/var/task"), 0)
	// unshare(CLONE_NEWUSER) needs a single-threaded caller: Go runs it in
	// the forked child before exec.
	res["unshare_newuser"] = startChild(&syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWUSER})
	res["clone_newuser"] = startChild(&syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER})
	if fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		// Our own namespace: harmless if it works.
		try("setns", unix.SYS_SETNS, uintptr(fd), unix.CLONE_NEWNET)
		unix.Close(fd)
	} else {
		res["setns"] = errnoName(err.(unix.Errno))
	}
	// PID 1 is the agent, our parent: not a child of ours.
	try("ptrace", unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1)
	if res["ptrace"] == "allowed" {
		unix.PtraceDetach(1)
	}
	try("kexec_load", unix.SYS_KEXEC_LOAD, 0, 0, 0, 0)
	try("init_module", unix.SYS_INIT_MODULE, 0, 0, str(""))
	try("finit_module", unix.SYS_FINIT_MODULE, ^uintptr(0), str(""), 0)
	// BPF_MAP_CREATE of a one-entry array: what unprivileged bpf allows.
	attr := &[5]uint32{2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1, 0}
	try("bpf", unix.SYS_BPF, 0 /* BPF_MAP_CREATE */, ptr(attr), unsafe.Sizeof(*attr))
	// KEYCTL_GET_KEYRING_ID of the session keyring, creating it.
	try("keyctl", unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffd) /* KEY_SPEC_SESSION_KEYRING */, 1)
	// A software clock counting this process, user space only: what
	// perf_event_paranoid 2 still allows.
	pattr := &unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{})), Bits: unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv}
	try("perf_event_open", unix.SYS_PERF_EVENT_OPEN, ptr(pattr), 0, ^uintptr(0), ^uintptr(0), unix.PERF_FLAG_FD_CLOEXEC)
	// A made-up handle: only CAP_DAC_READ_SEARCH gets as far as decoding it.
	handle := &[16]byte{8, 0, 0, 0, 1, 0, 0, 0}
	fdcwd := unix.AT_FDCWD
	try("open_by_handle_at", unix.SYS_OPEN_BY_HANDLE_AT, uintptr(fdcwd), ptr(handle), unix.O_RDONLY)
	// Valid magic, unknown command: EINVAL if the caller may reboot.
	try("reboot", unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2, 0x1badc0de)
	try("swapon", unix.SYS_SWAPON, str("/nonexistent-swap"), 0)
	try("pivot_root", unix.SYS_PIVOT_ROOT, str("/nonexistent-root"), str("/nonexistent-root/old"))
	// The current time: a no-op if allowed (an invalid one is refused
	// before the permission check).
	now := new(unix.Timespec)
	unix.ClockGettime(unix.CLOCK_REALTIME, now)
	try("clock_settime", unix.SYS_CLOCK_SETTIME, unix.CLOCK_REALTIME, ptr(now))
	return response{OK: true, Data: res}
}

// startChild starts and kills a child with attr and reports the outcome of
// the namespace operation it asks for.
func startChild(attr *syscall.SysProcAttr) string {
	cmd := exec.Command("/proc/self/exe", "child-sleep")
	cmd.SysProcAttr = attr
	err := cmd.Start()
	if err != nil {
		var e syscall.Errno
		if errors.As(err, &e) {
			return errnoName(unix.Errno(e))
		}
		return err.Error()
	}
	cmd.Process.Kill()
	cmd.Wait()
	return "allowed"
}

// signal sends sig to pid and reports the errno name ("allowed" when it was
// delivered).
func signal(pid, sig int) response {
	err := unix.Kill(pid, unix.Signal(sig))
	if err != nil {
		return response{Err: errnoName(err.(unix.Errno))}
	}
	return response{OK: true}
}

func errnoName(e unix.Errno) string {
	if e == 0 {
		return "allowed"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return e.Error()
}

// listen opens a listener on addr (tcp, or an abstract unix socket when it
// starts with @) that accepts and closes connections for the rest of the
// probe's life, and returns its address.
// interfaces lists the sandbox's interfaces with their IPv4 addresses, and
// how many routes it has beyond loopback (/proc/net/route's lines).
func interfaces() response {
	ifs, err := net.Interfaces()
	if err != nil {
		return fail(err, 0)
	}
	out := map[string][]string{}
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		out[i.Name] = []string{}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				out[i.Name] = append(out[i.Name], ipn.IP.String())
			}
		}
	}
	routes, _ := os.ReadFile("/proc/net/route")
	n := strings.Count(string(routes), "\n") - 1 // header
	return response{OK: true, N: int64(max(n, 0)), Data: out}
}

func listen(addr string) response {
	network := "tcp"
	if strings.HasPrefix(addr, "@") {
		network = "unix"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return fail(err, 0)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return response{OK: true, Data: ln.Addr().String()}
}
