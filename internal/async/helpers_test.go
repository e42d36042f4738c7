package async_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/sandbox/jail"
	"github.com/ignis-run/ignis/internal/server"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the jail driver re-executes this binary as its setup stage
	os.Exit(m.Run())
}

const role = "arn:aws:iam::000000000000:role/test"

// retryDelay is the server's --async-retry-delay in these tests.
const retryDelay = time.Second

func newServer(t *testing.T, pollers int) *servertest.Server {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("sandboxes need root")
	}
	return servertest.Start(t, "", func(c *server.Config) {
		c.Compute.Sandbox = server.SandboxJail
		c.Compute.AsyncRetryDelay = retryDelay
		c.Compute.AsyncPollers = pollers
	})
}

func pyZip(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/py/app.py")
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Zip(t, map[string][]byte{"app.py": b})
}

func createPy(t *testing.T, s *servertest.Server, name string, edit func(*lambda.CreateFunctionInput)) {
	t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Role:         aws.String(role),
		Runtime:      types.Runtime("python3.11"),
		Handler:      aws.String("app.handler"),
		Code:         &types.FunctionCode{ZipFile: pyZip(t)},
		Timeout:      aws.Int32(10),
		MemorySize:   aws.Int32(128),
	}
	if edit != nil {
		edit(in)
	}
	if _, err := s.Lambda.CreateFunction(context.Background(), in); err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
}

// invokeEvent queues an Event invoke and returns its request id.
func invokeEvent(t *testing.T, s *servertest.Server, name, payload string) string {
	t.Helper()
	out, err := s.Lambda.Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName:   aws.String(name),
		InvocationType: types.InvocationTypeEvent,
		Payload:        []byte(payload),
	})
	if err != nil {
		t.Fatalf("Event invoke of %s: %v", name, err)
	}
	if out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("Event invoke of %s: status %d, body %q; want 202 and no body", name, out.StatusCode, out.Payload)
	}
	id, ok := awsmw.GetRequestIDMetadata(out.ResultMetadata)
	if !ok {
		t.Fatal("no request id in the Event invoke response")
	}
	return id
}

func logsClient(s *servertest.Server) *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider(servertest.AccessKeyID, servertest.SecretAccessKey, ""),
	})
}

// logLines returns the messages of a function's log events matching
// pattern (CloudWatch filter pattern), oldest first.
func logLines(t *testing.T, c *cloudwatchlogs.Client, function, pattern string) []cwtypes.FilteredLogEvent {
	t.Helper()
	var out []cwtypes.FilteredLogEvent
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + function)}
	if pattern != "" {
		in.FilterPattern = aws.String(pattern)
	}
	p := cloudwatchlogs.NewFilterLogEventsPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		var nf *cwtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			t.Fatalf("filtering logs of %s: %v", function, err)
		}
		out = append(out, page.Events...)
	}
	sort.SliceStable(out, func(i, j int) bool { return aws.ToInt64(out[i].Timestamp) < aws.ToInt64(out[j].Timestamp) })
	return out
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// signed sends a SigV4-signed request to an Ignis route.
func signed(t *testing.T, s *servertest.Server, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.Endpoint()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: servertest.AccessKeyID, SecretAccessKey: servertest.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// receive reads every message of an Ignis queue available within wait.
func receive(t *testing.T, s *servertest.Server, queue string, wait time.Duration) []queueMsg {
	t.Helper()
	var all []queueMsg
	deadline := time.Now().Add(wait)
	for {
		status, b := signed(t, s, "POST", "/_ignis/queues/"+queue+"/receive?MaxNumberOfMessages=10&WaitTimeSeconds=1", nil)
		if status != 200 {
			t.Fatalf("receive %s: %d %s", queue, status, b)
		}
		var out struct{ Messages []queueMsg }
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		all = append(all, out.Messages...)
		if len(all) > 0 && len(out.Messages) == 0 || time.Now().After(deadline) {
			return all
		}
	}
}

// metrics reads GET /_ignis/metrics.
func metrics(t *testing.T, s *servertest.Server) map[string]any {
	t.Helper()
	status, b := signed(t, s, "GET", "/_ignis/metrics", nil)
	if status != 200 {
		t.Fatalf("metrics: %d %s", status, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// record is the destination record as a test reads it.
type record struct {
	Version        string `json:"version"`
	Timestamp      string `json:"timestamp"`
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext *struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}
