package frontend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/invoke"
)

// Invoker runs invocations for the Invoke route. The frontend has already
// authenticated the request, resolved the function (Function), checked the
// payload size and JSON validity and the headers' values; the Invoker
// decides placement, concurrency and retries.
//
// Invoke blocks until the result is known (RequestResponse), the event is
// durably queued (Event), or the checks pass (DryRun); it honours ctx
// cancellation. Errors are errdefs classes (ErrThrottled → 429 etc.); a
// function's own failure is not an error but a result with FunctionError.
type Invoker interface {
	Invoke(ctx context.Context, req *invoke.Request) (*invoke.Result, error)
}

// invoke is Invoke: POST /2015-03-31/functions/{name}/invocations.
func (f *Frontend) invoke(w http.ResponseWriter, r *http.Request) error {
	payload := body(r)
	if len(payload) > MaxInvokeBodyBytes {
		return newAWSError(http.StatusRequestEntityTooLarge, api.ErrRequestTooLarge,
			"Request must be smaller than %d bytes for the InvokeFunction operation", MaxInvokeBodyBytes)
	}
	req := &invoke.Request{
		RequestID:      RequestID(r.Context()),
		InvocationType: r.Header.Get("X-Amz-Invocation-Type"),
		LogType:        r.Header.Get("X-Amz-Log-Type"),
		TraceID:        r.Header.Get("X-Amzn-Trace-Id"),
		TenantID:       r.Header.Get("X-Amz-Tenant-Id"),
		Payload:        payload,
	}
	if req.InvocationType == "" {
		req.InvocationType = "RequestResponse"
	}
	if req.LogType == "" {
		req.LogType = "None"
	}
	switch req.InvocationType {
	case "RequestResponse", "Event", "DryRun":
	default:
		return invalidParam("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]", req.InvocationType)
	}
	if req.LogType != "None" && req.LogType != "Tail" {
		return invalidParam("1 validation error detected: Value '%s' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]", req.LogType)
	}
	if cc := r.Header.Get("X-Amz-Client-Context"); cc != "" {
		raw, err := base64.StdEncoding.DecodeString(cc)
		if err != nil || !json.Valid(raw) {
			return invalidParam("Client context must be a valid Base64-encoded JSON object.")
		}
		req.ClientContext = raw
	}
	if len(payload) > 0 && !json.Valid(payload) {
		return invalidContent("Could not parse request body into json: Could not parse payload into json")
	}
	fn, err := f.reg.Resolve(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	req.Function = fn
	if f.cfg.Invoker == nil {
		return newAWSError(http.StatusNotImplemented, api.ErrService, "Invoke is not available on this Ignis server yet")
	}
	res, err := f.cfg.Invoker.Invoke(r.Context(), req)
	if err != nil {
		return err
	}
	if res.ExecutedVersion != "" {
		w.Header().Set("X-Amz-Executed-Version", res.ExecutedVersion)
	}
	if res.FunctionError != "" {
		w.Header().Set("X-Amz-Function-Error", res.FunctionError)
	}
	if res.LogResult != "" {
		w.Header().Set("X-Amz-Log-Result", res.LogResult)
	}
	status := res.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(res.Payload)))
	}
	w.WriteHeader(status)
	if status == http.StatusOK {
		_, _ = w.Write(res.Payload)
	}
	return nil
}
