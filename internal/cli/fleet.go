package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ignis-run/ignis/internal/api"
)

// fleetCommand is `ignis fleet`: the workers a frontend sees, with their
// state, capacity, sandboxes and load.
type fleetCommand struct {
	e       *env
	client  clientFlags
	jsonOut bool
}

func newFleetCommand(e *env) *cobra.Command {
	c := &fleetCommand{e: e}
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "List the fleet's workers: state, capacity, sandboxes and load",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context()) },
	}
	c.client.register(cmd.Flags())
	cmd.Flags().BoolVar(&c.jsonOut, "json", false, "print the answer as JSON")
	return cmd
}

// Run asks the frontend and prints one line per worker.
func (c *fleetCommand) Run(ctx context.Context) error {
	cfg, err := c.client.resolve(c.e)
	if err != nil {
		return err
	}
	b, err := cfg.ignisCall(ctx, http.MethodGet, "/_ignis/fleet")
	if err != nil {
		return err
	}
	if c.jsonOut {
		_, err := c.e.stdout.Write(append(b, '\n'))
		return err
	}
	var out struct{ Workers []api.FleetWorker }
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	tw := tabwriter.NewWriter(c.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tSTATE\tMEMORY MB (USED/TOTAL)\tCPU\tSANDBOXES\tIN FLIGHT\tHEARTBEAT")
	for _, w := range out.Workers {
		hb := "-"
		if !w.Heartbeat.IsZero() {
			hb = time.Since(w.Heartbeat).Round(100*time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.1f\t%d\t%d\t%s\n", w.ID, w.State, w.AllocatedMB, w.MemoryMB, float64(w.CPUMillis)/1000, w.Sandboxes, w.InFlight, hb)
	}
	return tw.Flush()
}
