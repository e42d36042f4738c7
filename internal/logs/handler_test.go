package logs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/logs"
)

func messages(evs []types.OutputLogEvent) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, aws.ToString(e.Message))
	}
	return out
}

func filtered(evs []types.FilteredLogEvent) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, aws.ToString(e.LogStreamName)+"|"+aws.ToString(e.Message))
	}
	return out
}

func TestHandler_GroupsAndStreams(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	c := client(serve(t, st).URL)
	ctx := context.Background()
	now := time.Now()

	for i := range 5 {
		appendLines(t, st, logs.GroupName(fmt.Sprintf("fn%d", i)), "s", now, "x")
	}
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("/custom/g")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("/custom/g")})
	var exists *types.ResourceAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("second CreateLogGroup: %v, want ResourceAlreadyExistsException", err)
	}
	flush(t, st)

	// Paginate with limit 2 over the /aws/lambda/ prefix.
	var names []string
	p := cwl.NewDescribeLogGroupsPaginator(c, &cwl.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/"), Limit: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, g := range out.LogGroups {
			names = append(names, aws.ToString(g.LogGroupName))
			if aws.ToInt64(g.CreationTime) == 0 || aws.ToInt64(g.StoredBytes) == 0 || aws.ToInt32(g.RetentionInDays) != 7 {
				t.Errorf("group %+v: want creation time, stored bytes, 7 days retention", g)
			}
		}
	}
	want := []string{"/aws/lambda/fn0", "/aws/lambda/fn1", "/aws/lambda/fn2", "/aws/lambda/fn3", "/aws/lambda/fn4"}
	if diff := cmp.Diff(want, names); diff != "" || pages != 3 {
		t.Errorf("DescribeLogGroups pages=%d (-want +got):\n%s", pages, diff)
	}
	all, err := c.DescribeLogGroups(ctx, &cwl.DescribeLogGroupsInput{})
	if err != nil || len(all.LogGroups) != 6 {
		t.Fatalf("DescribeLogGroups all: %d groups, %v", len(all.LogGroups), err)
	}

	// Streams: three with distinct last-event times, one created empty.
	g := logs.GroupName("streams")
	for i, s := range []string{"2024/01/01/[$LATEST]bb", "2024/01/01/[$LATEST]aa", "2024/01/02/[1]cc"} {
		appendLines(t, st, g, s, now.Add(time.Duration(i)*time.Second), "line")
	}
	flush(t, st)
	if _, err := c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String(g), LogStreamName: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   cwl.DescribeLogStreamsInput
		want []string
	}{
		{name: "by name", in: cwl.DescribeLogStreamsInput{}, want: []string{"2024/01/01/[$LATEST]aa", "2024/01/01/[$LATEST]bb", "2024/01/02/[1]cc", "empty"}},
		{name: "prefix", in: cwl.DescribeLogStreamsInput{LogStreamNamePrefix: aws.String("2024/01/01/")}, want: []string{"2024/01/01/[$LATEST]aa", "2024/01/01/[$LATEST]bb"}},
		{name: "descending", in: cwl.DescribeLogStreamsInput{Descending: aws.Bool(true)}, want: []string{"empty", "2024/01/02/[1]cc", "2024/01/01/[$LATEST]bb", "2024/01/01/[$LATEST]aa"}},
		{name: "last event time", in: cwl.DescribeLogStreamsInput{OrderBy: types.OrderByLastEventTime, Descending: aws.Bool(true)}, want: []string{"2024/01/02/[1]cc", "2024/01/01/[$LATEST]aa", "2024/01/01/[$LATEST]bb", "empty"}},
		{name: "paged", in: cwl.DescribeLogStreamsInput{Limit: aws.Int32(1)}, want: []string{"2024/01/01/[$LATEST]aa", "2024/01/01/[$LATEST]bb", "2024/01/02/[1]cc", "empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.LogGroupName = aws.String(g)
			var got []string
			p := cwl.NewDescribeLogStreamsPaginator(c, &in)
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range out.LogStreams {
					got = append(got, aws.ToString(s.LogStreamName))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	out, err := c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String(g), LogStreamNamePrefix: aws.String("2024/01/02")})
	if err != nil {
		t.Fatal(err)
	}
	s := out.LogStreams[0]
	if aws.ToInt64(s.LastEventTimestamp) != now.Add(2*time.Second).UnixMilli() || aws.ToInt64(s.FirstEventTimestamp) != now.Add(2*time.Second).UnixMilli() || s.LastIngestionTime == nil {
		t.Errorf("stream times: first %v last %v ingestion %v", aws.ToInt64(s.FirstEventTimestamp), aws.ToInt64(s.LastEventTimestamp), s.LastIngestionTime)
	}

	_, err = c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String("/nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("DescribeLogStreams on missing group: %v, want ResourceNotFoundException", err)
	}
	_, err = c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String(g), OrderBy: types.OrderByLastEventTime, LogStreamNamePrefix: aws.String("x")})
	var inv *types.InvalidParameterException
	if !errors.As(err, &inv) {
		t.Fatalf("orderBy LastEventTime with prefix: %v, want InvalidParameterException", err)
	}

	if _, err := c.DeleteLogGroup(ctx, &cwl.DeleteLogGroupInput{LogGroupName: aws.String(g)}); err != nil {
		t.Fatal(err)
	}
	if _, err = c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String(g)}); !errors.As(err, &nf) {
		t.Fatalf("DescribeLogStreams after DeleteLogGroup: %v", err)
	}
}

func TestHandler_GetLogEvents(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	c := client(serve(t, st).URL)
	ctx := context.Background()
	g, s := logs.GroupName("get"), logs.StreamName(time.Now(), "$LATEST", "0123456789abcdef0123456789abcdef")
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	// Ten events in three appends (batches), one second apart.
	var want []string
	for b, n := range []int{3, 5, 2} {
		var ev []logs.Event
		for range n {
			i := len(want)
			m := fmt.Sprintf("line %d of batch %d", i, b)
			want = append(want, m)
			ev = append(ev, logs.Event{Timestamp: base.Add(time.Duration(i) * time.Second), Message: m})
		}
		if err := st.Append(ctx, g, s, ev); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, st)

	get := func(in cwl.GetLogEventsInput) *cwl.GetLogEventsOutput {
		t.Helper()
		in.LogGroupName, in.LogStreamName = aws.String(g), aws.String(s)
		out, err := c.GetLogEvents(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Forward from head in pages of 4, following nextForwardToken until it repeats.
	var got []string
	in := cwl.GetLogEventsInput{StartFromHead: aws.Bool(true), Limit: aws.Int32(4)}
	for range 10 {
		out := get(in)
		got = append(got, messages(out.Events)...)
		if in.NextToken != nil && aws.ToString(out.NextForwardToken) == aws.ToString(in.NextToken) {
			break
		}
		in.NextToken = out.NextForwardToken
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("forward pages (-want +got):\n%s", diff)
	}

	// Default (from tail): the newest 4, then backward pages.
	out := get(cwl.GetLogEventsInput{Limit: aws.Int32(4)})
	if diff := cmp.Diff(want[6:], messages(out.Events)); diff != "" {
		t.Errorf("tail page (-want +got):\n%s", diff)
	}
	back := get(cwl.GetLogEventsInput{Limit: aws.Int32(4), NextToken: out.NextBackwardToken})
	if diff := cmp.Diff(want[2:6], messages(back.Events)); diff != "" {
		t.Errorf("backward page (-want +got):\n%s", diff)
	}
	back = get(cwl.GetLogEventsInput{Limit: aws.Int32(4), NextToken: back.NextBackwardToken})
	back = get(cwl.GetLogEventsInput{Limit: aws.Int32(4), NextToken: back.NextBackwardToken})
	if len(back.Events) != 0 {
		t.Errorf("before the first event: %v", messages(back.Events))
	}
	// Nothing new after the newest event: the forward token repeats.
	fwd := get(cwl.GetLogEventsInput{NextToken: out.NextForwardToken})
	if len(fwd.Events) != 0 || aws.ToString(fwd.NextForwardToken) != aws.ToString(out.NextForwardToken) {
		t.Errorf("past the end: %v token %q", messages(fwd.Events), aws.ToString(fwd.NextForwardToken))
	}

	// Time range: [start, end) on event timestamps.
	tr := get(cwl.GetLogEventsInput{StartFromHead: aws.Bool(true),
		StartTime: aws.Int64(base.Add(2 * time.Second).UnixMilli()), EndTime: aws.Int64(base.Add(5 * time.Second).UnixMilli())})
	if diff := cmp.Diff(want[2:5], messages(tr.Events)); diff != "" {
		t.Errorf("time range (-want +got):\n%s", diff)
	}
	if e := tr.Events[0]; aws.ToInt64(e.Timestamp) != base.Add(2*time.Second).UnixMilli() || aws.ToInt64(e.IngestionTime) < aws.ToInt64(e.Timestamp) {
		t.Errorf("event times: %+v", e)
	}

	var nf *types.ResourceNotFoundException
	if _, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String(g), LogStreamName: aws.String("missing")}); !errors.As(err, &nf) || aws.ToString(nf.Message) != "The specified log stream does not exist." {
		t.Errorf("missing stream: %v", err)
	}
	if _, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String("/missing"), LogStreamName: aws.String(s)}); !errors.As(err, &nf) || aws.ToString(nf.Message) != "The specified log group does not exist." {
		t.Errorf("missing group: %v", err)
	}
}

func TestHandler_FilterLogEvents(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	c := client(serve(t, st).URL)
	ctx := context.Background()
	g := logs.GroupName("filter")
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	appendLines(t, st, g, "a/[$LATEST]1", base, "START RequestId: r1 Version: $LATEST", "ERROR boom", "END RequestId: r1")
	appendLines(t, st, g, "a/[$LATEST]2", base.Add(time.Second), "START RequestId: r2 Version: $LATEST", "WARN slow disk", "END RequestId: r2")
	appendLines(t, st, g, "b/[1]3", base.Add(2*time.Second), "Task timed out after 3.00 seconds", "ERROR Retrying")
	appendLines(t, st, logs.GroupName("other"), "a/[$LATEST]1", base, "ERROR not in this group")
	flush(t, st)

	tests := []struct {
		name string
		in   cwl.FilterLogEventsInput
		want []string
	}{
		{name: "all", in: cwl.FilterLogEventsInput{}, want: []string{
			"a/[$LATEST]1|START RequestId: r1 Version: $LATEST", "a/[$LATEST]1|ERROR boom", "a/[$LATEST]1|END RequestId: r1",
			"a/[$LATEST]2|START RequestId: r2 Version: $LATEST", "a/[$LATEST]2|WARN slow disk", "a/[$LATEST]2|END RequestId: r2",
			"b/[1]3|Task timed out after 3.00 seconds", "b/[1]3|ERROR Retrying"}},
		{name: "term", in: cwl.FilterLogEventsInput{FilterPattern: aws.String("ERROR")}, want: []string{"a/[$LATEST]1|ERROR boom", "b/[1]3|ERROR Retrying"}},
		{name: "exclusion", in: cwl.FilterLogEventsInput{FilterPattern: aws.String("ERROR -Retrying")}, want: []string{"a/[$LATEST]1|ERROR boom"}},
		{name: "any of", in: cwl.FilterLogEventsInput{FilterPattern: aws.String("?boom ?WARN")}, want: []string{"a/[$LATEST]1|ERROR boom", "a/[$LATEST]2|WARN slow disk"}},
		{name: "phrase", in: cwl.FilterLogEventsInput{FilterPattern: aws.String(`"timed out after"`)}, want: []string{"b/[1]3|Task timed out after 3.00 seconds"}},
		{name: "two terms", in: cwl.FilterLogEventsInput{FilterPattern: aws.String("RequestId r2")}, want: []string{"a/[$LATEST]2|START RequestId: r2 Version: $LATEST", "a/[$LATEST]2|END RequestId: r2"}},
		{name: "stream names", in: cwl.FilterLogEventsInput{LogStreamNames: []string{"b/[1]3", "a/[$LATEST]2"}, FilterPattern: aws.String("?ERROR ?WARN")}, want: []string{"a/[$LATEST]2|WARN slow disk", "b/[1]3|ERROR Retrying"}},
		{name: "stream prefix", in: cwl.FilterLogEventsInput{LogStreamNamePrefix: aws.String("b/"), FilterPattern: aws.String("Task")}, want: []string{"b/[1]3|Task timed out after 3.00 seconds"}},
		{name: "start time", in: cwl.FilterLogEventsInput{StartTime: aws.Int64(base.Add(2 * time.Second).UnixMilli())}, want: []string{"b/[1]3|Task timed out after 3.00 seconds", "b/[1]3|ERROR Retrying"}},
		{name: "end time inclusive", in: cwl.FilterLogEventsInput{EndTime: aws.Int64(base.Add(time.Second).UnixMilli()), FilterPattern: aws.String("END")}, want: []string{"a/[$LATEST]1|END RequestId: r1", "a/[$LATEST]2|END RequestId: r2"}},
		{name: "no match", in: cwl.FilterLogEventsInput{FilterPattern: aws.String("nothing-like-this")}, want: []string{}},
		{name: "paged by 3", in: cwl.FilterLogEventsInput{Limit: aws.Int32(3), FilterPattern: aws.String("-START")}, want: []string{
			"a/[$LATEST]1|ERROR boom", "a/[$LATEST]1|END RequestId: r1", "a/[$LATEST]2|WARN slow disk", "a/[$LATEST]2|END RequestId: r2",
			"b/[1]3|Task timed out after 3.00 seconds", "b/[1]3|ERROR Retrying"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.LogGroupName = aws.String(g)
			got := []string{}
			ids := map[string]bool{}
			p := cwl.NewFilterLogEventsPaginator(c, &in)
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if in.Limit != nil && len(out.Events) > int(*in.Limit) {
					t.Errorf("page of %d events exceeds limit %d", len(out.Events), *in.Limit)
				}
				for _, e := range out.Events {
					if ids[aws.ToString(e.EventId)] {
						t.Errorf("duplicate event id %s", aws.ToString(e.EventId))
					}
					ids[aws.ToString(e.EventId)] = true
				}
				got = append(got, filtered(out.Events)...)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	var inv *types.InvalidParameterException
	if _, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String(g), FilterPattern: aws.String(`{ $.a = 1 }`)}); !errors.As(err, &inv) {
		t.Errorf("JSON pattern: %v, want InvalidParameterException", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/none")}); !errors.As(err, &nf) {
		t.Errorf("missing group: %v, want ResourceNotFoundException", err)
	}
}

func TestHandler_PutLogEvents(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, logs.DefaultConfig())
	c := client(serve(t, st).URL)
	ctx := context.Background()
	g, s := "/app/put", "stream-1"
	var nf *types.ResourceNotFoundException
	if _, err := c.PutLogEvents(ctx, &cwl.PutLogEventsInput{LogGroupName: aws.String(g), LogStreamName: aws.String(s),
		LogEvents: []types.InputLogEvent{{Timestamp: aws.Int64(time.Now().UnixMilli()), Message: aws.String("x")}}}); !errors.As(err, &nf) {
		t.Fatalf("put before create: %v, want ResourceNotFoundException", err)
	}
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String(g)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String(g), LogStreamName: aws.String(s)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	out, err := c.PutLogEvents(ctx, &cwl.PutLogEventsInput{LogGroupName: aws.String(g), LogStreamName: aws.String(s), LogEvents: []types.InputLogEvent{
		{Timestamp: aws.Int64(now.Add(-72 * time.Hour).UnixMilli()), Message: aws.String("too old")},
		{Timestamp: aws.Int64(now.UnixMilli()), Message: aws.String("hello")},
		{Timestamp: aws.Int64(now.UnixMilli()), Message: aws.String("world")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.RejectedLogEventsInfo == nil || aws.ToInt32(out.RejectedLogEventsInfo.TooOldLogEventEndIndex) != 0 {
		t.Errorf("rejected info = %+v, want tooOldLogEventEndIndex 0", out.RejectedLogEventsInfo)
	}
	flush(t, st)
	ev, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String(g), LogStreamName: aws.String(s), StartFromHead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"hello", "world"}, messages(ev.Events)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
