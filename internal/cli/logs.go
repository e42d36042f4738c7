package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/spf13/cobra"
)

const (
	// logTimeFormat is RFC 3339 with milliseconds, CloudWatch's precision.
	logTimeFormat = "2006-01-02T15:04:05.000Z07:00"
	// followInterval is how often --follow polls.
	followInterval = time.Second
	// followOverlap is how far before the newest timestamp seen each poll
	// reads again (de-duplicating by event ID): events are stamped when
	// the worker appends them but become readable when stored, so a batch
	// appended just before another can land just after it.
	followOverlap = 2 * time.Second
)

// logsCommand is `ignis logs NAME`: print a function's log events from
// its group /aws/lambda/NAME through the CloudWatch Logs API.
type logsCommand struct {
	e      *env
	client clientFlags
	follow bool
	since  time.Duration
	filter string
	// interval is how often --follow polls (followInterval; tests shorten
	// it).
	interval time.Duration
}

func newLogsCommand(e *env) *cobra.Command {
	c := &logsCommand{e: e, since: 10 * time.Minute, interval: followInterval}
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a function's logs (group /aws/lambda/NAME)",
		Long: `Print a function's log events as "<timestamp> <message>" lines, oldest first.

--follow keeps printing new events until interrupted, as "aws logs tail --follow" does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	f := cmd.Flags()
	c.client.register(f)
	f.BoolVarP(&c.follow, "follow", "f", false, "keep printing new events until interrupted")
	f.DurationVar(&c.since, "since", c.since, "print events newer than this (0: all)")
	f.StringVar(&c.filter, "filter", "", "CloudWatch Logs filter pattern, e.g. ERROR or \"?ERROR ?WARN\"")
	return cmd
}

// Run prints the events of args[0]'s log group; with --follow it polls
// until ctx is cancelled, which ends it without error.
func (c *logsCommand) Run(ctx context.Context, args []string) error {
	if c.since < 0 {
		return &usageError{fmt.Errorf("--since %v is negative", c.since)}
	}
	client, err := c.client.logsClient(c.e)
	if err != nil {
		return err
	}
	t := &logTail{client: client, group: "/aws/lambda/" + args[0], filter: c.filter, seen: map[string]int64{}}
	if c.since > 0 {
		t.start = time.Now().Add(-c.since).UnixMilli()
	}
	err = t.poll(ctx, c.e, c.follow)
	if !c.follow {
		return err
	}
	timer := time.NewTimer(c.interval)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return nil // interrupted: the normal way out of --follow
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			timer.Reset(c.interval)
		}
		err = t.poll(ctx, c.e, true)
	}
}

// logTail reads a group's events in timestamp order, remembering where it
// is so repeated polls print each event once.
type logTail struct {
	client        *cloudwatchlogs.Client
	group, filter string
	// start is the startTime of the next poll in Unix ms (0: none).
	start int64
	// newest is the largest timestamp printed.
	newest int64
	// seen maps the IDs of printed events within followOverlap of newest
	// to their timestamps.
	seen map[string]int64
}

// poll prints the events from t.start on, paging through nextToken. With
// follow, a missing group is not an error: the function may not have run
// yet.
func (t *logTail) poll(ctx context.Context, e *env, follow bool) error {
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(t.group)}
	if t.start > 0 {
		in.StartTime = aws.Int64(t.start)
	}
	if t.filter != "" {
		in.FilterPattern = aws.String(t.filter)
	}
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(t.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if follow && isAPIError(err, "ResourceNotFoundException") {
				return nil
			}
			return fmt.Errorf("reading %s: %w", t.group, &apiError{err})
		}
		for _, ev := range page.Events {
			id, ts := aws.ToString(ev.EventId), aws.ToInt64(ev.Timestamp)
			if _, dup := t.seen[id]; dup && id != "" {
				continue
			}
			t.seen[id] = ts
			t.newest = max(t.newest, ts)
			msg := strings.TrimRight(aws.ToString(ev.Message), "\n")
			fmt.Fprintf(e.stdout, "%s %s\n", time.UnixMilli(ts).UTC().Format(logTimeFormat), msg)
		}
	}
	if t.newest > 0 {
		t.start = max(t.start, t.newest-followOverlap.Milliseconds())
	}
	for id, ts := range t.seen {
		if ts < t.start {
			delete(t.seen, id)
		}
	}
	return nil
}
