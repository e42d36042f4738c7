package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/registry"
)

func TestRegistry_FunctionURL_Lifecycle(t *testing.T) {
	ctx := context.Background()
	r, clk := newRegistry(t)
	createFn(t, r, "f")

	if _, err := r.GetFunctionURLConfig(ctx, "f", ""); !errdefs.IsNotFound(err) {
		t.Fatalf("get before create: %v, want not found", err)
	}
	if _, err := r.UpdateFunctionURLConfig(ctx, "f", "", registry.URLConfigInput{AuthType: ptr("NONE")}); !errdefs.IsNotFound(err) {
		t.Fatalf("update before create: %v, want not found", err)
	}
	if err := r.DeleteFunctionURLConfig(ctx, "f", ""); !errdefs.IsNotFound(err) {
		t.Fatalf("delete before create: %v, want not found", err)
	}

	cors := &registry.URLCors{AllowOrigins: []string{"https://example.com"}, AllowMethods: []string{"GET", "POST"}, MaxAge: 60}
	c, err := r.CreateFunctionURLConfig(ctx, "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), Cors: cors})
	if err != nil {
		t.Fatal(err)
	}
	if !registry.ValidURLID(c.URLID) || c.InvokeMode != "BUFFERED" || c.Qualifier != "" || !c.Created.Equal(clk.Now()) {
		t.Fatalf("created %+v", c)
	}
	if _, err := r.CreateFunctionURLConfig(ctx, "f", "", registry.URLConfigInput{AuthType: ptr("NONE")}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want already exists", err)
	}
	// $LATEST and no qualifier name the same URL.
	if _, err := r.CreateFunctionURLConfig(ctx, "f", "$LATEST", registry.URLConfigInput{AuthType: ptr("NONE")}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("create for $LATEST: %v, want already exists", err)
	}
	got, err := r.GetFunctionURLConfig(ctx, "arn:aws:lambda:us-east-1:000000000000:function:f", "$LATEST")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("get (-created +got):\n%s", diff)
	}

	clk.Advance(time.Minute)
	up, err := r.UpdateFunctionURLConfig(ctx, "f", "", registry.URLConfigInput{AuthType: ptr("AWS_IAM")})
	if err != nil {
		t.Fatal(err)
	}
	if up.URLID != c.URLID || up.AuthType != "AWS_IAM" || up.Cors == nil || !up.Modified.Equal(clk.Now()) || !up.Created.Equal(c.Created) {
		t.Fatalf("updated %+v", up)
	}
	looked, err := r.LookupFunctionURL(ctx, c.URLID)
	if err != nil || looked.AuthType != "AWS_IAM" || looked.FunctionName != "f" {
		t.Fatalf("lookup after update: %+v, %v", looked, err)
	}
	if _, err := r.LookupFunctionURL(ctx, strings.Repeat("a", 32)); !errdefs.IsNotFound(err) {
		t.Fatalf("lookup of an unknown id: %v", err)
	}
	if _, err := r.LookupFunctionURL(ctx, "../x"); !errdefs.IsNotFound(err) {
		t.Fatalf("lookup of a malformed id: %v", err)
	}

	if err := r.DeleteFunctionURLConfig(ctx, "f", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LookupFunctionURL(ctx, c.URLID); !errdefs.IsNotFound(err) {
		t.Fatalf("lookup after delete: %v, want not found", err)
	}
	again, err := r.CreateFunctionURLConfig(ctx, "f", "", registry.URLConfigInput{AuthType: ptr("NONE")})
	if err != nil {
		t.Fatal(err)
	}
	if again.URLID == c.URLID {
		t.Error("a re-created URL reused the deleted URL's id")
	}
}

func TestRegistry_FunctionURL_Errors(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	createFn(t, r, "f")
	if _, err := r.PublishVersion(ctx, "f", registry.PublishInput{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		fn, qual  string
		in        registry.URLConfigInput
		wantClass error
		wantMsg   string
	}{
		{"version qualifier", "f", "1", registry.URLConfigInput{AuthType: ptr("NONE")}, errdefs.ErrInvalidArgument, "at 'qualifier'"},
		{"version in the name", "f:1", "", registry.URLConfigInput{AuthType: ptr("NONE")}, errdefs.ErrInvalidArgument, "at 'qualifier'"},
		{"missing alias", "f", "nope", registry.URLConfigInput{AuthType: ptr("NONE")}, errdefs.ErrNotFound, ""},
		{"missing function", "g", "", registry.URLConfigInput{AuthType: ptr("NONE")}, errdefs.ErrNotFound, "Function not found"},
		{"no auth type", "f", "", registry.URLConfigInput{}, errdefs.ErrInvalidArgument, "authType"},
		{"bad auth type", "f", "", registry.URLConfigInput{AuthType: ptr("OPEN")}, errdefs.ErrInvalidArgument, "[NONE, AWS_IAM]"},
		{"response stream", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), InvokeMode: ptr("RESPONSE_STREAM")}, errdefs.ErrInvalidArgument, "RESPONSE_STREAM is not supported"},
		{"bad invoke mode", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), InvokeMode: ptr("X")}, errdefs.ErrInvalidArgument, "invokeMode"},
		{"max age", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), Cors: &registry.URLCors{MaxAge: 86401}}, errdefs.ErrInvalidArgument, "maxAge"},
		{"method", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), Cors: &registry.URLCors{AllowMethods: []string{"TRACE"}}}, errdefs.ErrInvalidArgument, "AllowMethods"},
		{"too many methods", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), Cors: &registry.URLCors{AllowMethods: make([]string, 7)}}, errdefs.ErrInvalidArgument, "allowMethods"},
		{"empty origin", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), Cors: &registry.URLCors{AllowOrigins: []string{""}}}, errdefs.ErrInvalidArgument, "allowOrigins"},
		{"header with newline", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), Cors: &registry.URLCors{AllowHeaders: []string{"a\r\nb"}}}, errdefs.ErrInvalidArgument, "control characters"},
		{"long header", "f", "", registry.URLConfigInput{AuthType: ptr("NONE"), Cors: &registry.URLCors{ExposeHeaders: []string{strings.Repeat("x", 1025)}}}, errdefs.ErrInvalidArgument, "exposeHeaders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.CreateFunctionURLConfig(ctx, tt.fn, tt.qual, tt.in)
			if !errors.Is(err, tt.wantClass) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("got %v, want %v containing %q", err, tt.wantClass, tt.wantMsg)
			}
		})
	}
	if _, _, err := r.ListFunctionURLConfigs(ctx, "f", registry.ListInput{MaxItems: 51}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("list with MaxItems 51: %v", err)
	}
	if _, _, err := r.ListFunctionURLConfigs(ctx, "g", registry.ListInput{}); !errdefs.IsNotFound(err) {
		t.Errorf("list of a missing function: %v", err)
	}
}

func TestRegistry_FunctionURL_DeletedWithFunctionAndAlias(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	createFn(t, r, "f")
	for _, a := range []string{"live", "other"} {
		if _, err := r.CreateAlias(ctx, "f", a, registry.AliasInput{FunctionVersion: ptr("$LATEST")}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, q := range []string{"", "live", "other"} {
		c, err := r.CreateFunctionURLConfig(ctx, "f", q, registry.URLConfigInput{AuthType: ptr("NONE")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.URLID)
	}
	all, next, err := r.ListFunctionURLConfigs(ctx, "f", registry.ListInput{MaxItems: 2})
	if err != nil || len(all) != 2 || next == "" {
		t.Fatalf("list page 1: %d items, next %q, %v", len(all), next, err)
	}
	rest, next, err := r.ListFunctionURLConfigs(ctx, "f", registry.ListInput{Marker: next})
	if err != nil || len(rest) != 1 || next != "" {
		t.Fatalf("list page 2: %d items, next %q, %v", len(rest), next, err)
	}

	if err := r.DeleteAlias(ctx, "f", "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LookupFunctionURL(ctx, ids[2]); !errdefs.IsNotFound(err) {
		t.Fatalf("URL of a deleted alias: %v, want not found", err)
	}
	if _, err := r.CreateAlias(ctx, "f", "other", registry.AliasInput{FunctionVersion: ptr("$LATEST")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetFunctionURLConfig(ctx, "f", "other"); !errdefs.IsNotFound(err) {
		t.Fatalf("a re-created alias inherited the URL: %v", err)
	}

	if err := r.DeleteFunction(ctx, "f", ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := r.LookupFunctionURL(ctx, id); !errdefs.IsNotFound(err) {
			t.Fatalf("URL %s of a deleted function: %v, want not found", id, err)
		}
	}
	createFn(t, r, "f")
	if got, _, err := r.ListFunctionURLConfigs(ctx, "f", registry.ListInput{}); err != nil || len(got) != 0 {
		t.Fatalf("a re-created function inherited URLs: %+v, %v", got, err)
	}
}

func TestRegistry_FunctionURL_SurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*registry.Registry, func()) {
		ns := natstest.Start(t, dir)
		r, err := registry.Open(ctx, registry.Config{JetStream: ns.JetStream(), Runtimes: registry.StaticRuntimes{"provided.al2023"}, Clock: clock.Real{}})
		if err != nil {
			t.Fatal(err)
		}
		return r, func() { r.Close(); ns.Close() }
	}
	r1, close1 := open()
	createFn(t, r1, "f")
	c, err := r1.CreateFunctionURLConfig(ctx, "f", "", registry.URLConfigInput{AuthType: ptr("NONE")})
	if err != nil {
		t.Fatal(err)
	}
	close1()

	r2, close2 := open()
	defer close2()
	got, err := r2.LookupFunctionURL(ctx, c.URLID)
	if err != nil || got.FunctionName != "f" {
		t.Fatalf("lookup after restart: %+v, %v", got, err)
	}
}
