package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

const awsCLI = "/usr/bin/aws"

// buildFurlEcho compiles testdata/furlecho into a provided.al2023 zip.
func buildFurlEcho(t testing.TB) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/furlecho")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building furlecho: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Zip(t, map[string][]byte{"bootstrap": bin})
}

// cli runs the AWS CLI v2 against endpoint with the test credentials and
// returns stdout, or the error with stderr.
func cli(t *testing.T, endpoint string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, awsCLI, append(args, "--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json", "--no-cli-pager")...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_ACCESS_KEY_ID=" + servertest.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + servertest.SecretAccessKey,
		"AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none", "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("aws %s → %s%s", strings.Join(args, " "), out, stderr.Bytes())
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, stderr.Bytes())
	}
	return out, nil
}

// curlResult is what curl saw.
type curlResult struct {
	status  int
	headers string // the raw header block
	body    []byte
}

// curl runs curl with args plus the URL and returns status, headers and
// body (written to files, so binary bodies arrive intact).
func curl(t *testing.T, url string, args ...string) curlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	hdr, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	argv := append([]string{"-sS", "-D", hdr, "-o", body, "-w", "%{http_code}"}, args...)
	out, err := exec.CommandContext(ctx, "curl", append(argv, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s %s: %v: %s", strings.Join(args, " "), url, err, out)
	}
	var r curlResult
	fmt.Sscan(string(out), &r.status)
	h, _ := os.ReadFile(hdr)
	r.headers = string(h)
	r.body, _ = os.ReadFile(body)
	t.Logf("curl %s %s → %d %q", strings.Join(args, " "), url, r.status, truncate(r.body, 300))
	return r
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (r curlResult) header(name string) []string {
	var out []string
	for line := range strings.SplitSeq(r.headers, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

var furlRE = regexp.MustCompile(`^http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:([0-9]+)/$`)

// TestServer_FunctionURL_EndToEnd serves a real aws-lambda-go function
// behind a function URL: configured with the AWS CLI v2, called with curl
// (which resolves *.localhost to loopback itself), on the API listener and
// on --url-listen; then restarts the server and deletes the function.
func TestServer_FunctionURL_EndToEnd(t *testing.T) {
	for _, tool := range []string{awsCLI, "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	urlAddr := servertest.FreeAddr(t)
	edit := func(c *server.Config) { c.URLListen = urlAddr; c.Compute.Sandbox = server.SandboxJail }
	srv := servertest.Start(t, dir, edit)
	ctx := context.Background()
	_, err := srv.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("furl"), Role: aws.String("arn:aws:iam::000000000000:role/test"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &types.FunctionCode{ZipFile: buildFurlEcho(t)}, Timeout: aws.Int32(10),
	})
	if err != nil {
		t.Fatal(err)
	}

	// Configuration with the AWS CLI, errors included.
	out, err := cli(t, srv.Endpoint(), "lambda", "create-function-url-config", "--function-name", "furl", "--auth-type", "NONE",
		"--cors", `{"AllowOrigins":["https://app.example"],"AllowMethods":["GET","POST"],"AllowHeaders":["x-custom"],"MaxAge":300}`)
	if err != nil {
		t.Fatal(err)
	}
	// (This CLI's model predates InvokeMode: it drops the member.)
	var created struct{ FunctionUrl, FunctionArn, AuthType, CreationTime string }
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatal(err)
	}
	m := furlRE.FindStringSubmatch(created.FunctionUrl)
	if m == nil || m[2] != portOf(urlAddr) || created.AuthType != "NONE" || created.CreationTime == "" {
		t.Fatalf("create-function-url-config: %s", out)
	}
	id := m[1]
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create-function-url-config", "--function-name", "furl", "--auth-type", "NONE"}, "ResourceConflictException"},
		{[]string{"get-function-url-config", "--function-name", "furl", "--qualifier", "1"}, "InvalidParameterValueException"},
		{[]string{"get-function-url-config", "--function-name", "furl", "--qualifier", "live"}, "ResourceNotFoundException"},
		{[]string{"get-function-url-config", "--function-name", "nosuch"}, "ResourceNotFoundException"},
	} {
		if _, err := cli(t, srv.Endpoint(), append([]string{"lambda"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("aws lambda %s: %v, want %s", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	_, err = srv.Lambda.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("furl"), InvokeMode: types.InvokeModeResponseStream})
	if err == nil || !strings.Contains(err.Error(), "RESPONSE_STREAM is not supported") {
		t.Errorf("InvokeMode RESPONSE_STREAM: %v, want it refused", err)
	}
	if out, err := cli(t, srv.Endpoint(), "lambda", "list-function-url-configs", "--function-name", "furl"); err != nil || !strings.Contains(string(out), id) {
		t.Fatalf("list-function-url-configs: %s %v", out, err)
	}
	base := created.FunctionUrl

	// GET with a query string and cookies: the function echoes what it decoded.
	r := curl(t, base+"echo?x=1&x=2&name=ignis%20url", "--cookie", "a=1; b=2", "-H", "X-Test: one")
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(r.body, &ev); err != nil || r.status != 200 {
		t.Fatalf("echo: %d %s: %v", r.status, r.body, err)
	}
	if ev.RawPath != "/echo" || ev.RawQueryString != "x=1&x=2&name=ignis%20url" || ev.QueryStringParameters["x"] != "1,2" ||
		ev.QueryStringParameters["name"] != "ignis url" || strings.Join(ev.Cookies, "|") != "a=1|b=2" || ev.Headers["x-test"] != "one" ||
		ev.RequestContext.HTTP.Method != "GET" || ev.RequestContext.APIID != id || ev.RequestContext.HTTP.SourceIP != "127.0.0.1" ||
		!strings.HasPrefix(ev.RequestContext.HTTP.UserAgent, "curl/") || ev.Version != "2.0" {
		t.Errorf("echo event: %s", r.body)
	}

	// POST a binary body: the bytes round-trip exactly.
	bin := make([]byte, 256*1024)
	for i := range bin {
		bin[i] = byte(i*7 + i>>8)
	}
	binFile := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(binFile, bin, 0o600); err != nil {
		t.Fatal(err)
	}
	r = curl(t, base+"binary", "--data-binary", "@"+binFile, "-H", "Content-Type: application/octet-stream")
	if r.status != 200 || !bytes.Equal(r.body, bin) || r.header("Content-Type")[0] != "application/octet-stream" {
		t.Errorf("binary round trip: %d, %d bytes back, equal %v", r.status, len(r.body), bytes.Equal(r.body, bin))
	}

	// A 302 with Location, a header and two cookies set by the function.
	r = curl(t, base+"redirect")
	if r.status != 302 || strings.Join(r.header("Location"), "") != "/next" || strings.Join(r.header("X-Furl"), "") != "redirected" ||
		strings.Join(r.header("Set-Cookie"), "|") != "session=abc; Path=/; HttpOnly|theme=dark" {
		t.Errorf("redirect: %d\n%s", r.status, r.headers)
	}

	// A function error is a 502, as Lambda answers.
	if r = curl(t, base+"fail"); r.status != 502 || string(r.body) != `{"Message":"Internal Server Error"}` {
		t.Errorf("fail: %d %s", r.status, r.body)
	}

	// CORS preflight, answered from the config.
	r = curl(t, base+"echo", "-X", "OPTIONS", "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: POST")
	if r.status != 200 || strings.Join(r.header("Access-Control-Allow-Origin"), "") != "https://app.example" ||
		strings.Join(r.header("Access-Control-Allow-Methods"), "") != "GET,POST" || strings.Join(r.header("Access-Control-Max-Age"), "") != "300" {
		t.Errorf("preflight: %d\n%s", r.status, r.headers)
	}

	// The path form, on both listeners.
	for _, u := range []string{"http://" + urlAddr + "/" + id + "/echo?p=1", srv.Endpoint() + "/" + id + "/echo?p=1"} {
		if r = curl(t, u); r.status != 200 || !bytes.Contains(r.body, []byte(`"rawPath":"/echo"`)) {
			t.Errorf("path form %s: %d %s", u, r.status, r.body)
		}
	}
	// The Host form on the API listener's port.
	if r = curl(t, "http://"+id+".lambda-url.us-east-1.localhost:"+portOf(srv.Addr().String())+"/echo"); r.status != 200 {
		t.Errorf("host form on the API listener: %d %s", r.status, r.body)
	}
	// --url-listen serves no control plane, signed or not.
	for _, path := range []string{"/2015-03-31/functions", "/2015-03-31/functions/furl/invocations", "/2021-10-31/functions/furl/url"} {
		r = curl(t, "http://"+urlAddr+path, "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", servertest.AccessKeyID+":"+servertest.SecretAccessKey)
		if r.status != 404 {
			t.Errorf("control plane %s on --url-listen: %d %s", path, r.status, r.body)
		}
	}

	// AWS_IAM: unsigned → 403, curl's own SigV4 → served.
	if _, err := cli(t, srv.Endpoint(), "lambda", "update-function-url-config", "--function-name", "furl", "--auth-type", "AWS_IAM"); err != nil {
		t.Fatal(err)
	}
	if r = curl(t, base+"echo"); r.status != 403 || string(r.body) != `{"Message":"Forbidden"}` {
		t.Errorf("unsigned request to an AWS_IAM URL: %d %s", r.status, r.body)
	}
	r = curl(t, base+"echo?signed=1", "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", servertest.AccessKeyID+":wrong")
	if r.status != 403 {
		t.Errorf("wrongly signed request: %d %s", r.status, r.body)
	}
	r = curl(t, base+"echo?signed=1", "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", servertest.AccessKeyID+":"+servertest.SecretAccessKey)
	ev = events.LambdaFunctionURLRequest{}
	if err := json.Unmarshal(r.body, &ev); err != nil || r.status != 200 || ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.IAM == nil ||
		ev.RequestContext.Authorizer.IAM.AccessKey != servertest.AccessKeyID {
		t.Errorf("signed request: %d %s", r.status, r.body)
	}

	// The URL survives a restart under the same id.
	srv.Stop(t)
	srv = servertest.Start(t, dir, edit)
	out, err = cli(t, srv.Endpoint(), "lambda", "get-function-url-config", "--function-name", "furl")
	if err != nil || !strings.Contains(string(out), created.FunctionUrl) || !strings.Contains(string(out), `"AWS_IAM"`) || !strings.Contains(string(out), "LastModifiedTime") {
		t.Fatalf("get-function-url-config after restart: %s %v", out, err)
	}
	if r = curl(t, base+"echo", "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", servertest.AccessKeyID+":"+servertest.SecretAccessKey); r.status != 200 {
		t.Errorf("after restart: %d %s", r.status, r.body)
	}

	// DeleteFunction takes the URL with it.
	if _, err := cli(t, srv.Endpoint(), "lambda", "delete-function", "--function-name", "furl"); err != nil {
		t.Fatal(err)
	}
	if r = curl(t, "http://"+urlAddr+"/"+id+"/echo"); r.status != 404 {
		t.Errorf("URL of a deleted function: %d %s", r.status, r.body)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
