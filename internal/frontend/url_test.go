package frontend_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/frontend"
	"github.com/ignis-run/ignis/internal/invoke"
)

// urlInvoker answers every invoke with respond(event) and records the
// events it was given.
type urlInvoker struct {
	mu      sync.Mutex
	events  [][]byte
	respond func(event []byte) (*invoke.Result, error)
}

func (u *urlInvoker) Invoke(_ context.Context, req *invoke.Request) (*invoke.Result, error) {
	u.mu.Lock()
	u.events = append(u.events, req.Payload)
	u.mu.Unlock()
	return u.respond(req.Payload)
}

func (u *urlInvoker) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.events)
}

// echoEvent returns the event it got as a JSON body.
func echoEvent(event []byte) (*invoke.Result, error) {
	b, _ := json.Marshal(events.LambdaFunctionURLResponse{StatusCode: 200, Body: string(event), Headers: map[string]string{"Content-Type": "application/json"}})
	return &invoke.Result{Payload: b}, nil
}

var functionURLRE = regexp.MustCompile(`^http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:[0-9]+/$`)

func createURL(t *testing.T, c *lambda.Client, fn string, in *lambda.CreateFunctionUrlConfigInput) string {
	t.Helper()
	if in == nil {
		in = &lambda.CreateFunctionUrlConfigInput{AuthType: types.FunctionUrlAuthTypeNone}
	}
	in.FunctionName = aws.String(fn)
	out, err := c.CreateFunctionUrlConfig(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateFunctionUrlConfig: %v", err)
	}
	m := functionURLRE.FindStringSubmatch(aws.ToString(out.FunctionUrl))
	if m == nil {
		t.Fatalf("FunctionUrl %q", aws.ToString(out.FunctionUrl))
	}
	return m[1]
}

func TestFrontend_FunctionURLConfig_SDK(t *testing.T) {
	s := startServer(t)
	c := s.client(testAK, testSK)
	ctx := context.Background()
	createPy(t, c, "web", makeZip(t, pyZip))

	if _, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); errorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("get before create: %v", err)
	}
	created, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{
		FunctionName: aws.String("web"),
		AuthType:     types.FunctionUrlAuthTypeNone,
		Cors:         &types.Cors{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET"}, MaxAge: aws.Int32(300)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !functionURLRE.MatchString(aws.ToString(created.FunctionUrl)) || aws.ToString(created.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:web" ||
		created.InvokeMode != types.InvokeModeBuffered || created.Cors == nil || aws.ToInt32(created.Cors.MaxAge) != 300 {
		t.Fatalf("create: %+v", created)
	}
	if _, err := time.Parse(time.RFC3339Nano, aws.ToString(created.CreationTime)); err != nil {
		t.Errorf("CreationTime %q: %v", aws.ToString(created.CreationTime), err)
	}
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone})
	if errorCode(err) != "ResourceConflictException" {
		t.Fatalf("second create: %v", err)
	}
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("1"), AuthType: types.FunctionUrlAuthTypeNone})
	if errorCode(err) != "InvalidParameterValueException" {
		t.Fatalf("create for a version: %v", err)
	}
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("nope"), AuthType: types.FunctionUrlAuthTypeNone})
	if errorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("create for a missing alias: %v", err)
	}
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("nofn"), AuthType: types.FunctionUrlAuthTypeNone})
	if errorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("create for a missing function: %v", err)
	}

	up, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeAwsIam})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(up.FunctionUrl) != aws.ToString(created.FunctionUrl) || up.AuthType != types.FunctionUrlAuthTypeAwsIam || up.LastModifiedTime == nil || up.Cors == nil {
		t.Fatalf("update: %+v", up)
	}
	got, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
	if err != nil || got.AuthType != types.FunctionUrlAuthTypeAwsIam || aws.ToString(got.CreationTime) != aws.ToString(created.CreationTime) {
		t.Fatalf("get: %+v, %v", got, err)
	}
	list, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
	if err != nil || len(list.FunctionUrlConfigs) != 1 || aws.ToString(list.FunctionUrlConfigs[0].FunctionUrl) != aws.ToString(created.FunctionUrl) {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web"), MaxItems: aws.Int32(51)}); errorCode(err) != "InvalidParameterValueException" {
		t.Fatalf("list with MaxItems 51: %v", err)
	}
	if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); errorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("second delete: %v", err)
	}
}

// urlRequest sends an unsigned request to the function URL id on endpoint in
// its Host form (or path form).
func urlRequest(t *testing.T, endpoint, id, method, path string, body []byte, pathForm bool, hdr http.Header) *http.Response {
	t.Helper()
	u, _ := url.Parse(endpoint)
	target := endpoint + path
	if pathForm {
		target = endpoint + "/" + id + path
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if !pathForm {
		req.Host = id + ".lambda-url.us-east-1.localhost:" + u.Port()
	}
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrontend_FunctionURL_Event(t *testing.T) {
	inv := &urlInvoker{respond: echoEvent}
	s := startServer(t, func(c *frontend.Config) { c.Invoker = inv })
	c := s.client(testAK, testSK)
	createPy(t, c, "web", makeZip(t, pyZip))
	id := createURL(t, c, "web", nil)

	for _, pathForm := range []bool{false, true} {
		hdr := http.Header{"Cookie": {"a=1; b=2"}, "X-Multi": {"x", "y"}, "Content-Type": {"text/plain"}, "User-Agent": {"ua/1"}}
		resp := urlRequest(t, s.endpoint, id, "POST", "/p/a%20b?x=1&x=2&y=%2F", []byte("hello"), pathForm, hdr)
		body := readAll(t, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("pathForm %v: %d %s", pathForm, resp.StatusCode, body)
		}
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
		want := map[string]string{
			"version": ev.Version, "rawPath": ev.RawPath, "rawQueryString": ev.RawQueryString,
			"cookies": strings.Join(ev.Cookies, "|"), "x-multi": ev.Headers["x-multi"], "cookie header": ev.Headers["cookie"],
			"x": ev.QueryStringParameters["x"], "y": ev.QueryStringParameters["y"], "body": ev.Body,
			"apiId": ev.RequestContext.APIID, "method": ev.RequestContext.HTTP.Method, "path": ev.RequestContext.HTTP.Path,
			"ua": ev.RequestContext.HTTP.UserAgent, "accountId": ev.RequestContext.AccountID,
		}
		for k, v := range map[string]string{
			"version": "2.0", "rawPath": "/p/a%20b", "rawQueryString": "x=1&x=2&y=%2F",
			"cookies": "a=1|b=2", "x-multi": "x,y", "cookie header": "",
			"x": "1,2", "y": "/", "body": "hello",
			"apiId": id, "method": "POST", "path": "/p/a b",
			"ua": "ua/1", "accountId": "anonymous",
		} {
			if want[k] != v {
				t.Errorf("pathForm %v: %s = %q, want %q", pathForm, k, want[k], v)
			}
		}
		var raw map[string]any
		_ = json.Unmarshal(body, &raw)
		rc, _ := raw["requestContext"].(map[string]any)
		if raw["routeKey"] != "$default" || rc["stage"] != "$default" || rc["routeKey"] != "$default" || ev.IsBase64Encoded {
			t.Errorf("pathForm %v: event %s", pathForm, body)
		}
	}
}

func TestFrontend_FunctionURL_Responses(t *testing.T) {
	var mu sync.Mutex
	var answer *invoke.Result
	var answerErr error
	inv := &urlInvoker{respond: func([]byte) (*invoke.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		return answer, answerErr
	}}
	s := startServer(t, func(c *frontend.Config) { c.Invoker = inv })
	c := s.client(testAK, testSK)
	createPy(t, c, "web", makeZip(t, pyZip))
	id := createURL(t, c, "web", nil)

	tests := []struct {
		name       string
		payload    string
		err        error
		fnErr      string
		wantStatus int
		wantBody   string
		wantHeader map[string][]string
	}{
		{"plain json", `{"a":1}`, nil, "", 200, `{"a":1}`, map[string][]string{"Content-Type": {"application/json"}}},
		{"json string", `"hi"`, nil, "", 200, `"hi"`, nil},
		{"redirect with cookies", `{"statusCode":302,"headers":{"Location":"/next"},"cookies":["s=1; Path=/","t=2"]}`, nil, "", 302, "",
			map[string][]string{"Location": {"/next"}, "Set-Cookie": {"s=1; Path=/", "t=2"}}},
		{"base64 body", `{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"body":"AAEC/w==","isBase64Encoded":true}`, nil, "", 200, "\x00\x01\x02\xff", nil},
		{"multi value headers", `{"statusCode":201,"multiValueHeaders":{"X-A":["1","2"]},"body":"x"}`, nil, "", 201, "x", map[string][]string{"X-A": {"1", "2"}}},
		{"function error", `{"errorMessage":"boom"}`, nil, "Unhandled", 502, `{"Message":"Internal Server Error"}`, nil},
		{"bad status", `{"statusCode":"abc"}`, nil, "", 502, `{"Message":"Internal Server Error"}`, nil},
		{"header injection", `{"statusCode":200,"headers":{"X-A":"1\r\nX-B: 2"}}`, nil, "", 502, `{"Message":"Internal Server Error"}`, nil},
		{"bad base64", `{"statusCode":200,"body":"!!","isBase64Encoded":true}`, nil, "", 502, `{"Message":"Internal Server Error"}`, nil},
		{"throttled", "", errdefs.ErrThrottled, "", 429, `{"Message":"Rate Exceeded."}`, nil},
		{"unavailable", "", errdefs.ErrUnavailable, "", 502, `{"Message":"Internal Server Error"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			answer, answerErr = &invoke.Result{Payload: []byte(tt.payload), FunctionError: tt.fnErr}, tt.err
			mu.Unlock()
			resp := urlRequest(t, s.endpoint, id, "GET", "/", nil, false, nil)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			for k, want := range tt.wantHeader {
				if got := resp.Header.Values(k); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestFrontend_FunctionURL_BinaryBodyAndLimits(t *testing.T) {
	inv := &urlInvoker{respond: echoEvent}
	s := startServer(t, func(c *frontend.Config) { c.Invoker = inv })
	c := s.client(testAK, testSK)
	createPy(t, c, "web", makeZip(t, pyZip))
	id := createURL(t, c, "web", nil)

	bin := []byte{0, 1, 2, 0xff, 0xfe, 'a'}
	resp := urlRequest(t, s.endpoint, id, "POST", "/", bin, false, http.Header{"Content-Type": {"application/octet-stream"}})
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(readAll(t, resp.Body), &ev); err != nil || !ev.IsBase64Encoded || ev.Body != "AAEC//5h" {
		t.Fatalf("binary body: %+v, %v", ev, err)
	}
	big := bytes.Repeat([]byte("a"), frontend.MaxInvokeBodyBytes+1)
	resp = urlRequest(t, s.endpoint, id, "POST", "/", big, false, http.Header{"Content-Type": {"text/plain"}})
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body: %d", resp.StatusCode)
	}
	// 5 MB of binary is 6.7 MB once base64-encoded in the event.
	resp = urlRequest(t, s.endpoint, id, "POST", "/", bytes.Repeat([]byte{0xff}, 5<<20), false, nil)
	if resp.StatusCode != 413 {
		t.Fatalf("oversized event: %d", resp.StatusCode)
	}
	resp = urlRequest(t, s.endpoint, strings.Repeat("z", 32), "GET", "/", nil, false, nil)
	if b := readAll(t, resp.Body); resp.StatusCode != 404 || string(b) != `{"Message":"Not Found"}` {
		t.Fatalf("unknown url id: %d %s", resp.StatusCode, b)
	}
}

func TestFrontend_FunctionURL_CORS(t *testing.T) {
	inv := &urlInvoker{respond: func([]byte) (*invoke.Result, error) {
		return &invoke.Result{Payload: []byte(`{"statusCode":200,"headers":{"Access-Control-Allow-Origin":"https://evil.example"},"body":"ok"}`)}, nil
	}}
	s := startServer(t, func(c *frontend.Config) { c.Invoker = inv })
	c := s.client(testAK, testSK)
	createPy(t, c, "web", makeZip(t, pyZip))
	id := createURL(t, c, "web", &lambda.CreateFunctionUrlConfigInput{AuthType: types.FunctionUrlAuthTypeNone, Cors: &types.Cors{
		AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"x-custom"},
		ExposeHeaders: []string{"x-out"}, MaxAge: aws.Int32(600), AllowCredentials: aws.Bool(true),
	}})

	pre := urlRequest(t, s.endpoint, id, "OPTIONS", "/any", nil, false, http.Header{
		"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"x-custom"},
	})
	want := map[string]string{
		"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Methods": "GET,POST",
		"Access-Control-Allow-Headers": "x-custom", "Access-Control-Max-Age": "600", "Access-Control-Allow-Credentials": "true",
	}
	if pre.StatusCode != 200 {
		t.Fatalf("preflight: %d", pre.StatusCode)
	}
	for k, v := range want {
		if got := pre.Header.Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	if n := inv.count(); n != 0 {
		t.Fatalf("the preflight invoked the function (%d invokes)", n)
	}
	other := urlRequest(t, s.endpoint, id, "OPTIONS", "/", nil, false, http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}})
	if other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from a foreign origin allowed: %v", other.Header)
	}

	resp := urlRequest(t, s.endpoint, id, "GET", "/", nil, false, http.Header{"Origin": {"https://app.example"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Access-Control-Expose-Headers") != "x-out" {
		t.Errorf("response CORS headers: %v", resp.Header)
	}
	resp = urlRequest(t, s.endpoint, id, "GET", "/", nil, false, http.Header{"Origin": {"https://evil.example"}})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin got Access-Control-Allow-Origin %q (the function's own must be replaced)", got)
	}
}

func TestFrontend_FunctionURL_IAM(t *testing.T) {
	inv := &urlInvoker{respond: echoEvent}
	s := startServer(t, func(c *frontend.Config) { c.Invoker = inv })
	c := s.client(testAK, testSK)
	createPy(t, c, "web", makeZip(t, pyZip))
	id := createURL(t, c, "web", &lambda.CreateFunctionUrlConfigInput{AuthType: types.FunctionUrlAuthTypeAwsIam})

	resp := urlRequest(t, s.endpoint, id, "GET", "/x", nil, false, nil)
	if b := readAll(t, resp.Body); resp.StatusCode != 403 || string(b) != `{"Message":"Forbidden"}` {
		t.Fatalf("unsigned: %d %s", resp.StatusCode, b)
	}
	for _, tc := range []struct {
		name     string
		sk       string
		pathForm bool
		want     int
	}{{"signed host form", testSK, false, 200}, {"signed path form", testSK, true, 200}, {"wrong key", "wrong", false, 403}} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(s.endpoint)
			target := "http://" + id + ".lambda-url.us-east-1.localhost:" + u.Port() + "/x?q=1"
			if tc.pathForm {
				target = s.endpoint + "/" + id + "/x?q=1"
			}
			body := []byte(`{"k":"v"}`)
			req, _ := http.NewRequest("POST", target, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			sum := sha256.Sum256(body)
			if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: tc.sk},
				req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
			// *.localhost resolves to loopback in browsers and curl; Go's
			// resolver may not, so dial the server directly.
			client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, u.Host)
			}}}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b := readAll(t, resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			if tc.want != 200 {
				return
			}
			var ev events.LambdaFunctionURLRequest
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.IAM == nil || ev.RequestContext.Authorizer.IAM.AccessKey != testAK || ev.Headers["authorization"] != "" || ev.Body != `{"k":"v"}` {
				t.Errorf("event: %s", b)
			}
		})
	}
}

func TestFrontend_URLHandler_ServesOnlyURLs(t *testing.T) {
	inv := &urlInvoker{respond: echoEvent}
	s := startServer(t, func(c *frontend.Config) { c.Invoker = inv })
	c := s.client(testAK, testSK)
	createPy(t, c, "web", makeZip(t, pyZip))
	id := createURL(t, c, "web", nil)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.fe.URLHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	urlEndpoint := "http://" + ln.Addr().String()

	// The control plane is not there, signed or not.
	for _, path := range []string{"/2015-03-31/functions", "/2015-03-31/functions/web/invocations", "/", "/_ignis/metrics"} {
		req, _ := http.NewRequest("GET", urlEndpoint+path, nil)
		sum := sha256.Sum256(nil)
		_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || string(b) != `{"Message":"Not Found"}` {
			t.Errorf("GET %s on the url listener: %d %s", path, resp.StatusCode, b)
		}
	}
	for _, pathForm := range []bool{false, true} {
		resp := urlRequest(t, urlEndpoint, id, "GET", "/hi", nil, pathForm, nil)
		if b := readAll(t, resp.Body); resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"rawPath":"/hi"`)) {
			t.Errorf("pathForm %v on the url listener: %d %s", pathForm, resp.StatusCode, b)
		}
	}
}
