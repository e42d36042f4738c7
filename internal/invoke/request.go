package invoke

import "github.com/ignis-run/ignis/internal/registry"

// Request is one invocation of a resolved function (spec §2): what the
// frontend's Invoke route and the async pollers hand to the invoke path.
type Request struct {
	RequestID string
	Function  registry.ResolvedVersion
	// InvocationType is RequestResponse, Event or DryRun.
	InvocationType string
	// LogType is None or Tail.
	LogType string
	// ClientContext is the decoded X-Amz-Client-Context JSON, or nil.
	ClientContext []byte
	TraceID       string
	TenantID      string
	Payload       []byte
}

// Result is the outcome of a Request, as the Invoke route writes it back.
type Result struct {
	// StatusCode is 200 (sync), 202 (Event) or 204 (DryRun); 0 means 200.
	StatusCode      int
	ExecutedVersion string
	// FunctionError is lambdaerr.Unhandled for a function error, else "".
	FunctionError string
	// LogResult is the base64 tail of the log for LogType Tail.
	LogResult string
	Payload   []byte
}
