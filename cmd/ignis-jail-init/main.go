// Command ignis-jail-init is the jail sandbox driver's setup stage: the
// driver starts it in each sandbox's fresh namespaces, where it builds the
// sandbox's root, drops privileges and execs the agent (package jailinit).
// It is not meant to be run by hand. Build it with CGO_ENABLED=0.
package main

import "github.com/ignis-run/ignis/internal/sandbox/jail/jailinit"

func main() { jailinit.Main() }
