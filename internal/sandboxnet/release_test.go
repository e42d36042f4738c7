package sandboxnet_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ignis-run/ignis/internal/fnspec"
	"github.com/ignis-run/ignis/internal/sandboxnet"
	"github.com/ignis-run/ignis/internal/sandboxnet/sandboxnettest"
)

// TestRelease_ReusedName: once a sandbox's namespace is gone its
// interface name may go to another sandbox; releasing the first one late
// (a crashed sandbox destroyed after the fact, a handle recovered after a
// restart) must leave the second one's rules alone.
func TestRelease_ReusedName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandbox networking needs root")
	}
	n, err := sandboxnet.New(context.Background(), sandboxnet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	first := filepath.Join(t.TempDir(), "first")
	if err := sandboxnet.NewNamespace(first); err != nil {
		t.Fatal(err)
	}
	old, err := n.Attach(context.Background(), first, fnspec.Network{})
	if err != nil {
		t.Fatal(err)
	}
	index, _ := strconv.ParseUint(strings.TrimPrefix(old.Name(), sandboxnet.IfPrefix), 36, 64)
	if err := sandboxnet.RemoveNamespace(first); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := netlink.LinkByName(old.Name()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s outlived its namespace", old.Name())
		}
	}
	n.SetNextIndex(index) // the next attach takes the freed name
	second := filepath.Join(t.TempDir(), "second")
	if err := sandboxnet.NewNamespace(second); err != nil {
		t.Fatal(err)
	}
	defer sandboxnet.RemoveNamespace(second)
	cur, err := n.Attach(context.Background(), second, fnspec.Network{})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if cur.Name() != old.Name() {
		t.Fatalf("the second attach took %s, not the freed %s", cur.Name(), old.Name())
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.ReleaseIn(first, old.Name()); err != nil {
		t.Fatal(err)
	}
	if !hasChains(t, cur.Name()) {
		t.Fatalf("releasing the first %s took the second one's rules", old.Name())
	}
	// Its own namespace may release it.
	if err := n.ReleaseIn(second, cur.Name()); err != nil {
		t.Fatal(err)
	}
	if hasChains(t, cur.Name()) {
		t.Fatalf("ReleaseIn from its own namespace left %s's rules", cur.Name())
	}
}

func hasChains(t *testing.T, ifname string) bool {
	t.Helper()
	return slices.Contains(sandboxnettest.Chained(t), ifname)
}
