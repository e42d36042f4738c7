package frontend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ignis-run/ignis/internal/clock"
)

// The verifier is checked against aws-sdk-go-v2's signer: requests with
// generated paths, queries, headers and bodies are signed by the SDK, sent
// over real HTTP, and must verify; the same requests with one signed part
// changed after signing must not.
func TestVerifier_AgreesWithSDKSigner(t *testing.T) {
	creds := Credentials{AccessKeyID: "AKIDSIGV4TEST", SecretAccessKey: "s3cr3t/with+chars"}
	v := &verifier{creds: creds, clock: clock.Real{}, skew: 5 * time.Minute}
	results := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		results <- v.check(r, body, "lambda")
	}))
	defer srv.Close()
	signer := v4.NewSigner()
	sdkCreds := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}
	rng := rand.New(rand.NewPCG(1, 2))

	pathParts := []string{"2015-03-31", "functions", "my-fn", "arn:aws:lambda:us-east-1:123456789012:function:f:live",
		"with space", "ünïcode", "a%2Fb", "x+y", "~tilde", "invocations", "$LATEST", "a=b&c"}
	queryVals := []string{"", "1", "$LATEST", "a b", "x+y", "ü", "a/b", "=&?"}
	send := func(mutate func(*http.Request, *[]byte)) error {
		var segs []string
		for range 1 + rng.IntN(4) {
			segs = append(segs, url.PathEscape(pathParts[rng.IntN(len(pathParts))]))
		}
		u := srv.URL + "/" + strings.Join(segs, "/")
		q := url.Values{}
		for range rng.IntN(4) {
			k := []string{"Qualifier", "Marker", "MaxItems", "a b", "Z"}[rng.IntN(5)]
			q.Add(k, queryVals[rng.IntN(len(queryVals))])
		}
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		body := bytes.Repeat([]byte("b"), rng.IntN(3)*rng.IntN(5000))
		req, err := http.NewRequest([]string{"GET", "POST", "PUT", "DELETE"}[rng.IntN(4)], u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
		if rng.IntN(2) == 0 {
			req.Header.Add("X-Amz-Meta", "  two   spaces  ")
			req.Header.Add("X-Amz-Meta", "second")
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		if rng.IntN(3) == 0 {
			req.Header.Set("X-Amz-Content-Sha256", hash)
		}
		if err := signer.SignHTTP(context.Background(), sdkCreds, req, hash, "lambda", "eu-west-3", time.Now()); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(req, &body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return <-results
	}
	for i := range 300 {
		if err := send(nil); err != nil {
			t.Fatalf("request %d signed by the SDK: %v", i, err)
		}
	}
	mutations := map[string]func(*http.Request, *[]byte){
		"body": func(_ *http.Request, b *[]byte) { *b = append(*b, 'x') },
		"path": func(r *http.Request, _ *[]byte) { r.URL.Path += "x"; r.URL.RawPath = "" },
		"query": func(r *http.Request, _ *[]byte) {
			q := r.URL.Query()
			q.Add("extra", "1")
			r.URL.RawQuery = q.Encode()
		},
		"method": func(r *http.Request, _ *[]byte) {
			if r.Method == "PUT" {
				r.Method = "POST"
			} else {
				r.Method = "PUT"
			}
		},
		"signed header":  func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Invocation-Type", "Event") },
		"payload header": func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64)) },
	}
	for name, m := range mutations {
		for i := range 20 {
			if err := send(m); err == nil {
				t.Fatalf("%s changed after signing (request %d): verified", name, i)
			} else if !strings.Contains(fmt.Sprint(err), "signature") && !strings.Contains(fmt.Sprint(err), "x-amz-content-sha256") {
				t.Fatalf("%s changed: error %q", name, err)
			}
		}
	}
}

func BenchmarkVerifier_Check(b *testing.B) {
	creds := Credentials{AccessKeyID: "AKIDSIGV4TEST", SecretAccessKey: "secret"}
	v := &verifier{creds: creds, clock: clock.Real{}, skew: 5 * time.Minute}
	body := []byte(`{"p":"` + strings.Repeat("x", 90) + `"}`)
	req := httptest.NewRequest("POST", "http://127.0.0.1:9000/2015-03-31/functions/bench/invocations", bytes.NewReader(body))
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.check(req, body, "lambda"); err != nil {
			b.Fatal(err)
		}
	}
}
