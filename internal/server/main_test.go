package server_test

import (
	"os"
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox/jail"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // the jail driver re-executes this binary as its setup stage
	os.Exit(m.Run())
}
