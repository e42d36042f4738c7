// Command ignis is the Ignis server and tool: see `ignis --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ignis-run/ignis/internal/cli"
	"github.com/ignis-run/ignis/internal/sandbox/jail"
)

func main() {
	jail.MaybeRunInit() // the jail driver re-executes this binary as each sandbox's setup stage
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
