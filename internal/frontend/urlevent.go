package frontend

// The function URL wire formats, as Lambda has them: the request event
// (HTTP API payload format 2.0) and the mapping of a function's response
// back to HTTP. Both are pure functions of their inputs so they can be
// tested and fuzzed without a server.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// urlEvent is the event a function URL request is delivered as. It is
// aws-lambda-go's events.LambdaFunctionURLRequest plus the members Lambda
// sends that that type leaves out (routeKey, stage).
type urlEvent struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        urlRequestContext `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type urlRequestContext struct {
	AccountID    string         `json:"accountId"`
	APIID        string         `json:"apiId"`
	Authorizer   *urlAuthorizer `json:"authorizer,omitempty"`
	DomainName   string         `json:"domainName"`
	DomainPrefix string         `json:"domainPrefix"`
	HTTP         urlHTTP        `json:"http"`
	RequestID    string         `json:"requestId"`
	RouteKey     string         `json:"routeKey"`
	Stage        string         `json:"stage"`
	Time         string         `json:"time"`
	TimeEpoch    int64          `json:"timeEpoch"`
}

type urlAuthorizer struct {
	IAM *urlIAM `json:"iam,omitempty"`
}

type urlIAM struct {
	AccessKey       string  `json:"accessKey"`
	AccountID       string  `json:"accountId"`
	CallerID        string  `json:"callerId"`
	CognitoIdentity *string `json:"cognitoIdentity"`
	PrincipalOrgID  *string `json:"principalOrgId"`
	UserArn         string  `json:"userArn"`
	UserID          string  `json:"userId"`
}

type urlHTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// urlEventTimeFormat is requestContext.time's format.
const urlEventTimeFormat = "02/Jan/2006:15:04:05 -0700"

// eventHeaders returns h as the event's headers: names lower-cased, the
// values of a repeated header joined with ",", cookies left out (they
// travel in the event's cookies).
func eventHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h)+4)
	for k, vs := range h {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			continue
		}
		if prev, ok := out[lk]; ok {
			out[lk] = prev + "," + strings.Join(vs, ",")
			continue
		}
		out[lk] = strings.Join(vs, ",")
	}
	return out
}

// eventCookies splits the Cookie headers into the event's cookies.
func eventCookies(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Cookie") {
		for c := range strings.SplitSeq(line, ";") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// eventQuery parses a raw query string into the event's
// queryStringParameters (repeated keys joined with ","); nil when empty.
// Undecodable pairs are kept as sent rather than failing the request.
func eventQuery(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	out := make(map[string]string)
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if prev, ok := out[k]; ok {
			out[k] = prev + "," + v
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// isTextContent reports whether a body of this Content-Type is passed as
// text, as Lambda decides: text/*, and JSON, XML and JavaScript types;
// everything else (including no type, and form posts) is base64-encoded.
func isTextContent(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"):
		return true
	case mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/x-javascript":
		return true
	}
	return false
}

// eventBody sets the event's body and isBase64Encoded for body. A body
// declared text but not valid UTF-8 is base64-encoded too: JSON would
// mangle it otherwise.
func (e *urlEvent) setBody(body []byte, contentType string) {
	if len(body) == 0 {
		return
	}
	if isTextContent(contentType) && utf8.Valid(body) {
		e.Body = string(body)
		return
	}
	e.Body = base64.StdEncoding.EncodeToString(body)
	e.IsBase64Encoded = true
}

// urlResponse is the HTTP response a function's result maps to.
type urlResponse struct {
	status  int
	headers http.Header
	body    []byte
}

// structuredResponse is the result shape Lambda recognises by its
// statusCode member.
type structuredResponse struct {
	StatusCode        json.RawMessage     `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// errBadFunctionResponse is a result Lambda would answer with 502.
var errBadFunctionResponse = errors.New("function response is not a valid function URL response")

// mapURLResponse maps a function's result to the HTTP response, as Lambda
// does: a JSON object with statusCode gives status, headers (plus
// multiValueHeaders), cookies (as Set-Cookie) and body (base64-decoded when
// isBase64Encoded); any other JSON value is sent as it is, 200
// application/json. Errors are errBadFunctionResponse (→ 502).
func mapURLResponse(payload []byte) (urlResponse, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var s structuredResponse
		if err := json.Unmarshal(trimmed, &s); err == nil && s.StatusCode != nil {
			return structured(&s)
		} else if err != nil {
			// An object with a statusCode member of the right type but
			// other members of the wrong one is a broken response; an
			// object without statusCode is just data.
			var probe struct {
				StatusCode json.RawMessage `json:"statusCode"`
			}
			if json.Unmarshal(trimmed, &probe) == nil && probe.StatusCode != nil {
				return urlResponse{}, fmt.Errorf("%w: %v", errBadFunctionResponse, err)
			}
		}
	}
	h := make(http.Header)
	h.Set("Content-Type", "application/json")
	return urlResponse{status: http.StatusOK, headers: h, body: payload}, nil
}

// hopHeaders are response headers the function may not set: net/http
// writes them from what it actually sends.
var hopHeaders = []string{"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Trailer"}

func structured(s *structuredResponse) (urlResponse, error) {
	var status int
	if err := json.Unmarshal(s.StatusCode, &status); err != nil || status < 100 || status > 599 {
		return urlResponse{}, fmt.Errorf("%w: statusCode %s", errBadFunctionResponse, truncateString(string(s.StatusCode), 40))
	}
	h := make(http.Header)
	add := func(k, v string) error {
		if !validHeaderName(k) || !validHeaderValue(v) {
			return fmt.Errorf("%w: invalid header %q", errBadFunctionResponse, truncateString(k, 40))
		}
		h.Add(k, v)
		return nil
	}
	for k, vs := range s.MultiValueHeaders {
		for _, v := range vs {
			if err := add(k, v); err != nil {
				return urlResponse{}, err
			}
		}
	}
	for k, v := range s.Headers {
		h.Del(k) // headers wins over multiValueHeaders
		if err := add(k, v); err != nil {
			return urlResponse{}, err
		}
	}
	for _, c := range s.Cookies {
		if err := add("Set-Cookie", c); err != nil {
			return urlResponse{}, err
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	body := []byte(s.Body)
	if s.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(s.Body)
		if err != nil {
			return urlResponse{}, fmt.Errorf("%w: body is not base64: %v", errBadFunctionResponse, err)
		}
		body = b
	}
	return urlResponse{status: status, headers: h, body: body}, nil
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters other than tab: a CR or LF
// from the function must never split the response.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
