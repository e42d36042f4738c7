package gvisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
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

// sentryProcess is one process of control.Process (runsc ps).
type sentryProcess struct {
	PID     int     `json:"pid"`
	PPID    int     `json:"ppid"`
	Threads []int32 `json:"threads"`
	Cmd     string  `json:"cmd"`
}

// sentryCall makes one urpc call on sandbox id's control server.
func sentryCall(ctx context.Context, id, method string, arg, result any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	// The name is bound with its trailing NUL.
	c, err := d.DialContext(ctx, "unix", "@runsc-sandbox."+id+"\x00")
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
func sentryProcesses(ctx context.Context, id string) ([]sentryProcess, error) {
	var ps []sentryProcess
	err := sentryCall(ctx, id, "containerManager.Processes", id, &ps)
	return ps, err
}
