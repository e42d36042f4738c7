package frontend

import (
	"errors"
	"testing"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/errdefs"
)

// FuzzDecodeRequests feeds arbitrary bodies to every request decoder and the
// conversions to registry inputs: they must never panic, and must fail only
// with InvalidRequestContent.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{
		`{"FunctionName":"f","Role":"arn:aws:iam::000000000000:role/r","Runtime":"python3.11","Handler":"a.h","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},"Timeout":3,"Environment":{"Variables":{"A":"1"}}}`,
		`{"ZipFile":"AAAA","Publish":true,"RevisionId":"x"}`,
		`{"Timeout":null,"Environment":{},"LoggingConfig":{"LogFormat":"JSON"},"VpcConfig":{"SubnetIds":["a"]}}`,
		`{"Name":"live","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":0.5}}}`,
		`{"ReservedConcurrentExecutions":5}`, `[]`, `null`, `{`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(err error) {
			if err != nil && !errors.Is(err, errdefs.ErrInvalidContent) {
				t.Fatalf("decode error of wrong class: %v", err)
			}
		}
		var c api.CreateFunctionRequest
		if err := decodeBody(b, &c); err == nil {
			createInput(&c)
		} else {
			check(err)
		}
		var uc api.UpdateFunctionCodeRequest
		if err := decodeBody(b, &uc); err == nil {
			updateCodeInput(&uc)
		} else {
			check(err)
		}
		var ucfg api.UpdateFunctionConfigurationRequest
		if err := decodeBody(b, &ucfg); err == nil {
			updateConfigInput(&ucfg)
		} else {
			check(err)
		}
		var ca api.CreateAliasRequest
		if err := decodeBody(b, &ca); err == nil {
			aliasInput(&ca.FunctionVersion, &ca.Description, ca.RoutingConfig, "")
		} else {
			check(err)
		}
		var ua api.UpdateAliasRequest
		if err := decodeBody(b, &ua); err == nil {
			aliasInput(ua.FunctionVersion, ua.Description, ua.RoutingConfig, ua.RevisionId)
		} else {
			check(err)
		}
		var pv api.PublishVersionRequest
		check(decodeBody(b, &pv))
		var pc api.PutFunctionConcurrencyRequest
		check(decodeBody(b, &pc))
		var tr api.TagResourceRequest
		check(decodeBody(b, &tr))
	})
}

// FuzzParseAuthorization checks the SigV4 header parser on arbitrary input.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc")
	f.Add("AWS4-HMAC-SHA256 ")
	f.Add("Basic x")
	f.Fuzz(func(t *testing.T, h string) {
		a, ok := parseAuthorization(h)
		if ok && (a.accessKey == "" || a.signature == "" || len(a.signedHeaders) == 0) {
			t.Fatalf("accepted incomplete header %q: %+v", h, a)
		}
	})
}
