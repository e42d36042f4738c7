package registry_test

import (
	"archive/zip"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ignis-run/ignis/internal/embednats/natstest"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/registry"
)

// openOn opens a registry on an existing JetStream server.
func openOn(t testing.TB, ctx context.Context, js registry.Config) *registry.Registry {
	t.Helper()
	r, err := registry.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func zipWith(t testing.TB, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(body))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func createIn(t testing.TB, r *registry.Registry, name string) {
	t.Helper()
	rt, role := "provided.al2023", "arn:aws:iam::000000000000:role/x"
	_, err := r.CreateFunction(context.Background(), registry.CreateFunctionInput{
		Name: name, ZipFile: zipWith(t, "#!/bin/sh\n"), Config: registry.ConfigInput{Runtime: &rt, Role: &role},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustResolve(t *testing.T, r *registry.Registry, fn, q string) registry.ResolvedVersion {
	t.Helper()
	rv, err := r.Resolve(context.Background(), fn, q)
	if err != nil {
		t.Fatalf("Resolve(%s, %q): %v", fn, q, err)
	}
	return rv
}

func wantNotFound(t *testing.T, r *registry.Registry, fn, q string) {
	t.Helper()
	if _, err := r.Resolve(context.Background(), fn, q); !errdefs.IsNotFound(err) {
		t.Fatalf("Resolve(%s, %q) = %v, want not found", fn, q, err)
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Every mutation is visible to the very next Resolve in the same process,
// even though the previous Resolve filled the cache.
func TestResolveCache_ReadYourWrites(t *testing.T) {
	ctx := context.Background()
	ns := natstest.Start(t, "")
	r := openOn(t, ctx, registry.Config{JetStream: ns.JetStream(), Runtimes: registry.StaticRuntimes{"provided.al2023"}})
	const fn = "f"
	createIn(t, r, fn)
	first := mustResolve(t, r, fn, "")
	mustResolve(t, r, fn, "") // warm

	// UpdateFunctionConfiguration
	timeout := 42
	_, err := r.UpdateFunctionConfiguration(ctx, fn, registry.UpdateConfigInput{Config: registry.ConfigInput{Timeout: &timeout}})
	check(t, err)
	if got := mustResolve(t, r, fn, "").Primary.Timeout; got != 42 {
		t.Fatalf("after config update Timeout = %d, want 42", got)
	}
	// UpdateFunctionCode
	_, err = r.UpdateFunctionCode(ctx, fn, registry.UpdateCodeInput{ZipFile: zipWith(t, "#!/bin/sh\necho 2\n")})
	check(t, err)
	if got := mustResolve(t, r, fn, "$LATEST").Primary.CodeSha256; got == first.Primary.CodeSha256 {
		t.Fatal("after code update CodeSha256 unchanged")
	}
	// PublishVersion
	wantNotFound(t, r, fn, "1")
	v1, err := r.PublishVersion(ctx, fn, registry.PublishInput{})
	check(t, err)
	if got := mustResolve(t, r, fn, "1").Primary.RevisionId; got != v1.RevisionId {
		t.Fatalf("version 1 RevisionId = %s, want %s", got, v1.RevisionId)
	}
	// CreateAlias
	wantNotFound(t, r, fn, "live")
	_, err = r.CreateAlias(ctx, fn, "live", registry.AliasInput{FunctionVersion: ptr("1")})
	check(t, err)
	if got := mustResolve(t, r, fn, "live").Primary.Version; got != "1" {
		t.Fatalf("alias live → %s, want 1", got)
	}
	// UpdateAlias
	timeout = 7
	_, err = r.UpdateFunctionConfiguration(ctx, fn, registry.UpdateConfigInput{Config: registry.ConfigInput{Timeout: &timeout}})
	check(t, err)
	_, err = r.PublishVersion(ctx, fn, registry.PublishInput{})
	check(t, err)
	w := map[string]float64{"1": 0.25}
	_, err = r.UpdateAlias(ctx, fn, "live", registry.AliasInput{FunctionVersion: ptr("2"), Weights: &w})
	check(t, err)
	rv := mustResolve(t, r, fn, "live")
	if rv.Primary.Version != "2" || rv.Primary.Timeout != 7 || rv.Additional == nil || rv.Additional.Version != "1" || rv.AdditionalWeight != 0.25 {
		t.Fatalf("after alias update: primary %s additional %+v weight %v", rv.Primary.Version, rv.Additional, rv.AdditionalWeight)
	}
	// Delete a version (drops it from the alias's routing too).
	check(t, r.DeleteFunction(ctx, fn, "1"))
	wantNotFound(t, r, fn, "1")
	if rv := mustResolve(t, r, fn, "live"); rv.Additional != nil {
		t.Fatalf("deleted version still routed: %+v", rv.Additional)
	}
	// DeleteAlias
	check(t, r.DeleteAlias(ctx, fn, "live"))
	wantNotFound(t, r, fn, "live")
	// Reserved concurrency put / delete: the invoke path follows them through
	// WatchReservations, not Resolve.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	res, err := r.WatchReservations(watchCtx)
	check(t, err)
	nextReservations := func() registry.Reservations {
		t.Helper()
		select {
		case m := <-res:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no reservations update within 5s")
			return registry.Reservations{}
		}
	}
	if m := nextReservations(); len(m.Reserved) != 0 || r.ReservationsWritten() != 0 {
		t.Fatalf("initial reservations = %+v (written %d), want none", m, r.ReservationsWritten())
	}
	check(t, r.PutFunctionConcurrency(ctx, fn, 5))
	if m := nextReservations(); m.Reserved[fn] != 5 || m.Revision == 0 || m.Revision != r.ReservationsWritten() {
		t.Fatalf("reservations after put = %+v, want %s: 5 at the written revision %d", m, fn, r.ReservationsWritten())
	}
	check(t, r.DeleteFunctionConcurrency(ctx, fn))
	if m := nextReservations(); len(m.Reserved) != 0 || m.Revision != r.ReservationsWritten() {
		t.Fatalf("reservations after delete = %+v, want none at the written revision %d", m, r.ReservationsWritten())
	}
	// DeleteFunction, then a new function of the same name: nothing of the
	// old one may come back.
	check(t, r.DeleteFunction(ctx, fn, ""))
	wantNotFound(t, r, fn, "")
	wantNotFound(t, r, fn, "2")
	createIn(t, r, fn)
	if got := mustResolve(t, r, fn, "").Primary.Timeout; got == 7 {
		t.Fatal("recreated function resolves to the deleted one's configuration")
	}
	wantNotFound(t, r, fn, "2")
}

// A write through a second Registry on the same JetStream (another node)
// reaches the first one's cache through the watchers.
func TestResolveCache_RemoteWrites(t *testing.T) {
	ctx := context.Background()
	ns := natstest.Start(t, "")
	cfg := registry.Config{JetStream: ns.JetStream(), Runtimes: registry.StaticRuntimes{"provided.al2023"}}
	r1, r2 := openOn(t, ctx, cfg), openOn(t, ctx, cfg)
	const fn = "g"
	createIn(t, r2, fn)
	_, err := r2.PublishVersion(ctx, fn, registry.PublishInput{})
	check(t, err)
	_, err = r2.CreateAlias(ctx, fn, "live", registry.AliasInput{FunctionVersion: ptr("$LATEST")})
	check(t, err)
	for _, q := range []string{"", "1", "live"} {
		mustResolve(t, r1, fn, q)
		mustResolve(t, r1, fn, q) // warm
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("remote %s not visible after 2s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	timeout := 99
	_, err = r2.UpdateFunctionConfiguration(ctx, fn, registry.UpdateConfigInput{Config: registry.ConfigInput{Timeout: &timeout}})
	check(t, err)
	eventually("config update", func() bool { return mustResolve(t, r1, fn, "live").Primary.Timeout == 99 })
	_, err = r2.PublishVersion(ctx, fn, registry.PublishInput{})
	check(t, err)
	_, err = r2.UpdateAlias(ctx, fn, "live", registry.AliasInput{FunctionVersion: ptr("2")})
	check(t, err)
	eventually("alias update", func() bool { return mustResolve(t, r1, fn, "live").Primary.Version == "2" })
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	res, err := r1.WatchReservations(watchCtx)
	check(t, err)
	check(t, r2.PutFunctionConcurrency(ctx, fn, 3))
	eventually("reserved concurrency", func() bool {
		for {
			select {
			case m := <-res:
				if m.Reserved[fn] == 3 {
					return true
				}
			default:
				return false
			}
		}
	})
	check(t, r2.DeleteFunction(ctx, fn, ""))
	eventually("function delete", func() bool {
		_, err := r1.Resolve(ctx, fn, "1")
		return errdefs.IsNotFound(err)
	})
	wantNotFound(t, r1, fn, "")
	wantNotFound(t, r1, fn, "live")
}

// Configurations handed out are the caller's: changing one does not change
// what the next Resolve returns.
func TestResolveCache_ResultIsCopy(t *testing.T) {
	ctx := context.Background()
	ns := natstest.Start(t, "")
	r := openOn(t, ctx, registry.Config{JetStream: ns.JetStream(), Runtimes: registry.StaticRuntimes{"provided.al2023"}})
	createIn(t, r, "h")
	env := map[string]string{"A": "1"}
	_, err := r.UpdateFunctionConfiguration(ctx, "h", registry.UpdateConfigInput{Config: registry.ConfigInput{Environment: &env}})
	check(t, err)
	rv := mustResolve(t, r, "h", "")
	rv.Primary.Environment["A"] = "mutated"
	rv.Primary.Architectures[0] = "mutated"
	rv = mustResolve(t, r, "h", "")
	if rv.Primary.Environment["A"] != "1" || rv.Primary.Architectures[0] == "mutated" {
		t.Fatalf("cache aliased by a returned configuration: %v %v", rv.Primary.Environment, rv.Primary.Architectures)
	}
}

func BenchmarkRegistry_Resolve(b *testing.B) {
	ctx := context.Background()
	ns := natstest.Start(b, "")
	r := openOn(b, ctx, registry.Config{JetStream: ns.JetStream(), Runtimes: registry.StaticRuntimes{"provided.al2023"}})
	createIn(b, r, "bench")
	if _, err := r.PublishVersion(ctx, "bench", registry.PublishInput{}); err != nil {
		b.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "bench", "live", registry.AliasInput{FunctionVersion: ptr("1")}); err != nil {
		b.Fatal(err)
	}
	if err := r.PutFunctionConcurrency(ctx, "bench", 10); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"", "1", "live"} {
		b.Run("q="+q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Resolve(ctx, "bench", q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
