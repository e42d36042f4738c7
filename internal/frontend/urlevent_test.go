package frontend

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzMapURLResponse feeds arbitrary function results to the response
// mapping: it must never panic, fail only with errBadFunctionResponse, and
// never produce a header that could split the response.
func FuzzMapURLResponse(f *testing.F) {
	for _, s := range []string{
		`{"statusCode":302,"headers":{"Location":"/x"},"cookies":["a=1"]}`,
		`{"statusCode":200,"body":"AAE=","isBase64Encoded":true}`,
		`{"statusCode":200,"multiValueHeaders":{"X":["1","2"]},"headers":{"X":"3"}}`,
		`{"statusCode":"200"}`, `{"statusCode":99}`, `{"statusCode":200,"headers":{"A":"b\r\nc"}}`,
		`{"statusCode":200,"headers":{"Content-Length":"5"},"body":"x"}`,
		`{"a":1}`, `[1]`, `"x"`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		resp, err := mapURLResponse(payload)
		if err != nil {
			if !errors.Is(err, errBadFunctionResponse) {
				t.Fatalf("error %v is not errBadFunctionResponse", err)
			}
			return
		}
		if resp.status < 100 || resp.status > 599 {
			t.Fatalf("status %d", resp.status)
		}
		for k, vs := range resp.headers {
			if !validHeaderName(k) {
				t.Fatalf("header name %q", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("header %s value %q", k, v)
				}
			}
		}
		if resp.headers.Get("Content-Length") != "" {
			t.Fatal("the function set Content-Length")
		}
	})
}

// FuzzFunctionURLTarget feeds arbitrary hosts and request targets to the
// function URL routing: no panics, and an id is always a valid one.
func FuzzFunctionURLTarget(f *testing.F) {
	f.Add("abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost:9000", "/p?q=1")
	f.Add("127.0.0.1:9000", "/abcdefghijklmnopqrstuvwxyz012345/x%20y")
	f.Add("127.0.0.1:9000", "/2015-03-31/functions")
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345.LAMBDA-URL.x", "/")
	f.Fuzz(func(t *testing.T, host, target string) {
		// Parsed as net/http's server parses what arrives on the wire.
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")))
		if err != nil || !strings.HasPrefix(r.RequestURI, "/") {
			return
		}
		tgt, ok := functionURLTarget(r)
		if ok && (len(tgt.id) != 32 || !strings.HasPrefix(tgt.rawPath, "/") || !strings.HasPrefix(tgt.path, "/")) {
			t.Fatalf("host %q target %q → %+v", host, target, tgt)
		}
	})
}
