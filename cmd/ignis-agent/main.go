// Command ignis-agent is PID 1 inside every Ignis sandbox: it serves the
// Lambda Runtime API to the function's runtime and speaks agentproto with
// the worker on its stdio. Build it static: CGO_ENABLED=0.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ignis-run/ignis/internal/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := agent.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
