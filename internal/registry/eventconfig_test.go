package registry_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/registry"
)

func newRegistry(t *testing.T) (*registry.Registry, *clock.Fake) {
	t.Helper()
	ns := natstest.Start(t, "")
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r, err := registry.Open(context.Background(), registry.Config{
		JetStream: ns.JetStream(),
		Runtimes:  registry.StaticRuntimes{"provided.al2023"},
		Clock:     clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, clk
}

func tinyZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("#!/bin/sh\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func createFn(t *testing.T, r *registry.Registry, name string) {
	t.Helper()
	rt, role := "provided.al2023", "arn:aws:iam::000000000000:role/x"
	_, err := r.CreateFunction(context.Background(), registry.CreateFunctionInput{
		Name: name, ZipFile: tinyZip(t), Config: registry.ConfigInput{Runtime: &rt, Role: &role},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRegistry_EventInvokeConfig_Lifecycle(t *testing.T) {
	ctx := context.Background()
	r, clk := newRegistry(t)
	createFn(t, r, "f")
	createFn(t, r, "dest")

	if _, err := r.GetFunctionEventInvokeConfig(ctx, "f", ""); !errdefs.IsNotFound(err) {
		t.Fatalf("get before put: %v, want not found", err)
	}
	if _, err := r.UpdateFunctionEventInvokeConfig(ctx, "f", "", registry.EventInvokeConfigInput{}); !errdefs.IsNotFound(err) {
		t.Fatalf("update before put: %v, want not found", err)
	}
	eff, err := r.EffectiveEventInvokeConfig(ctx, "f", "")
	if err != nil || eff.MaximumRetryAttempts != 2 || eff.MaximumEventAgeInSeconds != 21600 {
		t.Fatalf("effective default: %+v, %v", eff, err)
	}

	got, err := r.PutFunctionEventInvokeConfig(ctx, "f", "", registry.EventInvokeConfigInput{
		MaximumRetryAttempts: ptr(0),
		OnFailure:            ptr("arn:aws:sqs:us-east-1:000000000000:failures"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := registry.EventInvokeConfig{
		FunctionName: "f", Qualifier: "$LATEST", MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 21600,
		OnFailure: "arn:aws:sqs:us-east-1:000000000000:failures", LastModified: clk.Now(),
	}
	opt := cmpIgnoreCreated()
	if d := cmp.Diff(want, got, opt); d != "" {
		t.Fatalf("put (-want +got):\n%s", d)
	}

	// Update merges.
	clk.Advance(time.Second)
	got, err = r.UpdateFunctionEventInvokeConfig(ctx, "f", "$LATEST", registry.EventInvokeConfigInput{
		MaximumEventAgeInSeconds: ptr(120),
		OnSuccess:                ptr("arn:aws:lambda:us-east-1:000000000000:function:dest"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want.MaximumEventAgeInSeconds, want.OnSuccess, want.LastModified = 120, "arn:aws:lambda:us-east-1:000000000000:function:dest", clk.Now()
	if d := cmp.Diff(want, got, opt); d != "" {
		t.Fatalf("update (-want +got):\n%s", d)
	}
	// Put replaces: unspecified fields go back to defaults.
	got, err = r.PutFunctionEventInvokeConfig(ctx, "f", "", registry.EventInvokeConfigInput{MaximumRetryAttempts: ptr(1)})
	if err != nil {
		t.Fatal(err)
	}
	if got.OnSuccess != "" || got.OnFailure != "" || got.MaximumEventAgeInSeconds != 21600 || got.MaximumRetryAttempts != 1 {
		t.Fatalf("put did not replace: %+v", got)
	}
	eff, err = r.EffectiveEventInvokeConfig(ctx, "f", "$LATEST")
	if err != nil || eff.MaximumRetryAttempts != 1 {
		t.Fatalf("effective after put: %+v, %v", eff, err)
	}

	list, next, err := r.ListFunctionEventInvokeConfigs(ctx, "f", registry.ListInput{})
	if err != nil || len(list) != 1 || next != "" {
		t.Fatalf("list: %+v %q %v", list, next, err)
	}
	if err := r.DeleteFunctionEventInvokeConfig(ctx, "f", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteFunctionEventInvokeConfig(ctx, "f", ""); !errdefs.IsNotFound(err) {
		t.Fatalf("second delete: %v, want not found", err)
	}

	// A deleted and re-created function does not inherit the old config.
	if _, err := r.PutFunctionEventInvokeConfig(ctx, "f", "", registry.EventInvokeConfigInput{MaximumRetryAttempts: ptr(0)}); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteFunction(ctx, "f", ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	createFn(t, r, "f")
	if _, err := r.GetFunctionEventInvokeConfig(ctx, "f", ""); !errdefs.IsNotFound(err) {
		t.Fatalf("get after re-create: %v, want not found", err)
	}
}

func cmpIgnoreCreated() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".FunctionCreated" }, cmp.Ignore())
}

func TestRegistry_PutFunctionEventInvokeConfig_Validation(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	createFn(t, r, "f")
	tests := []struct {
		name      string
		qualifier string
		in        registry.EventInvokeConfigInput
		class     error
	}{
		{"retries_negative", "", registry.EventInvokeConfigInput{MaximumRetryAttempts: ptr(-1)}, errdefs.ErrInvalidArgument},
		{"retries_3", "", registry.EventInvokeConfigInput{MaximumRetryAttempts: ptr(3)}, errdefs.ErrInvalidArgument},
		{"age_59", "", registry.EventInvokeConfigInput{MaximumEventAgeInSeconds: ptr(59)}, errdefs.ErrInvalidArgument},
		{"age_21601", "", registry.EventInvokeConfigInput{MaximumEventAgeInSeconds: ptr(21601)}, errdefs.ErrInvalidArgument},
		{"bad_arn", "", registry.EventInvokeConfigInput{OnFailure: ptr("nope")}, errdefs.ErrInvalidArgument},
		{"unsupported_service", "", registry.EventInvokeConfigInput{OnFailure: ptr("arn:aws:s3:::bucket")}, errdefs.ErrInvalidArgument},
		{"self_destination", "", registry.EventInvokeConfigInput{OnSuccess: ptr("arn:aws:lambda:us-east-1:000000000000:function:f")}, errdefs.ErrInvalidArgument},
		{"missing_version", "7", registry.EventInvokeConfigInput{}, errdefs.ErrNotFound},
		{"missing_alias", "prod", registry.EventInvokeConfigInput{}, errdefs.ErrNotFound},
		{"edges_ok", "", registry.EventInvokeConfigInput{MaximumRetryAttempts: ptr(2), MaximumEventAgeInSeconds: ptr(60), OnFailure: ptr("arn:aws:sns:us-east-1:000000000000:topic")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.PutFunctionEventInvokeConfig(ctx, "f", tt.qualifier, tt.in)
			if tt.class == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %v, want class %v", err, tt.class)
			}
		})
	}
	if _, _, err := r.ListFunctionEventInvokeConfigs(ctx, "nope", registry.ListInput{}); !errdefs.IsNotFound(err) {
		t.Fatalf("list of missing function: %v", err)
	}
}
