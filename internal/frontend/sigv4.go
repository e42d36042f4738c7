package frontend

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/clock"
)

// verifier checks AWS Signature Version 4 on incoming requests by
// recomputing the signature with the SDK's own signer over the signed parts
// of the request, and comparing in constant time.
type verifier struct {
	creds  Credentials
	clock  clock.Clock
	skew   time.Duration
	signer *v4.Signer
}

const amzDateFormat = "20060102T150405Z"

// sigV4Auth is a parsed Authorization header.
type sigV4Auth struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseAuthorization(h string) (sigV4Auth, bool) {
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(h, algo) {
		return sigV4Auth{}, false
	}
	var a sigV4Auth
	for _, part := range strings.Split(h[len(algo):], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sigV4Auth{}, false
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return sigV4Auth{}, false
			}
			a.accessKey, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	if a.accessKey == "" || a.signature == "" || len(a.signedHeaders) == 0 {
		return sigV4Auth{}, false
	}
	return a, true
}

func forbidden(typ, format string, args ...any) error {
	return newAWSError(http.StatusForbidden, typ, format, args...)
}

// check verifies r (whose body was already read into body) for service.
func (v *verifier) check(r *http.Request, body []byte, service string) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Get("X-Amz-Signature") != "" {
			return forbidden(api.ErrInvalidSignature, "Presigned (query string) signatures are not supported by Ignis; sign the Authorization header")
		}
		return forbidden(api.ErrUnrecognizedClient, "Missing Authentication Token: the request must be signed with AWS Signature Version 4")
	}
	a, ok := parseAuthorization(h)
	if !ok {
		return forbidden(api.ErrInvalidSignature, "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters of an AWS4-HMAC-SHA256 signature")
	}
	if subtle.ConstantTimeCompare([]byte(a.accessKey), []byte(v.creds.AccessKeyID)) != 1 {
		return forbidden(api.ErrUnrecognizedClient, "The security token included in the request is invalid.")
	}
	if a.service != service {
		return forbidden(api.ErrInvalidSignature, "Credential should be scoped to correct service: '%s'.", service)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signingTime, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return forbidden(api.ErrInvalidSignature, "The request signature could not be checked: missing or malformed X-Amz-Date header")
	}
	if !strings.HasPrefix(amzDate, a.date) {
		return forbidden(api.ErrInvalidSignature, "Credential should be scoped to a valid date: '%s'.", amzDate[:8])
	}
	now := v.clock.Now()
	if d := now.Sub(signingTime); d > v.skew || d < -v.skew {
		return forbidden(api.ErrInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %s.)",
			amzDate, now.Add(-v.skew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat), v.skew)
	}

	// Rebuild the request from exactly what the client signed.
	path := r.RequestURI
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if !strings.HasPrefix(path, "/") { // absolute-form request target
		if u, err := url.Parse(path); err == nil {
			path = u.EscapedPath()
		}
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+"/", nil)
	if err != nil {
		return forbidden(api.ErrInvalidSignature, "The request signature could not be checked: %v", err)
	}
	req.URL.Opaque = "//" + r.Host + path
	req.URL.RawQuery = r.URL.RawQuery
	req.Host = r.Host
	req.Header = http.Header{}
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			if vals := r.Header.Values(name); len(vals) > 0 {
				req.Header[textproto.CanonicalMIMEHeaderKey(name)] = vals
			}
		}
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if payloadHash == "" {
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	creds := aws.Credentials{AccessKeyID: v.creds.AccessKeyID, SecretAccessKey: v.creds.SecretAccessKey}
	signer := v.signer
	if signer == nil {
		signer = v4.NewSigner()
	}
	if err := signer.SignHTTP(r.Context(), creds, req, payloadHash, a.service, a.region, signingTime); err != nil {
		return forbidden(api.ErrInvalidSignature, "The request signature could not be checked: %v", err)
	}
	want, ok := parseAuthorization(req.Header.Get("Authorization"))
	if !ok || subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) != 1 {
		return forbidden(api.ErrInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}
