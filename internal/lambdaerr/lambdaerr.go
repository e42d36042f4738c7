// Package lambdaerr is Lambda's vocabulary for failed invocations: the
// function error types the agent, the Runtime API, the worker and the
// invoke path report and compare (Runtime.ExitError, Sandbox.Timedout …),
// the X-Amz-Function-Error value, and the {"errorMessage","errorType"}
// body the platform writes on the function's behalf (spec §2, §5).
//
// The in-sandbox agent imports it: it must depend on nothing but the
// standard library and agentproto.
package lambdaerr

import "github.com/ignis-run/ignis/internal/agentproto"

// Unhandled is the X-Amz-Function-Error value of every function error: the
// ones the runtime reports and the ones the platform reports for it.
const Unhandled = "Unhandled"

// Function error types the platform reports itself. A runtime may report
// any Category.Reason of its own (runtimeapi normalises them).
const (
	RuntimeExitError             = "Runtime.ExitError"
	RuntimeOutOfMemory           = "Runtime.OutOfMemory"
	RuntimeUnknown               = "Runtime.Unknown"
	RuntimeInvalidEntrypoint     = "Runtime.InvalidEntrypoint"
	RuntimeInitTimeout           = "Runtime.InitTimeout"
	SandboxTimedout              = "Sandbox.Timedout"
	SandboxFailure               = "Sandbox.Failure"
	ExtensionLaunchError         = "Extension.LaunchError"
	ExtensionCrash               = "Extension.Crash"
	FunctionResponseSizeTooLarge = "Function.ResponseSizeTooLarge"
	// SnapStart: a before-snapshot hook failed (posted to /init/error by the
	// runtime), an after-restore hook failed (/restore/error), or the
	// after-restore hooks overran their 10 s.
	RuntimeBeforeSnapshotError = "Runtime.BeforeSnapshotError"
	RuntimeAfterRestoreError   = "Runtime.AfterRestoreError"
	SnapStartTimeout           = "SnapStartTimeoutException"
)

// Body returns {"errorMessage":message,"errorType":errorType}, each string
// escaped exactly as encoding/json would. It allocates once when both are
// printable ASCII without quotes or backslashes (the usual case).
func Body(errorType, message string) []byte {
	b := make([]byte, 0, len(`{"errorMessage":"","errorType":""}`)+len(message)+len(errorType))
	b = append(b, `{"errorMessage":`...)
	b = agentproto.AppendJSONString(b, message)
	b = append(b, `,"errorType":`...)
	b = agentproto.AppendJSONString(b, errorType)
	return append(b, '}')
}
