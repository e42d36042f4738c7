package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionCommand is `ignis version`.
type versionCommand struct{ e *env }

func newVersionCommand(e *env) *cobra.Command {
	c := &versionCommand{e: e}
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of Ignis",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
}

// Run prints the module version and VCS revision from the build info.
func (c *versionCommand) Run(_ context.Context, _ []string) error {
	version, revision, modified := "(devel)", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			}
		}
	}
	fmt.Fprintf(c.e.stdout, "ignis %s %s%s %s %s/%s\n", version, revision, modified, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
