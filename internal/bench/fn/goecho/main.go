// Command goecho is the aws-lambda-go echo function `ignis bench` builds on
// the fly and deploys as a provided.al2023 bootstrap. It returns the event
// unchanged; an event {"sleep_ms": N} holds the sandbox for N ms first (the
// fleet measurements use it to keep N sandboxes busy at once).
package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, event json.RawMessage) (json.RawMessage, error) {
		if len(event) > 0 && len(event) < 64 && event[0] == '{' {
			var hold struct {
				SleepMs int `json:"sleep_ms"`
			}
			if json.Unmarshal(event, &hold) == nil && hold.SleepMs > 0 {
				time.Sleep(time.Duration(hold.SleepMs) * time.Millisecond)
			}
		}
		return event, nil
	})
}
