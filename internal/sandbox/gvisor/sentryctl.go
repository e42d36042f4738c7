package gvisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ignis-run/ignis/internal/sandboxnet"
)

// The Sentry's control server, spoken to directly.
//
// Every runsc command on a running sandbox (ps, kill, events) is a client
// of the Sentry's control server: a urpc server on the abstract Unix socket
// "runsc-sandbox.<id>" in the host's network namespace, one JSON call
// {"method", "arg"} answered by one JSON {"success", "err", "result"}.
// A runsc exec costs ~120 ms and ~50 ms of CPU; the same call on the
// socket costs ~2 ms, which is what lets Stats count the function's
// processes on every invoke.
// Callers fall back to the runsc command when the call fails (another
// runsc build may name or shape things differently).
//
// Newer runsc builds (2023 on) listen on a socket file instead,
// <root>/runsc-<id>.sock: any user can connect to an abstract socket.
// Abstract sockets also belong to a network namespace: a sandbox with a
// network (--network=sandbox) runs in the namespace Ignis made for it, and
// an older build's control server listens there, so the call dials from
// that namespace.

// sentryProcess is one process of control.Process (runsc ps).
type sentryProcess struct {
	PID     int     `json:"pid"`
	PPID    int     `json:"ppid"`
	Threads []int32 `json:"threads"`
	Cmd     string  `json:"cmd"`
}

// sentryCall makes one urpc call on sandbox id's control server: its
// socket file under root, or its abstract socket in the network namespace
// mounted at netns (the host's when empty).
func sentryCall(ctx context.Context, id, root, netns, method string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := dialControl(ctx, id, root, netns)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(struct {
		Method string `json:"method"`
		Arg    any    `json:"arg"`
	}{method, arg}); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var res struct {
		Success bool            `json:"success"`
		Err     string          `json:"err"`
		Result  json.RawMessage `json:"result"`
	}
	if err := json.NewDecoder(c).Decode(&res); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if !res.Success {
		return fmt.Errorf("%s: %w", method, errors.New(res.Err))
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(res.Result, result); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// sentryProcesses lists the processes of container id.
func sentryProcesses(ctx context.Context, id, root, netns string) ([]sentryProcess, error) {
	var ps []sentryProcess
	err := sentryCall(ctx, id, root, netns, "containerManager.Processes", id, &ps)
	return ps, err
}

// dialControl connects to sandbox id's control socket: the file under
// root, else the abstract one from the network namespace mounted at netns
// (the host's when empty). A socket keeps the namespace it was made in, so
// only the dial runs there (sandboxnet.Do).
func dialControl(ctx context.Context, id, root, netns string) (net.Conn, error) {
	if path := filepath.Join(root, "runsc-"+id+".sock"); root != "" {
		if f, err := os.OpenFile(path, unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
			// By descriptor: a socket path must fit in 108 bytes, a
			// state dir under a temp dir may not.
			defer f.Close()
			var d net.Dialer
			return d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(int(f.Fd())))
		}
	}
	// The name is bound with its trailing NUL.
	addr := "@runsc-sandbox." + id + "\x00"
	if netns == "" {
		var d net.Dialer
		return d.DialContext(ctx, "unix", addr)
	}
	var c net.Conn
	err := sandboxnet.Do(netns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "unix", addr)
		return err
	})
	return c, err
}
