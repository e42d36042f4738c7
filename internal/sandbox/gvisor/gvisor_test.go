package gvisor

import (
	"context"
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
