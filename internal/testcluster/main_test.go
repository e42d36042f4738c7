package testcluster_test

import (
	"os"
	"testing"

	"github.com/ignis-run/ignis/internal/sandbox/jail"
)

func TestMain(m *testing.M) {
	jail.MaybeRunInit() // in-process hosts: the jail re-executes this binary as its setup stage
	os.Exit(m.Run())
}
