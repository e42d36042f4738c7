package server_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/ignis-run/ignis/internal/codepkg/codepkgtest"
	"github.com/ignis-run/ignis/internal/server/servertest"
)

// TestServer_HostileCode_LeavesHostUntouched gives a real `ignis server`
// process, running as root, the link-chain package of issue 11 (whose file
// a link-following unpacker writes at /<marker>) through CreateFunction and
// UpdateFunctionCode: both must answer InvalidParameterValueException, and
// nothing may change outside the server's data directory, up to "/".
func TestServer_HostileCode_LeavesHostUntouched(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the escape this test looks for needs a server running as root")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	w := codepkgtest.NewWatch(t, codepkgtest.Marker())
	srv := servertest.StartProcess(t, servertest.Build(t), servertest.FreeAddr(t), w.Root)
	ctx := context.Background()
	chain := codepkgtest.LinkChain(t, w.Marker)
	role := aws.String("arn:aws:iam::000000000000:role/test")

	_, err := srv.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("chain"), Role: role, Runtime: types.RuntimePython311,
		Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: chain},
	})
	wantInvalidParameter(t, "CreateFunction", err)
	if _, err := srv.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("chain")}); err == nil {
		t.Error("the refused function exists")
	}

	good := servertest.Zip(t, map[string][]byte{"app.py": []byte("def handler(e, c): return 1\n")})
	if _, err := srv.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("good"), Role: role, Runtime: types.RuntimePython311,
		Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: good},
	}); err != nil {
		t.Fatal(err)
	}
	_, err = srv.Lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("good"), ZipFile: chain})
	wantInvalidParameter(t, "UpdateFunctionCode", err)

	// The same package through the AWS CLI, as an attacker with a user's
	// tools would send it.
	if cli, err := exec.LookPath("/usr/bin/aws"); err == nil {
		zip := filepath.Join(t.TempDir(), "chain.zip")
		if err := os.WriteFile(zip, chain, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"create-function", "--function-name", "chain-cli", "--runtime", "python3.11", "--handler", "app.handler",
				"--role", *role, "--zip-file", "fileb://" + zip},
			{"update-function-code", "--function-name", "good", "--zip-file", "fileb://" + zip},
		} {
			cmd := exec.Command(cli, append([]string{"lambda", "--endpoint-url", srv.Endpoint}, args...)...)
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+servertest.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+servertest.SecretAccessKey,
				"AWS_DEFAULT_REGION=us-east-1", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "InvalidParameterValueException") {
				t.Errorf("aws lambda %s of the link chain: %v: %s, want InvalidParameterValueException", args[0], err, out)
			}
		}
	} else {
		t.Log("no AWS CLI v2 at /usr/bin/aws: the CLI half is not run")
	}

	w.Check(t)
}

func wantInvalidParameter(t *testing.T, op string, err error) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidParameterValueException" {
		t.Errorf("%s of the link chain: %v, want InvalidParameterValueException", op, err)
	}
}
