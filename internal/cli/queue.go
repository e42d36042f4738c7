package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// queueCommand is `ignis queue`: Ignis queues, the SQS-style targets of
// async destinations and dead-letter queues.
func newQueueCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Read Ignis queues (async destinations and dead-letter queues named by SQS/SNS ARNs)",
	}
	cmd.AddCommand(newQueueReceiveCommand(e))
	return cmd
}

// queueReceiveCommand is `ignis queue receive NAME`.
type queueReceiveCommand struct {
	e      *env
	client clientFlags
	max    int
	wait   time.Duration
}

func newQueueReceiveCommand(e *env) *cobra.Command {
	c := &queueReceiveCommand{e: e, max: 10}
	cmd := &cobra.Command{
		Use:   "receive NAME",
		Short: "Take messages off queue NAME (arn:aws:sqs:REGION:ACCOUNT:NAME) and print their bodies, one per line",
		Long: `Take up to --max messages off an Ignis queue and print each body on its own line.
Received messages are deleted. With --wait, wait up to that long (at most 20s) for the first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	f := cmd.Flags()
	c.client.register(f)
	f.IntVar(&c.max, "max", c.max, "most messages to take (1-100)")
	f.DurationVar(&c.wait, "wait", 0, "how long to wait for a first message (0-20s)")
	return cmd
}

// Run receives and prints.
func (c *queueReceiveCommand) Run(ctx context.Context, args []string) error {
	if c.max < 1 || c.max > 100 || c.wait < 0 || c.wait > 20*time.Second {
		return &usageError{fmt.Errorf("--max must be 1-100 and --wait 0-20s")}
	}
	cfg, err := c.client.resolve(c.e)
	if err != nil {
		return err
	}
	q := url.Values{}
	q.Set("MaxNumberOfMessages", strconv.Itoa(c.max))
	q.Set("WaitTimeSeconds", strconv.Itoa(int(c.wait/time.Second)))
	b, err := cfg.ignisCall(ctx, http.MethodPost, "/_ignis/queues/"+url.PathEscape(args[0])+"/receive?"+q.Encode())
	if err != nil {
		return err
	}
	var out struct {
		Messages []struct{ Body string }
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	for _, m := range out.Messages {
		fmt.Fprintln(c.e.stdout, m.Body)
	}
	return nil
}
