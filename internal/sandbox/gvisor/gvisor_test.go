package gvisor

import (
	"context"
	"os"
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/sandboxtest"
	"github.com/ignis-run/ignis/internal/sandboxnet"
)

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T, n *sandboxnet.Network) sandbox.Driver {
		d := newTestDriverWith(t, Config{Network: n})
		// A runsc that cannot (Debian's 2022 build on this kernel) leaves
		// Capabilities().Network false: the suite then checks only that
		// sandboxes have no network at all.
		if err := d.ProbeNetwork(context.Background()); err != nil {
			t.Logf("no sandbox networking with this runsc: %v", err)
		}
		return d
	})
}

// TestConformance_DebianRunsc runs the suite with Debian's runsc
// (/usr/bin/runsc, 2022), the fallback where the pinned build is absent,
// when the tests otherwise run another one.
func TestConformance_DebianRunsc(t *testing.T) {
	const debian = "/usr/bin/runsc"
	if _, err := os.Stat(debian); err != nil {
		t.Skip("no Debian runsc")
	}
	if testRunsc(t) == debian {
		t.Skip("TestConformance runs Debian's runsc")
	}
	sandboxtest.Run(t, func(t *testing.T, n *sandboxnet.Network) sandbox.Driver {
		d := newTestDriverWith(t, Config{Runsc: debian, Network: n})
		if err := d.ProbeNetwork(context.Background()); err != nil {
			t.Logf("no sandbox networking with this runsc: %v", err)
		}
		return d
	})
}
