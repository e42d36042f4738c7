package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/registry"
)

// WatchCode sends $LATEST's code hash on create and on every change after
// the watch started, and nothing for a delete.
func TestRegistry_WatchCode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := openOn(t, ctx, registry.Config{JetStream: natstest.Start(t, "").JetStream(), Runtimes: registry.StaticRuntimes{"provided.al2023"}})
	createIn(t, r, "before") // before the watch: not sent
	codes, err := r.WatchCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		select {
		case sha := <-codes:
			return sha
		case <-time.After(5 * time.Second):
			t.Fatal("no code hash within 5 s")
			return ""
		}
	}
	createIn(t, r, "fn")
	created, err := r.GetFunction(ctx, "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := next(); got != created.Config.CodeSha256 {
		t.Fatalf("after create: %q, want %q", got, created.Config.CodeSha256)
	}
	updated, err := r.UpdateFunctionCode(ctx, "fn", registry.UpdateCodeInput{ZipFile: zipWith(t, "#!/bin/sh\necho 2\n")})
	if err != nil {
		t.Fatal(err)
	}
	if updated.CodeSha256 == created.Config.CodeSha256 {
		t.Fatal("the update kept the code hash")
	}
	if got := next(); got != updated.CodeSha256 {
		t.Fatalf("after update: %q, want %q", got, updated.CodeSha256)
	}
	if err := r.DeleteFunction(ctx, "fn", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case sha := <-codes:
		t.Fatalf("a delete sent %q", sha)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	for range codes { // closed once ctx ends
	}
}
