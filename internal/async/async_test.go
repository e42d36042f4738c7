package async_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestAsync runs the async scenarios against one real server (jail
// sandboxes, embedded JetStream, SDK clients), retry delay 1s, 4 pollers.
func TestAsync(t *testing.T) {
	s := newServer(t, 4)
	ctx := context.Background()
	cw := logsClient(s)

	t.Run("event_age_exceeded", func(t *testing.T) {
		t.Parallel() // waits a minute: runs beside the others
		createPy(t, s, "aged", nil)
		if _, err := s.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("aged"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Lambda.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName:             aws.String("aged"),
			MaximumEventAgeInSeconds: aws.Int32(60),
			DestinationConfig:        &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:aged-failures")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// Accepted although the function is throttled (reserved 0).
		id := invokeEvent(t, s, "aged", `{"mark":"aged"}`)
		var msgs []queueMsg
		eventually(t, 100*time.Second, "the EventAgeExceeded record", func() bool {
			msgs = append(msgs, receive(t, s, "aged-failures", time.Second)...)
			return len(msgs) > 0
		})
		if age := time.Since(start); age < 60*time.Second {
			t.Fatalf("expired after %v, before the maximum age of 60s", age)
		}
		var r record
		if err := json.Unmarshal([]byte(msgs[0].Body), &r); err != nil {
			t.Fatal(err)
		}
		if r.RequestContext.Condition != "EventAgeExceeded" || r.RequestContext.RequestID != id || r.RequestContext.ApproximateInvokeCount != 0 {
			t.Fatalf("record %+v", r.RequestContext)
		}
		if string(r.RequestPayload) != `{"mark":"aged"}` {
			t.Fatalf("requestPayload %s", r.RequestPayload)
		}
		if runs := logLines(t, cw, "aged", `"RUN "`); len(runs) != 0 {
			t.Fatalf("a throttled function ran %d times", len(runs))
		}
		m := metrics(t, s)
		if m["eventAgeExceeded"].(float64) < 1 || m["throttled"].(float64) < 1 {
			t.Fatalf("metrics %v: want eventAgeExceeded and throttled counted", m)
		}
	})

	t.Run("event_runs", func(t *testing.T) {
		createPy(t, s, "runs", nil)
		id := invokeEvent(t, s, "runs", `{"mark":"first"}`)
		eventually(t, 60*time.Second, "the event to run", func() bool {
			return len(logLines(t, cw, "runs", `"RUN `+id+` first"`)) == 1
		})
		// The legacy InvokeAsync answers 202 {"Status":202} and runs too.
		out, err := s.Lambda.InvokeAsync(ctx, &lambda.InvokeAsyncInput{FunctionName: aws.String("runs"), InvokeArgs: strings.NewReader(`{"mark":"legacy"}`)})
		if err != nil || out.Status != 202 {
			t.Fatalf("InvokeAsync: %+v, %v", out, err)
		}
		eventually(t, 60*time.Second, "the InvokeAsync event to run", func() bool {
			return len(logLines(t, cw, "runs", `"RUN " legacy`)) == 1
		})
	})

	t.Run("payload_limits", func(t *testing.T) {
		createPy(t, s, "limits", nil)
		str := func(n int) []byte { // a JSON string of exactly n bytes
			return append(append([]byte(`"`), bytes.Repeat([]byte("a"), n-2)...), '"')
		}
		_, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("limits"), InvocationType: types.InvocationTypeEvent, Payload: str(1048576 + 1)})
		var tl *types.RequestTooLargeException
		if !errors.As(err, &tl) {
			t.Fatalf("1 MB + 1 byte Event: err = %v, want RequestTooLargeException", err)
		}
		if _, err := s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("limits"), InvocationType: types.InvocationTypeEvent, Payload: str(1048576)}); err != nil {
			t.Fatalf("1 MB Event: %v", err)
		}
		_, err = s.Lambda.InvokeAsync(ctx, &lambda.InvokeAsyncInput{FunctionName: aws.String("limits"), InvokeArgs: bytes.NewReader(str(262144 + 1))})
		if !errors.As(err, &tl) {
			t.Fatalf("256 KB + 1 byte InvokeAsync: err = %v, want RequestTooLargeException", err)
		}
		_, err = s.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("Event to a missing function: err = %v, want ResourceNotFoundException", err)
		}
	})

	t.Run("retries", func(t *testing.T) {
		for _, retries := range []int{0, 1, 2} {
			t.Run(fmt.Sprintf("max_%d", retries), func(t *testing.T) {
				name := fmt.Sprintf("fails%d", retries)
				queue := name + "-failures"
				dlq := name + "-dlq"
				createPy(t, s, name, func(in *lambda.CreateFunctionInput) {
					in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:sqs:us-east-1:000000000000:" + dlq)}
				})
				_, err := s.Lambda.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
					FunctionName:         aws.String(name),
					MaximumRetryAttempts: aws.Int32(int32(retries)),
					DestinationConfig:    &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:" + queue)}},
				})
				if err != nil {
					t.Fatal(err)
				}
				id := invokeEvent(t, s, name, `{"fail":"boom","mark":"r"}`)
				var msgs []queueMsg
				eventually(t, 90*time.Second, "the RetriesExhausted record", func() bool {
					msgs = append(msgs, receive(t, s, queue, time.Second)...)
					return len(msgs) > 0
				})
				time.Sleep(2 * retryDelay) // no attempt may follow the record
				runs := logLines(t, cw, name, `"RUN `+id+`"`)
				starts := logLines(t, cw, name, `"START RequestId: `+id+`"`)
				if len(runs) != retries+1 || len(starts) != retries+1 {
					t.Fatalf("%d RUN and %d START lines for %s, want %d", len(runs), len(starts), id, retries+1)
				}
				// Lambda's spacing: ~delay, then ~2×delay.
				for i := 1; i < len(starts); i++ {
					gap := time.Duration(aws.ToInt64(starts[i].Timestamp)-aws.ToInt64(starts[i-1].Timestamp)) * time.Millisecond
					if want := retryDelay << (i - 1); gap < want-100*time.Millisecond {
						t.Fatalf("retry %d came %v after the previous attempt, want >= %v", i, gap, want)
					}
				}
				if len(msgs) != 1 {
					t.Fatalf("%d failure records, want 1", len(msgs))
				}
				var r record
				if err := json.Unmarshal([]byte(msgs[0].Body), &r); err != nil {
					t.Fatal(err)
				}
				rc := r.RequestContext
				if r.Version != "1.0" || rc.RequestID != id || rc.Condition != "RetriesExhausted" || rc.ApproximateInvokeCount != retries+1 ||
					rc.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:"+name+":$LATEST" {
					t.Fatalf("record %+v", r)
				}
				if _, err := time.Parse(time.RFC3339, r.Timestamp); err != nil {
					t.Fatalf("timestamp %q: %v", r.Timestamp, err)
				}
				if string(r.RequestPayload) != `{"fail":"boom","mark":"r"}` {
					t.Fatalf("requestPayload %s", r.RequestPayload)
				}
				if r.ResponseContext == nil || r.ResponseContext.StatusCode != 200 || r.ResponseContext.FunctionError != "Unhandled" || r.ResponseContext.ExecutedVersion != "$LATEST" {
					t.Fatalf("responseContext %+v", r.ResponseContext)
				}
				var rp struct{ ErrorType, ErrorMessage string }
				if err := json.Unmarshal(r.ResponsePayload, &rp); err != nil || rp.ErrorType != "ValueError" || !strings.Contains(rp.ErrorMessage, "asked to fail: boom") {
					t.Fatalf("responsePayload %s", r.ResponsePayload)
				}
				// The dead-letter queue gets the original event.
				dead := receive(t, s, dlq, 5*time.Second)
				if len(dead) != 1 || dead[0].Body != `{"fail":"boom","mark":"r"}` || dead[0].MessageAttributes["RequestID"] != id ||
					!strings.Contains(dead[0].MessageAttributes["ErrorMessage"], "asked to fail") {
					t.Fatalf("dead letters %+v", dead)
				}
			})
		}
		if m := metrics(t, s); m["retries"].(float64) < 3 || m["retriesExhausted"].(float64) < 3 || m["dropped"].(float64) < 3 {
			t.Fatalf("metrics %v: want retries, retriesExhausted and dropped counted", m)
		}
	})

	t.Run("on_success_to_function", func(t *testing.T) {
		createPy(t, s, "sink", nil)
		createPy(t, s, "succeeds", nil)
		_, err := s.Lambda.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName:      aws.String("succeeds"),
			DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:lambda:us-east-1:000000000000:function:sink")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		id := invokeEvent(t, s, "succeeds", `{"mark":"yay"}`)
		var lines []string
		eventually(t, 60*time.Second, "the sink to receive the Success record", func() bool {
			lines = nil
			for _, e := range logLines(t, cw, "sink", `"EVENT "`) {
				lines = append(lines, aws.ToString(e.Message))
			}
			return len(lines) > 0
		})
		var r record
		if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(lines[0], "EVENT "))), &r); err != nil {
			t.Fatalf("%v: %q", err, lines[0])
		}
		rc := r.RequestContext
		if r.Version != "1.0" || rc.RequestID != id || rc.Condition != "Success" || rc.ApproximateInvokeCount != 1 ||
			rc.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:succeeds:$LATEST" {
			t.Fatalf("record %+v", r)
		}
		if r.ResponseContext == nil || r.ResponseContext.StatusCode != 200 || r.ResponseContext.FunctionError != "" || r.ResponseContext.ExecutedVersion != "$LATEST" {
			t.Fatalf("responseContext %+v", r.ResponseContext)
		}
		// The sink re-encodes what it got, so compare decoded values.
		var req, resp map[string]any
		if json.Unmarshal(r.RequestPayload, &req) != nil || json.Unmarshal(r.ResponsePayload, &resp) != nil ||
			req["mark"] != "yay" || len(req) != 1 || resp["ok"] != true || resp["mark"] != "yay" {
			t.Fatalf("payloads %s / %s", r.RequestPayload, r.ResponsePayload)
		}
	})

	t.Run("fairness", func(t *testing.T) {
		createPy(t, s, "flood", nil)
		createPy(t, s, "quiet", nil)
		const n = 24
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				invokeEvent(t, s, "flood", fmt.Sprintf(`{"sleep":1,"mark":"f%d"}`, i))
			}()
		}
		wg.Wait()
		// Let the flood take every poller, then one quiet event arrives.
		eventually(t, 60*time.Second, "the flood to start", func() bool {
			return len(logLines(t, cw, "flood", `"RUN "`)) >= 2
		})
		qid := invokeEvent(t, s, "quiet", `{"mark":"q"}`)
		var quietAt int64
		eventually(t, 60*time.Second, "the quiet event to run", func() bool {
			l := logLines(t, cw, "quiet", `"RUN `+qid+`"`)
			if len(l) == 0 {
				return false
			}
			quietAt = aws.ToInt64(l[0].Timestamp)
			return true
		})
		before := 0
		for _, e := range logLines(t, cw, "flood", `"RUN "`) {
			if aws.ToInt64(e.Timestamp) <= quietAt {
				before++
			}
		}
		t.Logf("%d of %d flood events started before the quiet one", before, n)
		if before > n/2 {
			t.Fatalf("%d of %d flood events ran before the quiet event: starved", before, n)
		}
		eventually(t, 120*time.Second, "the flood to drain", func() bool {
			return len(logLines(t, cw, "flood", `"RUN "`)) >= n
		})
	})
}

type queueMsg = struct {
	MessageId         string            `json:"MessageId"`
	Body              string            `json:"Body"`
	MessageAttributes map[string]string `json:"MessageAttributes,omitempty"`
	SentTimestamp     int64             `json:"SentTimestamp"`
}

func TestAsync_EventInvokeConfigAPI(t *testing.T) {
	s := newServer(t, 2)
	ctx := context.Background()
	createPy(t, s, "cfg", nil)
	_, err := s.Lambda.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("get before put: %v, want ResourceNotFoundException", err)
	}
	put, err := s.Lambda.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("cfg"), MaximumRetryAttempts: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(put.MaximumRetryAttempts) != 1 || aws.ToInt32(put.MaximumEventAgeInSeconds) != 21600 ||
		aws.ToString(put.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:cfg:$LATEST" ||
		put.LastModified == nil || time.Since(*put.LastModified) > time.Minute {
		t.Fatalf("put: %+v", put)
	}
	upd, err := s.Lambda.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{
		FunctionName:      aws.String("cfg"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(upd.MaximumRetryAttempts) != 1 || aws.ToString(upd.DestinationConfig.OnFailure.Destination) != "arn:aws:sqs:us-east-1:000000000000:q" {
		t.Fatalf("update did not merge: %+v", upd)
	}
	get, err := s.Lambda.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg"), Qualifier: aws.String("$LATEST")})
	if err != nil || aws.ToString(get.DestinationConfig.OnFailure.Destination) == "" {
		t.Fatalf("get: %+v, %v", get, err)
	}
	_, err = s.Lambda.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg"), MaximumRetryAttempts: aws.Int32(3)})
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) {
		t.Fatalf("3 retries: %v, want InvalidParameterValueException", err)
	}
	list, err := s.Lambda.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("cfg")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := s.Lambda.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lambda.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")}); !errors.As(err, &nf) {
		t.Fatalf("second delete: %v, want ResourceNotFoundException", err)
	}
}
