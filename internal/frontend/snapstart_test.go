package frontend_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ignis-run/ignis/internal/registry"
)

// TestFrontend_SnapStart_VersionStates: SnapStart's API fields through the
// SDK. $LATEST is never optimized; a published version is Pending /
// InProgress until its snapshot settles it, then Active with
// OptimizationStatus On (or Failed with a reason); ApplyOn is validated.
func TestFrontend_SnapStart_VersionStates(t *testing.T) {
	s := startServer(t)
	c := s.client(testAK, testSK)
	ctx := context.Background()

	_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("snap"), Role: aws.String(testRole), Runtime: types.RuntimePython311,
		Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: makeZip(t, pyZip)},
		SnapStart: &types.SnapStart{ApplyOn: "Sometimes"},
	})
	if code := errorCode(err); code != "InvalidParameterValueException" {
		t.Fatalf("CreateFunction with ApplyOn Sometimes: %v, want InvalidParameterValueException", err)
	}
	created, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("snap"), Role: aws.String(testRole), Runtime: types.RuntimePython311,
		Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: makeZip(t, pyZip)},
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions},
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.SnapStart.ApplyOn != types.SnapStartApplyOnPublishedVersions || created.SnapStart.OptimizationStatus != types.SnapStartOptimizationStatusOff {
		t.Errorf("$LATEST SnapStart = %+v, want PublishedVersions/Off", created.SnapStart)
	}

	v1, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snap")})
	if err != nil {
		t.Fatal(err)
	}
	if v1.State != types.StatePending || v1.LastUpdateStatus != types.LastUpdateStatusInProgress ||
		v1.StateReasonCode != types.StateReasonCodeCreating || v1.SnapStart.OptimizationStatus != types.SnapStartOptimizationStatusOff {
		t.Errorf("published version: State %s, LastUpdateStatus %s, reason %s, SnapStart %+v; want Pending/InProgress/Creating/Off",
			v1.State, v1.LastUpdateStatus, v1.StateReasonCode, v1.SnapStart)
	}
	ok, err := s.reg.SetVersionState(ctx, "snap", "1", aws.ToString(v1.RevisionId), registry.VersionState{State: registry.StateActive, Optimized: true})
	if err != nil || !ok {
		t.Fatalf("SetVersionState: %v, %v", ok, err)
	}
	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snap"), Qualifier: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != types.StateActive || got.LastUpdateStatus != types.LastUpdateStatusSuccessful || got.SnapStart.OptimizationStatus != types.SnapStartOptimizationStatusOn {
		t.Errorf("settled version: %s/%s/%+v, want Active/Successful/On", got.State, got.LastUpdateStatus, got.SnapStart)
	}
	// Settling is once: a second outcome does not overwrite the first.
	if ok, _ := s.reg.SetVersionState(ctx, "snap", "1", aws.ToString(v1.RevisionId), registry.VersionState{State: registry.StateFailed}); ok {
		t.Error("an Active version was settled again")
	}

	// A failed snapshot: Failed with its reason; $LATEST is untouched.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("snap"), Description: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snap")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.reg.SetVersionState(ctx, "snap", "2", aws.ToString(v2.RevisionId), registry.VersionState{
		State: registry.StateFailed, StateReasonCode: "FunctionError.RuntimeInitError", StateReason: "Runtime.ImportModuleError: no module"}); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snap"), Qualifier: aws.String("2")})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != types.StateFailed || got.LastUpdateStatus != types.LastUpdateStatusFailed || aws.ToString(got.StateReason) == "" ||
		got.StateReasonCode != types.StateReasonCodeFunctionErrorRuntimeInitError || got.SnapStart.OptimizationStatus != types.SnapStartOptimizationStatusOff {
		t.Errorf("failed version: %s/%s/%s %q %+v", got.State, got.LastUpdateStatus, got.StateReasonCode, aws.ToString(got.StateReason), got.SnapStart)
	}
	latest, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("snap")})
	if err != nil {
		t.Fatal(err)
	}
	if latest.State != types.StateActive || latest.SnapStart.OptimizationStatus != types.SnapStartOptimizationStatusOff {
		t.Errorf("$LATEST: %s %+v", latest.State, latest.SnapStart)
	}

	// Turning it off: the next version publishes Active at once.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("snap"),
		SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnNone}}); err != nil {
		t.Fatal(err)
	}
	v3, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snap")})
	if err != nil {
		t.Fatal(err)
	}
	if v3.State != types.StateActive || v3.SnapStart.ApplyOn != types.SnapStartApplyOnNone {
		t.Errorf("version without SnapStart: %s %+v", v3.State, v3.SnapStart)
	}
}
