package logs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// TargetPrefix prefixes the X-Amz-Target header of every CloudWatch Logs
// operation ("Logs_20140328.FilterLogEvents").
const TargetPrefix = "Logs_20140328."

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// Region and AccountID appear in ARNs; defaults us-east-1, 000000000000.
	Region, AccountID string
	// Logger may be nil.
	Logger *slog.Logger
}

// Handler serves the CloudWatch Logs JSON API (awsJson1.1) subset over a
// Store. Mount it for requests whose X-Amz-Target starts with TargetPrefix;
// authentication is the caller's job. It is safe for concurrent use.
//
// Operations: CreateLogGroup, CreateLogStream, DeleteLogGroup,
// DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents,
// PutLogEvents. `aws logs tail --follow` polls FilterLogEvents.
type Handler struct {
	store  *Store
	cfg    HandlerConfig
	log    *slog.Logger
	routes map[string]func(context.Context, []byte) (any, error)
}

// NewHandler returns the API handler over store.
func NewHandler(store *Store, cfg HandlerConfig) *Handler {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: store, cfg: cfg, log: cfg.Logger.With("component", "logs-api")}
	h.routes = map[string]func(context.Context, []byte) (any, error){
		"CreateLogGroup":     decodeInto(h.createLogGroup),
		"CreateLogStream":    decodeInto(h.createLogStream),
		"DeleteLogGroup":     decodeInto(h.deleteLogGroup),
		"DescribeLogGroups":  decodeInto(h.describeLogGroups),
		"DescribeLogStreams": decodeInto(h.describeLogStreams),
		"GetLogEvents":       decodeInto(h.getLogEvents),
		"FilterLogEvents":    decodeInto(h.filterLogEvents),
		"PutLogEvents":       decodeInto(h.putLogEvents),
	}
	return h
}

// apiError is an error with its wire type.
type apiError struct {
	typ, msg string
	status   int
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func invalidParam(format string, a ...any) error {
	return &apiError{typ: "InvalidParameterException", msg: fmt.Sprintf(format, a...), status: http.StatusBadRequest}
}

// decodeInto adapts a typed operation to the route table.
func decodeInto[In any](op func(context.Context, *In) (any, error)) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, body []byte) (any, error) {
		in := new(In)
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := json.Unmarshal(body, in); err != nil {
				return nil, &apiError{typ: "SerializationException", msg: err.Error(), status: http.StatusBadRequest}
			}
		}
		return op(ctx, in)
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, TargetPrefix)
	route := h.routes[op]
	if r.Method != http.MethodPost || !ok || route == nil {
		h.writeError(w, reqID, &apiError{typ: "UnknownOperationException", msg: "unknown operation " + target, status: http.StatusBadRequest})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		h.writeError(w, reqID, &apiError{typ: "SerializationException", msg: err.Error(), status: http.StatusBadRequest})
		return
	}
	out, err := route(r.Context(), body)
	if err != nil {
		h.log.DebugContext(r.Context(), "logs api error", "op", op, "request_id", reqID, "err", err)
		h.writeError(w, reqID, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		h.writeError(w, reqID, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = w.Write(b)
}

// writeError maps error classes to CloudWatch Logs error types. (The Logs
// protocol has its own vocabulary; the Lambda mapping stays in frontend.)
func (h *Handler) writeError(w http.ResponseWriter, reqID string, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{typ: "ServiceUnavailableException", msg: err.Error(), status: http.StatusInternalServerError}
		switch {
		case errdefs.IsNotFound(err):
			ae.typ, ae.status = "ResourceNotFoundException", http.StatusBadRequest
		case errdefs.IsAlreadyExists(err):
			ae.typ, ae.status = "ResourceAlreadyExistsException", http.StatusBadRequest
		case errdefs.IsInvalidArgument(err):
			ae.typ, ae.status = "InvalidParameterException", http.StatusBadRequest
		case errdefs.IsThrottled(err):
			ae.typ, ae.status = "ThrottlingException", http.StatusBadRequest
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			ae.status = http.StatusServiceUnavailable
		default:
			h.log.Error("logs api internal error", "request_id", reqID, "err", err)
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", ae.typ)
	w.WriteHeader(ae.status)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{ae.typ, ae.msg})
	_, _ = w.Write(b)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (h *Handler) groupARN(group string) string {
	return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s", h.cfg.Region, h.cfg.AccountID, group)
}

// groupName resolves logGroupName or logGroupIdentifier (a name or ARN).
func groupName(name, ident string) (string, error) {
	switch {
	case name != "" && ident != "":
		return "", invalidParam("logGroupName and logGroupIdentifier are exclusive")
	case name != "":
		return name, nil
	case ident != "":
		if _, rest, ok := strings.Cut(ident, ":log-group:"); ok {
			return strings.TrimSuffix(rest, ":*"), nil
		}
		return ident, nil
	}
	return "", invalidParam("logGroupName is required")
}

func notFoundGroup(err error) error {
	if errdefs.IsNotFound(err) {
		return &apiError{typ: "ResourceNotFoundException", msg: "The specified log group does not exist.", status: http.StatusBadRequest}
	}
	return err
}

func limitOf(p *int32, def, maxV int) (int, error) {
	if p == nil {
		return def, nil
	}
	if *p < 1 || int(*p) > maxV {
		return 0, invalidParam("limit must be between 1 and %d", maxV)
	}
	return int(*p), nil
}

func msTime(p *int64) time.Time {
	if p == nil {
		return time.Time{}
	}
	return time.UnixMilli(*p)
}

func ms(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

// --- CreateLogGroup / CreateLogStream / DeleteLogGroup ---

type createLogGroupIn struct {
	LogGroupName string `json:"logGroupName"`
}

func (h *Handler) createLogGroup(ctx context.Context, in *createLogGroupIn) (any, error) {
	if err := h.store.CreateGroup(ctx, in.LogGroupName); err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil, &apiError{typ: "ResourceAlreadyExistsException", msg: "The specified log group already exists", status: http.StatusBadRequest}
		}
		return nil, err
	}
	return struct{}{}, nil
}

type createLogStreamIn struct {
	LogGroupName  string `json:"logGroupName"`
	LogStreamName string `json:"logStreamName"`
}

func (h *Handler) createLogStream(ctx context.Context, in *createLogStreamIn) (any, error) {
	if err := h.store.CreateStream(ctx, in.LogGroupName, in.LogStreamName); err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil, &apiError{typ: "ResourceAlreadyExistsException", msg: "The specified log stream already exists", status: http.StatusBadRequest}
		}
		return nil, notFoundGroup(err)
	}
	return struct{}{}, nil
}

func (h *Handler) deleteLogGroup(ctx context.Context, in *createLogGroupIn) (any, error) {
	if err := h.store.DeleteGroup(ctx, in.LogGroupName); err != nil {
		return nil, notFoundGroup(err)
	}
	return struct{}{}, nil
}

// --- DescribeLogGroups ---

type describeLogGroupsIn struct {
	LogGroupNamePrefix  string `json:"logGroupNamePrefix"`
	LogGroupNamePattern string `json:"logGroupNamePattern"`
	Limit               *int32 `json:"limit"`
	NextToken           string `json:"nextToken"`
}

type logGroupOut struct {
	LogGroupName      string `json:"logGroupName"`
	CreationTime      int64  `json:"creationTime"`
	MetricFilterCount int32  `json:"metricFilterCount"`
	Arn               string `json:"arn"`
	LogGroupArn       string `json:"logGroupArn"`
	StoredBytes       int64  `json:"storedBytes"`
	RetentionInDays   *int32 `json:"retentionInDays,omitempty"`
	LogGroupClass     string `json:"logGroupClass"`
}

type describeLogGroupsOut struct {
	LogGroups []logGroupOut `json:"logGroups"`
	NextToken string        `json:"nextToken,omitempty"`
}

func (h *Handler) describeLogGroups(ctx context.Context, in *describeLogGroupsIn) (any, error) {
	limit, err := limitOf(in.Limit, 50, 50)
	if err != nil {
		return nil, err
	}
	groups, err := h.store.Groups(ctx, in.LogGroupNamePrefix)
	if err != nil {
		return nil, err
	}
	days := int32(h.store.cfg.MaxAge / (24 * time.Hour))
	out := describeLogGroupsOut{LogGroups: []logGroupOut{}}
	for _, g := range groups {
		if in.NextToken != "" && g.Name <= in.NextToken {
			continue
		}
		if in.LogGroupNamePattern != "" && !strings.Contains(g.Name, in.LogGroupNamePattern) {
			continue
		}
		if len(out.LogGroups) == limit {
			out.NextToken = out.LogGroups[limit-1].LogGroupName
			break
		}
		lg := logGroupOut{
			LogGroupName:  g.Name,
			CreationTime:  g.Created.UnixMilli(),
			Arn:           h.groupARN(g.Name) + ":*",
			LogGroupArn:   h.groupARN(g.Name),
			StoredBytes:   g.StoredBytes,
			LogGroupClass: "STANDARD",
		}
		if days > 0 {
			lg.RetentionInDays = &days
		}
		out.LogGroups = append(out.LogGroups, lg)
	}
	return out, nil
}

// --- DescribeLogStreams ---

type describeLogStreamsIn struct {
	LogGroupName        string `json:"logGroupName"`
	LogGroupIdentifier  string `json:"logGroupIdentifier"`
	LogStreamNamePrefix string `json:"logStreamNamePrefix"`
	OrderBy             string `json:"orderBy"`
	Descending          bool   `json:"descending"`
	Limit               *int32 `json:"limit"`
	NextToken           string `json:"nextToken"`
}

type logStreamOut struct {
	LogStreamName       string `json:"logStreamName"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp *int64 `json:"firstEventTimestamp,omitempty"`
	LastEventTimestamp  *int64 `json:"lastEventTimestamp,omitempty"`
	LastIngestionTime   *int64 `json:"lastIngestionTime,omitempty"`
	UploadSequenceToken string `json:"uploadSequenceToken"`
	Arn                 string `json:"arn"`
	StoredBytes         int64  `json:"storedBytes"`
}

type describeLogStreamsOut struct {
	LogStreams []logStreamOut `json:"logStreams"`
	NextToken  string         `json:"nextToken,omitempty"`
}

func (h *Handler) describeLogStreams(ctx context.Context, in *describeLogStreamsIn) (any, error) {
	group, err := groupName(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	limit, err := limitOf(in.Limit, 50, 50)
	if err != nil {
		return nil, err
	}
	order := ByName
	switch in.OrderBy {
	case "", "LogStreamName":
	case "LastEventTime":
		if in.LogStreamNamePrefix != "" {
			return nil, invalidParam("Cannot order by LastEventTime with a logStreamNamePrefix.")
		}
		order = ByLastEvent
	default:
		return nil, invalidParam("orderBy must be LogStreamName or LastEventTime")
	}
	streams, err := h.store.Streams(ctx, group, in.LogStreamNamePrefix, order, in.Descending)
	if err != nil {
		return nil, notFoundGroup(err)
	}
	start := 0
	if in.NextToken != "" {
		// The token is the index of the next stream in this ordering.
		var n int
		if _, err := fmt.Sscanf(in.NextToken, "i/%d", &n); err != nil || n < 0 {
			return nil, invalidParam("The specified nextToken is invalid.")
		}
		start = min(n, len(streams))
	}
	out := describeLogStreamsOut{LogStreams: []logStreamOut{}}
	for i := start; i < len(streams); i++ {
		if len(out.LogStreams) == limit {
			out.NextToken = fmt.Sprintf("i/%d", i)
			break
		}
		st := streams[i]
		out.LogStreams = append(out.LogStreams, logStreamOut{
			LogStreamName:       st.Name,
			CreationTime:        st.Created.UnixMilli(),
			FirstEventTimestamp: ms(st.FirstEvent),
			LastEventTimestamp:  ms(st.LastEvent),
			LastIngestionTime:   ms(st.LastIngestion),
			UploadSequenceToken: "1",
			Arn:                 h.groupARN(group) + ":log-stream:" + st.Name,
			StoredBytes:         st.StoredBytes,
		})
	}
	return out, nil
}

// --- GetLogEvents ---

type getLogEventsIn struct {
	LogGroupName       string `json:"logGroupName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
	LogStreamName      string `json:"logStreamName"`
	StartTime          *int64 `json:"startTime"`
	EndTime            *int64 `json:"endTime"`
	StartFromHead      *bool  `json:"startFromHead"`
	Limit              *int32 `json:"limit"`
	NextToken          string `json:"nextToken"`
}

type outputEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

type getLogEventsOut struct {
	Events            []outputEvent `json:"events"`
	NextForwardToken  string        `json:"nextForwardToken"`
	NextBackwardToken string        `json:"nextBackwardToken"`
}

// GetLogEvents tokens are "f/<position>" (read forward from the position)
// and "b/<position>" (read the events before it). When a page is empty the
// token sent is returned unchanged, which is how clients detect the end.
func (h *Handler) getLogEvents(ctx context.Context, in *getLogEventsIn) (any, error) {
	group, err := groupName(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if in.LogStreamName == "" {
		return nil, invalidParam("logStreamName is required")
	}
	limit, err := limitOf(in.Limit, MaxLimit, MaxLimit)
	if err != nil {
		return nil, err
	}
	if _, err := h.store.Stream(ctx, group, in.LogStreamName); err != nil {
		if errdefs.IsNotFound(err) {
			if _, gerr := h.store.Group(ctx, group); gerr != nil {
				return nil, notFoundGroup(gerr)
			}
			return nil, &apiError{typ: "ResourceNotFoundException", msg: "The specified log stream does not exist.", status: http.StatusBadRequest}
		}
		return nil, err
	}
	q := Query{
		Group: group, Streams: []string{in.LogStreamName},
		Start: msTime(in.StartTime), End: msTime(in.EndTime), Limit: limit,
	}
	backward := in.StartFromHead == nil || !*in.StartFromHead
	var at Position
	if in.NextToken != "" {
		dir, pos, ok := strings.Cut(in.NextToken, "/")
		p, perr := ParsePosition(pos)
		if !ok || perr != nil || (dir != "f" && dir != "b") {
			return nil, invalidParam("The specified nextToken is invalid.")
		}
		at, backward = p, dir == "b"
	}
	if backward {
		q.Last, q.To = true, at
	} else {
		q.From = at
	}
	page, err := h.store.Events(ctx, q)
	if err != nil {
		return nil, notFoundGroup(err)
	}
	out := getLogEventsOut{Events: make([]outputEvent, 0, len(page.Events))}
	for _, e := range page.Events {
		out.Events = append(out.Events, outputEvent{Timestamp: e.Timestamp.UnixMilli(), Message: e.Message, IngestionTime: e.Ingestion.UnixMilli()})
	}
	if n := len(page.Events); n > 0 {
		out.NextForwardToken = "f/" + page.Events[n-1].Pos.next().String()
		out.NextBackwardToken = "b/" + page.Events[0].Pos.String()
	} else {
		out.NextForwardToken = "f/" + at.String()
		out.NextBackwardToken = "b/" + at.String()
		if in.NextToken != "" {
			out.NextForwardToken, out.NextBackwardToken = in.NextToken, in.NextToken
		}
	}
	return out, nil
}

// --- FilterLogEvents ---

type filterLogEventsIn struct {
	LogGroupName        string   `json:"logGroupName"`
	LogGroupIdentifier  string   `json:"logGroupIdentifier"`
	LogStreamNames      []string `json:"logStreamNames"`
	LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
	StartTime           *int64   `json:"startTime"`
	EndTime             *int64   `json:"endTime"`
	FilterPattern       string   `json:"filterPattern"`
	Limit               *int32   `json:"limit"`
	NextToken           string   `json:"nextToken"`
	Interleaved         bool     `json:"interleaved"`
	Unmask              bool     `json:"unmask"`
}

type filteredEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

type filterLogEventsOut struct {
	Events             []filteredEvent `json:"events"`
	SearchedLogStreams []struct{}      `json:"searchedLogStreams"`
	NextToken          string          `json:"nextToken,omitempty"`
}

// FilterLogEvents returns nextToken only when more matching events exist,
// so `aws logs tail --follow` sleeps between polls instead of spinning.
func (h *Handler) filterLogEvents(ctx context.Context, in *filterLogEventsIn) (any, error) {
	group, err := groupName(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != "" {
		return nil, invalidParam("logStreamNames and logStreamNamePrefix are mutually exclusive")
	}
	limit, err := limitOf(in.Limit, MaxLimit, MaxLimit)
	if err != nil {
		return nil, err
	}
	pat, err := ParsePattern(in.FilterPattern)
	if err != nil {
		return nil, invalidParam("Invalid filter pattern: %v", err)
	}
	q := Query{
		Group: group, Streams: in.LogStreamNames, StreamPrefix: in.LogStreamNamePrefix,
		Start: msTime(in.StartTime), Pattern: pat, Limit: limit,
	}
	if in.EndTime != nil { // FilterLogEvents' endTime is inclusive
		q.End = time.UnixMilli(*in.EndTime + 1)
	}
	if in.NextToken != "" {
		if q.From, err = ParsePosition(in.NextToken); err != nil {
			return nil, invalidParam("The specified nextToken is invalid.")
		}
	}
	page, err := h.store.Events(ctx, q)
	if err != nil {
		return nil, notFoundGroup(err)
	}
	out := filterLogEventsOut{Events: make([]filteredEvent, 0, len(page.Events)), SearchedLogStreams: []struct{}{}}
	for _, e := range page.Events {
		out.Events = append(out.Events, filteredEvent{
			LogStreamName: e.Stream, Timestamp: e.Timestamp.UnixMilli(), Message: e.Message,
			IngestionTime: e.Ingestion.UnixMilli(), EventID: e.Pos.String(),
		})
	}
	if page.More && len(page.Events) > 0 {
		out.NextToken = page.Events[len(page.Events)-1].Pos.next().String()
	}
	return out, nil
}

// --- PutLogEvents ---

type putLogEventsIn struct {
	LogGroupName  string `json:"logGroupName"`
	LogStreamName string `json:"logStreamName"`
	LogEvents     []struct {
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	} `json:"logEvents"`
	SequenceToken string `json:"sequenceToken"`
}

type rejectedInfo struct {
	TooNewLogEventStartIndex *int `json:"tooNewLogEventStartIndex,omitempty"`
	TooOldLogEventEndIndex   *int `json:"tooOldLogEventEndIndex,omitempty"`
}

type putLogEventsOut struct {
	NextSequenceToken     string        `json:"nextSequenceToken"`
	RejectedLogEventsInfo *rejectedInfo `json:"rejectedLogEventsInfo,omitempty"`
}

// PutLogEvents requires an existing stream (CreateLogStream), as AWS does.
// Events further than MaxEventSkew from now are rejected and reported in
// rejectedLogEventsInfo; the rest are appended.
func (h *Handler) putLogEvents(ctx context.Context, in *putLogEventsIn) (any, error) {
	if len(in.LogEvents) == 0 || len(in.LogEvents) > maxBatchEvents {
		return nil, invalidParam("logEvents must hold 1 to %d events", maxBatchEvents)
	}
	if _, err := h.store.Stream(ctx, in.LogGroupName, in.LogStreamName); err != nil {
		if errdefs.IsNotFound(err) {
			if _, gerr := h.store.Group(ctx, in.LogGroupName); gerr != nil {
				return nil, notFoundGroup(gerr)
			}
			return nil, &apiError{typ: "ResourceNotFoundException", msg: "The specified log stream does not exist.", status: http.StatusBadRequest}
		}
		return nil, err
	}
	now := h.store.clk.Now()
	lo, hi := now.Add(-h.store.cfg.MaxEventSkew).UnixMilli(), now.Add(h.store.cfg.MaxEventSkew).UnixMilli()
	var rej rejectedInfo
	events := make([]Event, 0, len(in.LogEvents))
	for i, e := range in.LogEvents {
		if i > 0 && e.Timestamp < in.LogEvents[i-1].Timestamp {
			return nil, invalidParam("Log events in a single PutLogEvents request must be in chronological order.")
		}
		switch {
		case e.Timestamp < lo:
			rej.TooOldLogEventEndIndex = &i
		case e.Timestamp > hi:
			if rej.TooNewLogEventStartIndex == nil {
				rej.TooNewLogEventStartIndex = &i
			}
		default:
			events = append(events, Event{Timestamp: time.UnixMilli(e.Timestamp), Message: e.Message})
		}
	}
	if err := h.store.Append(ctx, in.LogGroupName, in.LogStreamName, events); err != nil {
		return nil, err
	}
	out := putLogEventsOut{NextSequenceToken: "1"}
	if rej.TooNewLogEventStartIndex != nil || rej.TooOldLogEventEndIndex != nil {
		out.RejectedLogEventsInfo = &rej
	}
	return out, nil
}
