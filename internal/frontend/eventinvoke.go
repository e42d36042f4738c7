package frontend

// Asynchronous invocation routes: the event invoke config operations
// (spec §1.3/§1.4), the legacy InvokeAsync, and two Ignis routes for
// operators (queue metrics, reading an Ignis queue).

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/registry"
)

// MaxInvokeAsyncBodyBytes is the payload limit of the legacy InvokeAsync.
const MaxInvokeAsyncBodyBytes = 262144

// QueueOperator is implemented by an Invoker that queues Event invocations.
// The frontend serves it, SigV4-authenticated like every route, as
//
//	GET  /_ignis/metrics                  → QueueMetrics as JSON
//	POST /_ignis/queues/{name}/receive    → {"Messages":[api.QueueMessage…]}
//	     ?MaxNumberOfMessages=1..100&WaitTimeSeconds=0..20
//
// Without it those routes answer 501.
type QueueOperator interface {
	// QueueMetrics reports the event queue's state (a JSON-encodable value).
	QueueMetrics(ctx context.Context) (any, error)
	// ReceiveQueue takes up to max messages off an Ignis queue, waiting up
	// to wait for the first; taken messages are deleted.
	ReceiveQueue(ctx context.Context, name string, max int, wait time.Duration) ([]api.QueueMessage, error)
}

// FleetOperator is implemented by an Invoker that sees the fleet: the
// frontend serves it, SigV4-authenticated, as GET /_ignis/fleet →
// {"Workers":[api.FleetWorker…]} (`ignis fleet`). Without it the route
// answers 501.
type FleetOperator interface {
	Fleet(ctx context.Context) ([]api.FleetWorker, error)
}

// eventInvokeConfigRequest is the body of Put/UpdateFunctionEventInvokeConfig.
type eventInvokeConfigRequest struct {
	MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts"`
	MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds"`
	DestinationConfig        *destinationConfig `json:"DestinationConfig"`
}

type destinationConfig struct {
	OnSuccess *destination `json:"OnSuccess,omitempty"`
	OnFailure *destination `json:"OnFailure,omitempty"`
}

type destination struct {
	Destination *string `json:"Destination,omitempty"`
}

// functionEventInvokeConfig is the response shape; LastModified is a
// Smithy timestamp, i.e. epoch seconds as a JSON number.
type functionEventInvokeConfig struct {
	LastModified             float64           `json:"LastModified"`
	FunctionArn              string            `json:"FunctionArn"`
	MaximumRetryAttempts     int               `json:"MaximumRetryAttempts"`
	MaximumEventAgeInSeconds int               `json:"MaximumEventAgeInSeconds"`
	DestinationConfig        destinationConfig `json:"DestinationConfig"`
}

type listEventInvokeConfigsResponse struct {
	FunctionEventInvokeConfigs []functionEventInvokeConfig `json:"FunctionEventInvokeConfigs"`
	NextMarker                 string                      `json:"NextMarker,omitempty"`
}

func (f *Frontend) eventInvokeConfig(c *registry.EventInvokeConfig) functionEventInvokeConfig {
	dest := func(arn string) *destination {
		if arn == "" {
			return &destination{}
		}
		return &destination{Destination: &arn}
	}
	return functionEventInvokeConfig{
		LastModified:             math.Round(float64(c.LastModified.UnixMilli())) / 1000,
		FunctionArn:              f.arns.Qualified(c.FunctionName, c.Qualifier),
		MaximumRetryAttempts:     c.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: c.MaximumEventAgeInSeconds,
		DestinationConfig:        destinationConfig{OnSuccess: dest(c.OnSuccess), OnFailure: dest(c.OnFailure)},
	}
}

func eventConfigInput(req *eventInvokeConfigRequest) registry.EventInvokeConfigInput {
	in := registry.EventInvokeConfigInput{
		MaximumRetryAttempts:     req.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: req.MaximumEventAgeInSeconds,
	}
	if d := req.DestinationConfig; d != nil {
		empty := ""
		arn := func(x *destination) *string {
			if x == nil {
				return nil
			}
			if x.Destination == nil {
				return &empty
			}
			return x.Destination
		}
		in.OnSuccess, in.OnFailure = arn(d.OnSuccess), arn(d.OnFailure)
	}
	return in
}

// putEventInvokeConfig is Put (PUT, replace) and Update (POST, merge).
func (f *Frontend) putEventInvokeConfig(merge bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req eventInvokeConfigRequest
		if err := decodeBody(body(r), &req); err != nil {
			return err
		}
		put := f.reg.PutFunctionEventInvokeConfig
		if merge {
			put = f.reg.UpdateFunctionEventInvokeConfig
		}
		c, err := put(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"), eventConfigInput(&req))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, f.eventInvokeConfig(&c))
		return nil
	}
}

// getEventInvokeConfig is GetFunctionEventInvokeConfig.
func (f *Frontend) getEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	c, err := f.reg.GetFunctionEventInvokeConfig(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f.eventInvokeConfig(&c))
	return nil
}

// deleteEventInvokeConfig is DeleteFunctionEventInvokeConfig → 204.
func (f *Frontend) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	if err := f.reg.DeleteFunctionEventInvokeConfig(r.Context(), r.PathValue("name"), r.URL.Query().Get("Qualifier")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listEventInvokeConfigs is ListFunctionEventInvokeConfigs (MaxItems 1–50).
func (f *Frontend) listEventInvokeConfigs(w http.ResponseWriter, r *http.Request) error {
	in, err := listInput(r)
	if err != nil {
		return err
	}
	cs, next, err := f.reg.ListFunctionEventInvokeConfigs(r.Context(), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	out := listEventInvokeConfigsResponse{NextMarker: next, FunctionEventInvokeConfigs: make([]functionEventInvokeConfig, 0, len(cs))}
	for i := range cs {
		out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, f.eventInvokeConfig(&cs[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// invokeAsync is the deprecated InvokeAsync: POST
// /2014-11-13/functions/{name}/invoke-async, body = the event (≤ 256 KB),
// answered 202 {"Status":202} once the event is queued.
func (f *Frontend) invokeAsync(w http.ResponseWriter, r *http.Request) error {
	payload := body(r)
	if len(payload) > MaxInvokeAsyncBodyBytes {
		return newAWSError(http.StatusRequestEntityTooLarge, api.ErrRequestTooLarge,
			"Request must be smaller than %d bytes for the InvokeAsync operation", MaxInvokeAsyncBodyBytes)
	}
	if len(payload) > 0 && !json.Valid(payload) {
		return invalidContent("Could not parse request body into json: Could not parse payload into json")
	}
	fn, err := f.reg.Resolve(r.Context(), r.PathValue("name"), "")
	if err != nil {
		return err
	}
	if f.cfg.Invoker == nil {
		return newAWSError(http.StatusNotImplemented, api.ErrService, "Invoke is not available on this Ignis server yet")
	}
	_, err = f.cfg.Invoker.Invoke(r.Context(), &invoke.Request{
		RequestID:      RequestID(r.Context()),
		Function:       fn,
		InvocationType: "Event",
		LogType:        "None",
		TraceID:        r.Header.Get("X-Amzn-Trace-Id"),
		Payload:        payload,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, struct {
		Status int `json:"Status"`
	}{http.StatusAccepted})
	return nil
}

func (f *Frontend) queueOperator() (QueueOperator, error) {
	q, ok := f.cfg.Invoker.(QueueOperator)
	if !ok {
		return nil, newAWSError(http.StatusNotImplemented, api.ErrService, "This Ignis server has no event queue")
	}
	return q, nil
}

// queueMetrics is GET /_ignis/metrics.
func (f *Frontend) queueMetrics(w http.ResponseWriter, r *http.Request) error {
	q, err := f.queueOperator()
	if err != nil {
		return err
	}
	m, err := q.QueueMetrics(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// receiveQueue is POST /_ignis/queues/{name}/receive.
func (f *Frontend) receiveQueue(w http.ResponseWriter, r *http.Request) error {
	q, err := f.queueOperator()
	if err != nil {
		return err
	}
	max, wait := 10, time.Duration(0)
	if s := r.URL.Query().Get("MaxNumberOfMessages"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return invalidParam("Value %s for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 100.", s)
		}
		max = n
	}
	if s := r.URL.Query().Get("WaitTimeSeconds"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 20 {
			return invalidParam("Value %s for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20.", s)
		}
		wait = time.Duration(n) * time.Second
	}
	msgs, err := q.ReceiveQueue(r.Context(), r.PathValue("name"), max, wait)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []api.QueueMessage{}
	}
	writeJSON(w, http.StatusOK, struct {
		Messages []api.QueueMessage `json:"Messages"`
	}{msgs})
	return nil
}

// asyncRoutes registers the routes of this file.
func (f *Frontend) asyncRoutes() {
	m, h := f.mux, f.handler
	const p = "/2019-09-25/functions/{name}/event-invoke-config"
	m.Handle("PUT "+p, h(f.putEventInvokeConfig(false)))
	m.Handle("POST "+p, h(f.putEventInvokeConfig(true)))
	m.Handle("GET "+p, h(f.getEventInvokeConfig))
	m.Handle("DELETE "+p, h(f.deleteEventInvokeConfig))
	m.Handle("GET "+p+"/list", h(f.listEventInvokeConfigs))
	m.Handle("POST /2014-11-13/functions/{name}/invoke-async", h(f.invokeAsync))
	m.Handle("POST /2014-11-13/functions/{name}/invoke-async/{$}", h(f.invokeAsync))
	m.Handle("GET /_ignis/metrics", h(f.queueMetrics))
	m.Handle("POST /_ignis/queues/{name}/receive", h(f.receiveQueue))
	m.Handle("GET /_ignis/fleet", h(f.fleet))
}

// fleet is GET /_ignis/fleet.
func (f *Frontend) fleet(w http.ResponseWriter, r *http.Request) error {
	fo, ok := f.cfg.Invoker.(FleetOperator)
	if !ok {
		return newAWSError(http.StatusNotImplemented, api.ErrService, "This Ignis server does not see a fleet")
	}
	ws, err := fo.Fleet(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{ Workers []api.FleetWorker }{ws})
	return nil
}
