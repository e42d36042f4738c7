// Command goecho is an aws-lambda-go function used by the invoke tests.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

var sandbox = func() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

func main() {
	lambda.Start(func(ctx context.Context, event json.RawMessage) (map[string]any, error) {
		lc, _ := lambdacontext.FromContext(ctx)
		var in struct {
			SleepMs int `json:"sleep_ms"`
		}
		_ = json.Unmarshal(event, &in)
		time.Sleep(time.Duration(in.SleepMs) * time.Millisecond)
		return map[string]any{"event": event, "sandbox": sandbox, "request_id": lc.AwsRequestID, "fn": lambdacontext.FunctionName}, nil
	})
}
