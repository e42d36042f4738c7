// Command ignis is the Ignis server and tool: see `ignis --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ignis-run/ignis/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
