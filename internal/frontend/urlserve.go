package frontend

// Serving function URLs. A request is for a function URL when
//
//	its Host is   <url-id>.lambda-url.<anything>[:port]   (path: all of it), or
//	its path is   /<url-id>[/rest]                          (path: /rest)
//
// where <url-id> is 32 lowercase letters and digits. No Lambda API route
// starts with such a segment (they start with a date, /_ignis/ or are /),
// so the API listener serves both forms beside the API; the URL listener
// (URLHandler) serves only them and answers everything else 404.
//
// A request then goes:
//
//	url id ─► LookupFunctionURL (404 if none) ─► CORS preflight answered here
//	       ─► body read (6 MB, 413) ─► AWS_IAM: SigV4 check (403 {"Message":"Forbidden"})
//	       ─► event (urlevent.go) ─► Invoker.Invoke, as the Invoke route
//	       ─► response mapped back (urlevent.go), CORS headers added

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/invoke"
	"github.com/ignis-run/ignis/internal/registry"
)

// urlTarget is where a function URL request goes.
type urlTarget struct {
	id string
	// rawPath is the path as sent (still escaped), path the decoded one;
	// both without the /<url-id> prefix of the path form.
	rawPath, path string
	// hostForm is true when the Host named the URL.
	hostForm bool
}

// functionURLTarget reports whether r is for a function URL, and which.
func functionURLTarget(r *http.Request) (urlTarget, bool) {
	rawPath := r.URL.EscapedPath()
	if i := strings.IndexByte(r.RequestURI, '?'); i >= 0 && strings.HasPrefix(r.RequestURI, "/") {
		rawPath = r.RequestURI[:i]
	} else if strings.HasPrefix(r.RequestURI, "/") {
		rawPath = r.RequestURI
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if id, rest, ok := strings.Cut(host, "."); ok && strings.HasPrefix(strings.ToLower(rest), "lambda-url.") {
		id = strings.ToLower(id)
		if registry.ValidURLID(id) {
			return urlTarget{id: id, rawPath: rawPath, path: r.URL.Path, hostForm: true}, true
		}
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !registry.ValidURLID(seg) {
		return urlTarget{}, false
	}
	t := urlTarget{id: seg, rawPath: strings.TrimPrefix(rawPath, "/"+seg), path: strings.TrimPrefix(r.URL.Path, "/"+seg)}
	if t.rawPath == "" {
		t.rawPath = "/"
	}
	if t.path == "" {
		t.path = "/"
	}
	return t, true
}

// URLHandler returns the handler of a listener that serves function URLs
// and nothing else (ignis server --url-listen): a Lambda API path there is
// answered 404, never served.
func (f *Frontend) URLHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		w.Header().Set("x-amzn-RequestId", id)
		t, ok := functionURLTarget(r)
		if !ok {
			writeURLMessage(w, http.StatusNotFound, "Not Found")
			return
		}
		f.serveFunctionURL(w, r, id, t)
	})
}

// writeURLMessage writes Lambda URLs' error shape: {"Message":"…"}.
func writeURLMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"Message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveFunctionURL serves one function URL request.
func (f *Frontend) serveFunctionURL(w http.ResponseWriter, r *http.Request, requestID string, t urlTarget) {
	ctx := r.Context()
	log := f.log.With("urlId", t.id)
	cfg, err := f.reg.LookupFunctionURL(ctx, t.id)
	if errdefs.IsNotFound(err) {
		writeURLMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	if err != nil {
		log.ErrorContext(ctx, "looking up function url", "err", err)
		writeURLMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if cfg.Cors != nil && isPreflight(r) {
		writePreflight(w, r, cfg.Cors)
		return
	}
	payload, err := readBody(r, MaxInvokeBodyBytes)
	if err != nil {
		if status, _, _ := mapError(err); status == http.StatusRequestEntityTooLarge {
			writeURLMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return
		}
		writeURLMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	now := f.cfg.Clock.Now()
	ev := urlEvent{
		Version:               "2.0",
		RouteKey:              "$default",
		RawPath:               t.rawPath,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               eventCookies(r.Header),
		Headers:               eventHeaders(r.Header),
		QueryStringParameters: eventQuery(r.URL.RawQuery),
		RequestContext: urlRequestContext{
			AccountID:    "anonymous",
			APIID:        t.id,
			DomainName:   t.id + ".lambda-url." + f.arns.Region + ".localhost",
			DomainPrefix: t.id,
			HTTP: urlHTTP{
				Method:    r.Method,
				Path:      t.path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
			RequestID: requestID,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      now.UTC().Format(urlEventTimeFormat),
			TimeEpoch: now.UnixMilli(),
		},
	}
	if t.hostForm {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		ev.RequestContext.DomainName = strings.ToLower(host)
	}
	ev.Headers["host"] = r.Host
	ev.Headers["x-forwarded-for"] = ev.RequestContext.HTTP.SourceIP
	ev.Headers["x-forwarded-proto"] = "http"
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		ev.Headers["x-forwarded-port"] = port
	}
	traceID := r.Header.Get("X-Amzn-Trace-Id")
	if traceID == "" {
		traceID = newTraceID(now)
		ev.Headers["x-amzn-trace-id"] = traceID
	}
	if cfg.AuthType == registry.URLAuthIAM {
		if err := f.verify.check(r, payload, "lambda"); err != nil {
			log.DebugContext(ctx, "function url request refused", "err", err)
			writeURLMessage(w, http.StatusForbidden, "Forbidden")
			return
		}
		ev.RequestContext.AccountID = f.arns.AccountID
		ev.RequestContext.Authorizer = &urlAuthorizer{IAM: &urlIAM{
			AccessKey: f.cfg.Credentials.AccessKeyID,
			AccountID: f.arns.AccountID,
			CallerID:  f.cfg.Credentials.AccessKeyID,
			UserArn:   "arn:aws:iam::" + f.arns.AccountID + ":root",
			UserID:    f.arns.AccountID,
		}}
		// The signature is the caller's credential: the function has no
		// business seeing it.
		delete(ev.Headers, "authorization")
	}
	ev.setBody(payload, r.Header.Get("Content-Type"))
	event, err := json.Marshal(&ev)
	if err != nil {
		log.ErrorContext(ctx, "encoding function url event", "err", err)
		writeURLMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if len(event) > MaxInvokeBodyBytes {
		writeURLMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	resp, status := f.invokeFunctionURL(r, requestID, traceID, &cfg, event)
	if status != 0 {
		msg := http.StatusText(status)
		switch status {
		case http.StatusTooManyRequests:
			msg = "Rate Exceeded."
		case http.StatusBadGateway:
			msg = "Internal Server Error" // Lambda's words for a failed function
		}
		addCorsHeaders(w.Header(), r, cfg.Cors)
		writeURLMessage(w, status, msg)
		return
	}
	h := w.Header()
	for k, vs := range resp.headers {
		h[k] = vs
	}
	addCorsHeaders(h, r, cfg.Cors)
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(resp.body)
	}
}

// invokeFunctionURL runs the function through the Invoker, exactly as the
// Invoke route does, and maps its result; a non-zero status is an error
// answer instead (502 function error or bad response, 429 throttled, …).
func (f *Frontend) invokeFunctionURL(r *http.Request, requestID, traceID string, cfg *registry.URLConfig, event []byte) (urlResponse, int) {
	ctx := r.Context()
	log := f.log.With("urlId", cfg.URLID, "function", cfg.FunctionName)
	if f.cfg.Invoker == nil {
		return urlResponse{}, http.StatusNotImplemented
	}
	fn, err := f.reg.Resolve(ctx, cfg.FunctionName, cfg.Qualifier)
	if errdefs.IsNotFound(err) {
		return urlResponse{}, http.StatusNotFound
	}
	if err != nil {
		log.ErrorContext(ctx, "resolving function url target", "err", err)
		return urlResponse{}, http.StatusInternalServerError
	}
	res, err := f.cfg.Invoker.Invoke(ctx, &invoke.Request{
		RequestID:      requestID,
		Function:       fn,
		InvocationType: "RequestResponse",
		LogType:        "None",
		TraceID:        traceID,
		Payload:        event,
	})
	switch {
	case errdefs.IsThrottled(err):
		return urlResponse{}, http.StatusTooManyRequests
	case errors.Is(err, errdefs.ErrTooLarge):
		return urlResponse{}, http.StatusRequestEntityTooLarge
	case errdefs.IsNotFound(err):
		return urlResponse{}, http.StatusNotFound
	case err != nil:
		log.ErrorContext(ctx, "function url invoke failed", "err", err)
		return urlResponse{}, http.StatusBadGateway
	}
	if res.FunctionError != "" {
		// Lambda hides the error from the URL's caller; it is in the log.
		log.InfoContext(ctx, "function url invoke: function error", "requestId", requestID, "functionError", res.FunctionError)
		return urlResponse{}, http.StatusBadGateway
	}
	resp, err := mapURLResponse(res.Payload)
	if err != nil {
		log.InfoContext(ctx, "function url invoke: bad response", "requestId", requestID, "err", err)
		return urlResponse{}, http.StatusBadGateway
	}
	return resp, 0
}

// sourceIP is the client's address without the port.
func sourceIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// newTraceID returns an X-Ray style trace header value.
func newTraceID(now time.Time) string {
	id := strings.ReplaceAll(uuid.NewString(), "-", "")
	return "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + id[:24]
}
