package gvisor

import (
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox"
	"github.com/ignis-run/ignis/internal/sandbox/sandboxtest"
)

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Driver { return newTestDriver(t) })
}
