package frontend

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/clock"
)

// verifier checks AWS Signature Version 4 on incoming requests by
// recomputing the signature over the signed parts of the request and
// comparing in constant time. Tests check it against aws-sdk-go-v2's own
// signer over many generated requests.
type verifier struct {
	creds Credentials
	clock clock.Clock
	skew  time.Duration
	keys  signingKeys
	bufs  sync.Pool // *[]byte: canonical request buffers
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

	// AWS checks a client-supplied payload hash against the body; taking it
	// on trust would let a captured request be replayed with another body.
	sum := sha256.Sum256(body)
	var payloadHash [sha256.Size * 2]byte
	hex.Encode(payloadHash[:], sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != string(payloadHash[:]) {
		return forbidden(api.ErrInvalidSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if !slices.Contains(a.signedHeaders, "host") {
		return forbidden(api.ErrInvalidSignature, "'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	bp, _ := v.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer v.bufs.Put(bp)
	cr := appendCanonicalRequest((*bp)[:0], r, a.signedHeaders, len(body), payloadHash[:])
	*bp = cr
	crSum := sha256.Sum256(cr)

	sts := make([]byte, 0, 128)
	sts = append(sts, "AWS4-HMAC-SHA256\n"...)
	sts = append(sts, amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, a.date...)
	sts = append(sts, '/')
	sts = append(sts, a.region...)
	sts = append(sts, '/')
	sts = append(sts, a.service...)
	sts = append(sts, "/aws4_request\n"...)
	sts = hex.AppendEncode(sts, crSum[:])
	mac := hmac.New(sha256.New, v.keys.get(v.creds.SecretAccessKey, a.date, a.region, a.service))
	mac.Write(sts)
	var got [sha256.Size * 2]byte
	hex.Encode(got[:], mac.Sum(nil))
	if subtle.ConstantTimeCompare(got[:], []byte(a.signature)) != 1 {
		return forbidden(api.ErrInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}

// appendCanonicalRequest appends SigV4's canonical request for r, built
// the way aws-sdk-go-v2's signer and botocore build it: the path as sent,
// escaped once more (every byte but unreserved ones and '/'); the query
// re-encoded by url.Values.Encode with %20 for spaces; each signed header's
// values trimmed, inner spaces collapsed and joined by ','.
func appendCanonicalRequest(dst []byte, r *http.Request, signed []string, contentLength int, payloadHash []byte) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	path := r.RequestURI
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if !strings.HasPrefix(path, "/") { // absolute-form request target
		path = "/"
		if u, err := url.Parse(r.RequestURI); err == nil && u.EscapedPath() != "" {
			path = u.EscapedPath()
		}
	}
	dst = appendEscapedPath(dst, path)
	dst = append(dst, '\n')
	if r.URL.RawQuery != "" {
		dst = append(dst, strings.ReplaceAll(r.URL.Query().Encode(), "+", "%20")...)
	}
	dst = append(dst, '\n')
	for _, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		switch name {
		case "host":
			dst = append(dst, r.Host...)
		case "content-length":
			dst = strconv.AppendInt(dst, int64(contentLength), 10)
		default:
			for i, v := range r.Header.Values(name) {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendCollapsedSpaces(dst, v)
			}
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	for i, name := range signed {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, name...)
	}
	dst = append(dst, '\n')
	return append(dst, payloadHash...)
}

// appendEscapedPath percent-encodes every byte of p except unreserved
// characters and '/'.
func appendEscapedPath(dst []byte, p string) []byte {
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return dst
}

// appendCollapsedSpaces appends v trimmed, with runs of spaces as one.
func appendCollapsedSpaces(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			space = true
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		dst = append(dst, v[i])
	}
	return dst
}

// signingKeys caches derived SigV4 signing keys: deriving one costs four
// HMACs, and a day's requests share a handful (date × region × service).
type signingKeys struct {
	mu   sync.Mutex
	keys map[string][]byte // guarded by mu: date/region/service → key
}

func (c *signingKeys) get(secret, date, region, service string) []byte {
	scope := date + "/" + region + "/" + service
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[scope]; ok {
		return k
	}
	if c.keys == nil || len(c.keys) >= 16 {
		c.keys = make(map[string][]byte)
	}
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	c.keys[scope] = k
	return k
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
