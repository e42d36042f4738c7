// Package cli is the command line of the `ignis` binary: one file per
// subcommand, each a small struct with its flags and a Run method, wired
// into a spf13/cobra tree by Main. No business logic lives here; commands
// parse flags into a Config and hand it to internal/server.
package cli
