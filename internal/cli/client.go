package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
	"github.com/spf13/pflag"

	"github.com/ignis-run/ignis/internal/server"
)

// Environment variables the client commands read.
const (
	envEndpoint        = "IGNIS_ENDPOINT"
	envAccessKeyID     = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	envSessionToken    = "AWS_SESSION_TOKEN"
	envRegion          = "AWS_REGION"
	envDefaultRegion   = "AWS_DEFAULT_REGION"
	defaultRegion      = "us-east-1"
)

// clientFlags are the flags shared by the commands that talk to a running
// server (invoke, logs): where it is and how to sign requests.
//
// Precedence, as for every ignis setting, is file < env < flags:
//   - endpoint: --endpoint, else $IGNIS_ENDPOINT, else the server's default
//     listen address;
//   - credentials: an explicit --data directory's credentials file, else
//     $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else the credentials file
//     under the default data directory (./ignis-data);
//   - region: --region, else $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1.
type clientFlags struct {
	endpoint, dataDir, region string
	fs                        *pflag.FlagSet
}

// register adds the flags to fs.
func (c *clientFlags) register(fs *pflag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.endpoint, "endpoint", "", "URL of the Ignis API (env "+envEndpoint+", default http://"+server.DefaultConfig().Listen+")")
	fs.StringVar(&c.dataDir, "data", server.DefaultConfig().DataDir, "data directory whose credentials file signs requests when $"+envAccessKeyID+" is unset or this flag is given")
	fs.StringVar(&c.region, "region", "", "region to sign requests for (env "+envRegion+", "+envDefaultRegion+", default "+defaultRegion+")")
}

// clientConfig is what resolve settles on.
type clientConfig struct {
	endpoint, region string
	creds            aws.CredentialsProvider
}

// resolve applies the precedence rules over e's environment.
func (c *clientFlags) resolve(e *env) (clientConfig, error) {
	cfg := clientConfig{endpoint: c.endpoint, region: c.region}
	if cfg.endpoint == "" {
		cfg.endpoint = e.getenv(envEndpoint)
	}
	if cfg.endpoint == "" {
		cfg.endpoint = "http://" + server.DefaultConfig().Listen
	}
	if !strings.Contains(cfg.endpoint, "://") {
		cfg.endpoint = "http://" + cfg.endpoint
	}
	for _, v := range []string{envRegion, envDefaultRegion} {
		if cfg.region == "" {
			cfg.region = e.getenv(v)
		}
	}
	if cfg.region == "" {
		cfg.region = defaultRegion
	}

	id, secret := e.getenv(envAccessKeyID), e.getenv(envSecretAccessKey)
	explicitData := c.fs != nil && c.fs.Changed("data")
	if id != "" && secret != "" && !explicitData {
		cfg.creds = credentials.NewStaticCredentialsProvider(id, secret, e.getenv(envSessionToken))
		return cfg, nil
	}
	stored, err := server.LoadCredentials(c.dataDir)
	if err != nil {
		return clientConfig{}, &usageError{fmt.Errorf("%w (set %s and %s, or point --data at the server's data directory)", err, envAccessKeyID, envSecretAccessKey)}
	}
	cfg.creds = credentials.NewStaticCredentialsProvider(stored.AccessKeyID, stored.SecretAccessKey, "")
	return cfg, nil
}

// lambdaClient returns a Lambda client that never retries: a retried
// Invoke could run the function twice.
func (c *clientFlags) lambdaClient(e *env) (*lambda.Client, error) {
	cfg, err := c.resolve(e)
	if err != nil {
		return nil, err
	}
	return lambda.New(lambda.Options{
		Region:           cfg.region,
		BaseEndpoint:     aws.String(cfg.endpoint),
		Credentials:      cfg.creds,
		RetryMaxAttempts: 1,
	}), nil
}

// logsClient returns a CloudWatch Logs client; its reads are idempotent,
// so the SDK's default retries stay on.
func (c *clientFlags) logsClient(e *env) (*cloudwatchlogs.Client, error) {
	cfg, err := c.resolve(e)
	if err != nil {
		return nil, err
	}
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       cfg.region,
		BaseEndpoint: aws.String(cfg.endpoint),
		Credentials:  cfg.creds,
	}), nil
}

// apiError shortens an SDK error whose server answered with an AWS error
// to "Code: message"; transport errors keep the SDK's full text.
type apiError struct{ err error }

func (e *apiError) Error() string {
	var ae smithy.APIError
	if errors.As(e.err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return e.err.Error()
}

func (e *apiError) Unwrap() error { return e.err }

// isAPIError reports whether err is the server's AWS error with code.
func isAPIError(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// ignisCall sends a SigV4-signed, bodiless request to an Ignis route
// (/_ignis/…) and returns the body of a 200 answer; any other status is
// an error carrying the AWS error type and message.
func (cfg clientConfig) ignisCall(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, cfg.endpoint+path, http.NoBody)
	if err != nil {
		return nil, err
	}
	creds, err := cfg.creds.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	empty := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "lambda", cfg.region, time.Now()); err != nil {
		return nil, fmt.Errorf("signing the request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		_ = json.Unmarshal(b, &e)
		return nil, fmt.Errorf("%s: %s", resp.Header.Get("X-Amzn-ErrorType"), e.Message)
	}
	return b, nil
}
