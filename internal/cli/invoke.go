package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

// defaultPayload is the event sent when none is given.
const defaultPayload = "{}"

// invokeCommand is `ignis invoke NAME [PAYLOAD|-]`: call a function through
// the Lambda Invoke API and print its response.
type invokeCommand struct {
	e         *env
	client    clientFlags
	qualifier string
	tail      bool
	async     bool
	dryRun    bool
	stdin     io.Reader
}

func newInvokeCommand(e *env) *cobra.Command {
	c := &invokeCommand{e: e}
	cmd := &cobra.Command{
		Use:   "invoke NAME [PAYLOAD|-]",
		Short: "Invoke a function and print its response",
		Long: `Invoke a function and print its response payload on stdout.

PAYLOAD is the JSON event (default {}); "-" reads it from stdin. A function
error prints the error JSON on stdout and exits 1.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.stdin = cmd.InOrStdin()
			return c.Run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	c.client.register(f)
	f.StringVar(&c.qualifier, "qualifier", "", "version or alias to invoke (default $LATEST)")
	f.BoolVar(&c.tail, "tail", false, "print the last 4 KB of the invoke's log on stderr")
	f.BoolVar(&c.async, "async", false, "queue the event (InvocationType Event) instead of waiting for the result")
	f.BoolVar(&c.dryRun, "dry-run", false, "only check that the function could be invoked (InvocationType DryRun)")
	return cmd
}

// Run invokes args[0] with the payload from args[1], stdin or the default.
func (c *invokeCommand) Run(ctx context.Context, args []string) error {
	if c.async && c.dryRun {
		return &usageError{errors.New("--async and --dry-run are mutually exclusive")}
	}
	name := args[0]
	payload := []byte(defaultPayload)
	if len(args) == 2 {
		payload = []byte(args[1])
		if args[1] == "-" {
			b, err := io.ReadAll(c.stdin)
			if err != nil {
				return fmt.Errorf("reading payload from stdin: %w", err)
			}
			payload = b
		}
	}
	client, err := c.client.lambdaClient(c.e)
	if err != nil {
		return err
	}
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload}
	if c.qualifier != "" {
		in.Qualifier = aws.String(c.qualifier)
	}
	switch {
	case c.async:
		in.InvocationType = types.InvocationTypeEvent
	case c.dryRun:
		in.InvocationType = types.InvocationTypeDryRun
	}
	if c.tail {
		in.LogType = types.LogTypeTail
	}
	out, err := client.Invoke(ctx, in)
	if err != nil {
		return fmt.Errorf("invoking %s: %w", name, &apiError{err})
	}
	if c.tail && out.LogResult != nil {
		tail, err := base64.StdEncoding.DecodeString(*out.LogResult)
		if err != nil {
			return fmt.Errorf("decoding log tail: %w", err)
		}
		c.e.stderr.Write(tail)
	}
	if len(out.Payload) > 0 {
		fmt.Fprintf(c.e.stdout, "%s\n", out.Payload)
	}
	switch {
	case out.FunctionError != nil:
		return fmt.Errorf("function %s failed (%s)", name, *out.FunctionError)
	case c.async:
		fmt.Fprintf(c.e.stderr, "queued (status %d)\n", out.StatusCode)
	case c.dryRun:
		fmt.Fprintf(c.e.stderr, "dry run passed (status %d)\n", out.StatusCode)
	}
	return nil
}
