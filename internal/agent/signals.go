package agent

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// signalName returns the name of the signal that ended a process
// ("SIGKILL"), or "" when it was not killed by a signal.
func signalName(ws syscall.WaitStatus) string {
	if !ws.Signaled() {
		return ""
	}
	if n := unix.SignalName(ws.Signal()); n != "" {
		return n
	}
	return ws.Signal().String()
}
