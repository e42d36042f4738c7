package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ignis-run/ignis/internal/server"
)

// credentialsCommand is `ignis credentials`: print the generated key pair.
type credentialsCommand struct {
	e       *env
	dataDir string
}

func newCredentialsCommand(e *env) *cobra.Command {
	c := &credentialsCommand{e: e, dataDir: server.DefaultConfig().DataDir}
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Print the export lines of the key pair generated under the data directory",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args) },
	}
	cmd.Flags().StringVar(&c.dataDir, "data", c.dataDir, "data directory of the server")
	return cmd
}

// Run prints the export lines.
func (c *credentialsCommand) Run(_ context.Context, _ []string) error {
	creds, err := server.LoadCredentials(c.dataDir)
	if err != nil {
		return fmt.Errorf("%w (start `ignis server --data %s` once without explicit credentials to generate them)", err, c.dataDir)
	}
	fmt.Fprint(c.e.stdout, creds.ExportLines())
	return nil
}
