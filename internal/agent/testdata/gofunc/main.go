// Command gofunc is a Lambda function built with aws-lambda-go, used as a
// provided.al2023 bootstrap in the agent's tests and benchmarks.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Msg   string `json:"msg"`
	Fail  string `json:"fail"`
	Crash bool   `json:"crash"`
	Big   int    `json:"big"`
	Print string `json:"print"`
}

type reply struct {
	Msg       string `json:"msg"`
	RequestID string `json:"requestId"`
	Function  string `json:"function"`
	Memory    int    `json:"memory"`
	ARN       string `json:"arn"`
	HasDL     bool   `json:"hasDeadline"`
	Big       string `json:"big,omitempty"`
	PID       int    `json:"pid"`
}

func handle(ctx context.Context, ev event) (reply, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	if ev.Print != "" {
		fmt.Println(ev.Print)
		fmt.Fprintln(os.Stderr, "err:"+ev.Print)
	}
	if ev.Fail != "" {
		return reply{}, errors.New(ev.Fail)
	}
	if ev.Crash {
		os.Exit(3)
	}
	_, hasDL := ctx.Deadline()
	r := reply{Msg: ev.Msg, Function: lambdacontext.FunctionName, Memory: lambdacontext.MemoryLimitInMB, HasDL: hasDL, PID: os.Getpid()}
	if lc != nil {
		r.RequestID = lc.AwsRequestID
		r.ARN = lc.InvokedFunctionArn
	}
	if ev.Big > 0 {
		r.Big = strings.Repeat("x", ev.Big)
	}
	return r, nil
}

func main() { lambda.Start(handle) }
