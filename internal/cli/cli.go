package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// env is the process environment as the commands see it (injectable for
// tests).
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// Main runs the ignis command line with args (without the program name)
// and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := &cobra.Command{
		Use:           "ignis",
		Short:         "Ignis: a self-hosted, AWS Lambda compatible serverless platform",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newServerCommand(e),
		newCredentialsCommand(e),
		newInvokeCommand(e),
		newLogsCommand(e),
		newQueueCommand(e),
		newFleetCommand(e),
		newVersionCommand(e),
		newBenchCommand(e),
	)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "ignis: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks errors caused by bad flags or arguments.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// newLogger builds the process logger.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, &usageError{fmt.Errorf("log level %q: %w", level, err)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
