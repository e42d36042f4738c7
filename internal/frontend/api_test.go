package frontend_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"
)

var pyZip = map[string]string{"app.py": "def handler(event, context):\n    return event\n"}

func createPy(t *testing.T, c *lambda.Client, name string, zip []byte) *lambda.CreateFunctionOutput {
	t.Helper()
	out, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Role:         aws.String(testRole),
		Runtime:      types.RuntimePython311,
		Handler:      aws.String("app.handler"),
		Code:         &types.FunctionCode{ZipFile: zip},
	})
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return out
}

func TestFrontend_FunctionLifecycle_SDK(t *testing.T) {
	s := startServer(t)
	c := s.client(testAK, testSK)
	ctx := context.Background()
	zip1 := makeZip(t, pyZip)

	created, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("life"),
		Role:         aws.String(testRole),
		Runtime:      types.RuntimePython311,
		Handler:      aws.String("app.handler"),
		Code:         &types.FunctionCode{ZipFile: zip1},
		MemorySize:   aws.Int32(512),
		Timeout:      aws.Int32(7),
		Environment:  &types.Environment{Variables: map[string]string{"A": "1"}},
		Tags:         map[string]string{"team": "core"},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	sum := sha256.Sum256(zip1)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got := aws.ToString(created.CodeSha256); got != want {
		t.Errorf("CodeSha256 = %q, want %q", got, want)
	}
	if aws.ToString(created.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:life" ||
		aws.ToString(created.Version) != "$LATEST" || aws.ToInt32(created.MemorySize) != 512 ||
		aws.ToInt32(created.Timeout) != 7 || created.State != types.StateActive ||
		created.Environment.Variables["A"] != "1" || aws.ToString(created.RevisionId) == "" {
		t.Errorf("unexpected CreateFunction output: %+v", created)
	}

	// GetFunction: Code.Location downloads the exact zip without SigV4.
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("life")})
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"team": "core"}, got.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	resp, err := http.Get(aws.ToString(got.Code.Location))
	if err != nil {
		t.Fatalf("downloading code: %v", err)
	}
	dl, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(dl) != string(zip1) {
		t.Errorf("code download: status %d, %d bytes, want the %d-byte zip", resp.StatusCode, len(dl), len(zip1))
	}
	// A tampered token is refused.
	resp, err = http.Get(strings.Replace(aws.ToString(got.Code.Location), "Signature=", "Signature=00", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered code URL: status %d, want 403", resp.StatusCode)
	}

	// UpdateFunctionConfiguration changes RevisionId; Environment replaces.
	upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("life"),
		Timeout:      aws.Int32(9),
		Environment:  &types.Environment{Variables: map[string]string{"B": "2"}},
		RevisionId:   created.RevisionId,
	})
	if err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %v", err)
	}
	if aws.ToInt32(upd.Timeout) != 9 || aws.ToString(upd.RevisionId) == aws.ToString(created.RevisionId) {
		t.Errorf("update: timeout %d revision %s", aws.ToInt32(upd.Timeout), aws.ToString(upd.RevisionId))
	}
	if diff := cmp.Diff(map[string]string{"B": "2"}, upd.Environment.Variables); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}

	// UpdateFunctionCode.
	zip2 := makeZip(t, map[string]string{"app.py": "def handler(e, c):\n    return 2\n"})
	code, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("life"), ZipFile: zip2})
	if err != nil {
		t.Fatalf("UpdateFunctionCode: %v", err)
	}
	if aws.ToString(code.CodeSha256) == want || code.CodeSize != int64(len(zip2)) {
		t.Errorf("code not updated: %s size %d", aws.ToString(code.CodeSha256), code.CodeSize)
	}

	// PublishVersion: 1, no-op republish, CodeSha256 check, then 2.
	v1, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("life")})
	if err != nil || aws.ToString(v1.Version) != "1" {
		t.Fatalf("PublishVersion: %v %+v", err, v1)
	}
	if aws.ToString(v1.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:life:1" {
		t.Errorf("version ARN = %s", aws.ToString(v1.FunctionArn))
	}
	again, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("life")})
	if err != nil || aws.ToString(again.Version) != "1" {
		t.Errorf("republish without change: %v version %s, want 1", err, aws.ToString(again.Version))
	}
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("life"), CodeSha256: aws.String(want)})
	if errorCode(err) != "InvalidParameterValueException" {
		t.Errorf("publish with stale CodeSha256: %v", err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("life"), Timeout: aws.Int32(11)}); err != nil {
		t.Fatal(err)
	}
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("life"), Description: aws.String("second")})
	if err != nil || aws.ToString(v2.Version) != "2" || aws.ToString(v2.Description) != "second" {
		t.Fatalf("PublishVersion 2: %v %+v", err, v2)
	}

	// Versions are immutable: version 1 keeps timeout 9.
	for _, name := range []string{"life:1", "000000000000:function:life:1", "arn:aws:lambda:us-east-1:000000000000:function:life:1"} {
		cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
		if err != nil || aws.ToInt32(cfg.Timeout) != 9 || aws.ToString(cfg.Version) != "1" {
			t.Errorf("GetFunctionConfiguration(%s): %v timeout %d", name, err, aws.ToInt32(cfg.Timeout))
		}
	}
	if _, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("life:1"), Qualifier: aws.String("2")}); errorCode(err) != "InvalidParameterValueException" {
		t.Errorf("disagreeing qualifiers: %v", err)
	}

	vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("life")})
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, v := range vs.Versions {
		versions = append(versions, aws.ToString(v.Version)+"@"+aws.ToString(v.FunctionArn))
	}
	wantVersions := []string{
		"$LATEST@arn:aws:lambda:us-east-1:000000000000:function:life:$LATEST",
		"1@arn:aws:lambda:us-east-1:000000000000:function:life:1",
		"2@arn:aws:lambda:us-east-1:000000000000:function:life:2",
	}
	if diff := cmp.Diff(wantVersions, versions); diff != "" {
		t.Errorf("ListVersionsByFunction (-want +got):\n%s", diff)
	}

	// Aliases with weights.
	alias, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{
		FunctionName: aws.String("life"), Name: aws.String("live"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.25}},
	})
	if err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	if aws.ToString(alias.AliasArn) != "arn:aws:lambda:us-east-1:000000000000:function:life:live" {
		t.Errorf("AliasArn = %s", aws.ToString(alias.AliasArn))
	}
	ga, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("life"), Name: aws.String("live")})
	if err != nil || ga.RoutingConfig.AdditionalVersionWeights["2"] != 0.25 {
		t.Errorf("GetAlias: %v %+v", err, ga)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("life"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); errorCode(err) != "ResourceConflictException" {
		t.Errorf("duplicate alias: %v", err)
	}
	for _, bad := range []map[string]float64{{"1": 0.5}, {"2": 1.5}, {"9": 0.1}} {
		_, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("life"), Name: aws.String("live"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: bad}})
		if code := errorCode(err); code != "InvalidParameterValueException" && code != "ResourceNotFoundException" {
			t.Errorf("UpdateAlias weights %v: %v", bad, err)
		}
	}
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("life"), Name: aws.String("live"), RevisionId: aws.String("stale")}); errorCode(err) != "PreconditionFailedException" {
		t.Errorf("UpdateAlias with stale revision: %v", err)
	}
	ua, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("life"), Name: aws.String("live"),
		FunctionVersion: aws.String("2"), RoutingConfig: &types.AliasRoutingConfiguration{}, RevisionId: ga.RevisionId})
	if err != nil || aws.ToString(ua.FunctionVersion) != "2" || ua.RoutingConfig != nil {
		t.Errorf("UpdateAlias: %v %+v", err, ua)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("life"), Name: aws.String("canary"), FunctionVersion: aws.String("$LATEST")}); err != nil {
		t.Fatal(err)
	}
	la, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("life")})
	if err != nil || len(la.Aliases) != 2 {
		t.Errorf("ListAliases: %v %d", err, len(la.Aliases))
	}
	la, err = c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("life"), FunctionVersion: aws.String("2")})
	if err != nil || len(la.Aliases) != 1 || aws.ToString(la.Aliases[0].Name) != "live" {
		t.Errorf("ListAliases FunctionVersion=2: %v %+v", err, la)
	}
	if _, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("life"), Qualifier: aws.String("live")}); err != nil {
		t.Errorf("GetFunctionConfiguration by alias: %v", err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("life"), Qualifier: aws.String("2")}); errorCode(err) != "ResourceConflictException" {
		t.Errorf("deleting a version an alias points to: %v", err)
	}
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("life"), Name: aws.String("canary")}); err != nil {
		t.Errorf("DeleteAlias: %v", err)
	}
	if _, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("life"), Name: aws.String("canary")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetAlias after delete: %v", err)
	}

	// Reserved concurrency and account settings.
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("life"), ReservedConcurrentExecutions: aws.Int32(901)}); errorCode(err) != "InvalidParameterValueException" {
		t.Errorf("reserving beyond the unreserved minimum: %v", err)
	}
	pc, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("life"), ReservedConcurrentExecutions: aws.Int32(900)})
	if err != nil || aws.ToInt32(pc.ReservedConcurrentExecutions) != 900 {
		t.Fatalf("PutFunctionConcurrency: %v", err)
	}
	gc, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("life")})
	if err != nil || aws.ToInt32(gc.ReservedConcurrentExecutions) != 900 {
		t.Errorf("GetFunctionConcurrency: %v %+v", err, gc)
	}
	as, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || as.AccountLimit.ConcurrentExecutions != 1000 || as.AccountLimit.UnreservedConcurrentExecutions == nil ||
		*as.AccountLimit.UnreservedConcurrentExecutions != 100 || as.AccountUsage.FunctionCount != 1 {
		t.Errorf("GetAccountSettings: %v %+v", err, as)
	}
	if _, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("life")}); err != nil {
		t.Fatal(err)
	}
	gc, err = c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("life")})
	if err != nil || gc.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency after delete: %v %+v", err, gc)
	}

	// Delete one version, then the function.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("life"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("DeleteFunction version 1: %v", err)
	}
	if _, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("life"), Qualifier: aws.String("1")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("deleted version: %v", err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("life"), Timeout: aws.Int32(12)}); err != nil {
		t.Fatal(err)
	}
	v3, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("life")})
	if err != nil || aws.ToString(v3.Version) != "3" {
		t.Errorf("version numbers are never reused: got %v %s, want 3", err, aws.ToString(v3.Version))
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:life")}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("life")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetFunction after delete: %v", err)
	}
	// Recreating the name starts a fresh function: no old aliases or versions.
	createPy(t, c, "life", zip1)
	vs, err = c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("life")})
	if err != nil || len(vs.Versions) != 1 {
		t.Errorf("versions of recreated function: %v %d", err, len(vs.Versions))
	}
}

func TestFrontend_Errors_AWSTypes(t *testing.T) {
	s := startServer(t)
	c := s.client(testAK, testSK)
	ctx := context.Background()
	zip := makeZip(t, pyZip)
	created := createPy(t, c, "err", zip)

	base := func(mut func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionInput {
		in := &lambda.CreateFunctionInput{
			FunctionName: aws.String("err-new"), Role: aws.String(testRole), Runtime: types.RuntimePython311,
			Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zip},
		}
		mut(in)
		return in
	}
	big := make([]byte, 51<<20)
	rand.Read(big)
	bigZip := makeZip(t, map[string]string{"blob.bin": string(big)})

	tests := []struct {
		name     string
		call     func() error
		wantCode string
		wantMsg  string
	}{
		{"get missing", func() error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"},
		{"missing version", func() error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("err"), Qualifier: aws.String("7")})
			return err
		}, "ResourceNotFoundException", ""},
		{"missing alias", func() error {
			_, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("err"), Name: aws.String("x")})
			return err
		}, "ResourceNotFoundException", ""},
		{"create existing", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("err") }))
			return err
		}, "ResourceConflictException", "Function already exist: err"},
		{"bad name", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("bad name!") }))
			return err
		}, "InvalidParameterValueException", ""},
		{"unsupported runtime names the supported ones", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimeJava21 }))
			return err
		}, "InvalidParameterValueException", "provided.al2023"},
		{"timeout 0", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(0) }))
			return err
		}, "InvalidParameterValueException", "timeout"},
		{"timeout 901", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) }))
			return err
		}, "InvalidParameterValueException", "timeout"},
		{"memory too big", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(10241) }))
			return err
		}, "InvalidParameterValueException", "memorySize"},
		{"reserved env key", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "x"}}
			}))
			return err
		}, "InvalidParameterValueException", "reserved keys"},
		{"env over 4 KB", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"BIG": strings.Repeat("x", 4100)}}
			}))
			return err
		}, "InvalidParameterValueException", "4KB"},
		{"bad role", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.Role = aws.String("admin") }))
			return err
		}, "InvalidParameterValueException", "role"},
		{"not a zip", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = []byte("not a zip at all") }))
			return err
		}, "InvalidParameterValueException", "unzip"},
		{"zip slip", func() error {
			_, err := c.CreateFunction(ctx, base(func(in *lambda.CreateFunctionInput) {
				in.Code.ZipFile = makeZip(t, map[string]string{"../../etc/evil": "x"})
			}))
			return err
		}, "InvalidParameterValueException", ".."},
		{"zip over 50 MB", func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("err"), ZipFile: bigZip})
			return err
		}, "RequestTooLargeException", ""},
		{"stale revision", func() error {
			_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String("err"), Timeout: aws.Int32(5), RevisionId: aws.String("00000000-0000-0000-0000-000000000000")})
			return err
		}, "PreconditionFailedException", "Revision Id"},
		{"stale revision on code", func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
				FunctionName: aws.String("err"), ZipFile: zip, RevisionId: aws.String("stale")})
			return err
		}, "PreconditionFailedException", ""},
		{"delete $LATEST", func() error {
			_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("err"), Qualifier: aws.String("$LATEST")})
			return err
		}, "InvalidParameterValueException", ""},
		{"alias named like a version", func() error {
			_, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("err"), Name: aws.String("123"), FunctionVersion: aws.String("$LATEST")})
			return err
		}, "InvalidParameterValueException", ""},
		{"negative concurrency", func() error {
			_, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("err"), ReservedConcurrentExecutions: aws.Int32(-1)})
			return err
		}, "InvalidParameterValueException", ""},
		{"stale revision on publish", func() error {
			_, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("err"), RevisionId: aws.String("x" + aws.ToString(created.RevisionId))})
			return err
		}, "PreconditionFailedException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := errorCode(err); got != tt.wantCode {
				t.Fatalf("error code = %q (%v), want %q", got, err, tt.wantCode)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestFrontend_RawRequests_WireShape(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantType   string
	}{
		{"malformed json", "POST", "/2015-03-31/functions", `{"FunctionName": "x",`, 400, "InvalidRequestContentException"},
		{"wrong member type", "POST", "/2015-03-31/functions", `{"FunctionName": 5}`, 400, "InvalidRequestContentException"},
		{"bad base64 zip", "POST", "/2015-03-31/functions", `{"FunctionName":"x","Code":{"ZipFile":"!!"}}`, 400, "InvalidRequestContentException"},
		{"unknown route", "GET", "/2099-01-01/nothing", ``, 404, "UnknownOperationException"},
		{"missing function", "GET", "/2015-03-31/functions/missing/configuration", ``, 404, "ResourceNotFoundException"},
		{"invoke unavailable", "POST", "/2015-03-31/functions/missing/invocations", `{}`, 404, "ResourceNotFoundException"},
		{"invoke bad json", "POST", "/2015-03-31/functions/missing/invocations", `{`, 400, "InvalidRequestContentException"},
		{"logs without handler", "POST", "/", `{}`, 404, "UnknownOperationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.signedRequest(t, tt.method, tt.path, []byte(tt.body))
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Amzn-ErrorType") != tt.wantType {
				t.Fatalf("got %d %q %s, want %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b, tt.wantStatus, tt.wantType)
			}
			if resp.Header.Get("X-Amzn-Requestid") == "" {
				t.Error("no x-amzn-RequestId header")
			}
			body := string(b)
			if !strings.Contains(body, `"message"`) || !strings.Contains(body, `"Message"`) || !strings.Contains(body, `"Type":"User"`) {
				t.Errorf("error body %s lacks Type/message/Message", body)
			}
		})
	}

	// An oversized body is refused before it is read whole.
	big := make([]byte, 69905068)
	resp := s.signedRequest(t, "POST", "/2015-03-31/functions", big)
	if resp.StatusCode != 413 || resp.Header.Get("X-Amzn-ErrorType") != "RequestTooLargeException" {
		t.Errorf("oversized body: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

func TestFrontend_ListFunctions_Pagination(t *testing.T) {
	s := startServer(t)
	c := s.client(testAK, testSK)
	ctx := context.Background()
	zip := makeZip(t, pyZip)
	const n = 53
	want := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("page-%02d", i)
		createPy(t, c, name, zip)
		want[name] = true
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("page-00")}); err != nil {
		t.Fatal(err)
	}

	first, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Functions) != 50 || first.NextMarker == nil {
		t.Errorf("first page without MaxItems: %d functions, marker %v; want 50 and a marker", len(first.Functions), first.NextMarker)
	}

	seen := map[string]bool{}
	pages := 0
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(7)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Functions) > 7 {
			t.Errorf("page of %d > MaxItems 7", len(out.Functions))
		}
		for _, f := range out.Functions {
			if seen[aws.ToString(f.FunctionName)] {
				t.Errorf("%s listed twice", aws.ToString(f.FunctionName))
			}
			seen[aws.ToString(f.FunctionName)] = true
		}
	}
	if diff := cmp.Diff(want, seen); diff != "" || pages != 8 {
		t.Errorf("paged listing in %d pages (-want +got):\n%s", pages, diff)
	}

	all := 0
	pa := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll})
	for pa.HasMorePages() {
		out, err := pa.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all += len(out.Functions)
	}
	if all != n+1 {
		t.Errorf("FunctionVersion=ALL listed %d, want %d", all, n+1)
	}
	if _, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{Marker: aws.String("%%%")}); errorCode(err) != "InvalidParameterValueException" {
		t.Errorf("bad marker: %v", err)
	}
}

func TestFrontend_SigV4_Refusals(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		ak, sk   string
		wantCode string
	}{
		{"wrong secret", testAK, "wrong", "InvalidSignatureException"},
		{"unknown key", "AKIDUNKNOWN", testSK, "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.client(tt.ak, tt.sk).ListFunctions(ctx, &lambda.ListFunctionsInput{})
			if got := errorCode(err); got != tt.wantCode {
				t.Fatalf("error code %q (%v), want %q", got, err, tt.wantCode)
			}
			if !strings.Contains(strings.ToLower(err.Error()), "signature") && !strings.Contains(err.Error(), "UnrecognizedClient") {
				t.Errorf("message %q mentions neither signature nor UnrecognizedClient", err)
			}
		})
	}
	// A correctly signed request whose body was swapped afterwards fails.
	resp, err := http.Post(s.endpoint+"/2015-03-31/functions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "UnrecognizedClientException" {
		t.Errorf("unsigned request: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	// ARNs in the path (escaped ':') verify, as the SDK double-encodes them.
	createPy(t, s.client(testAK, testSK), "sig", makeZip(t, pyZip))
	if _, err := s.client(testAK, testSK).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:sig:$LATEST")}); err != nil {
		t.Errorf("GetFunction by qualified ARN: %v", err)
	}
}
