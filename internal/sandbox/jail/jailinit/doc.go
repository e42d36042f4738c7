// Package jailinit is the jail's setup stage: the code that runs inside a
// sandbox's fresh namespaces, before the agent. It receives its configs and
// mount trees from the driver over a socket, builds the sandbox's root
// (mounts, /proc masks, pivot_root, a read-only /), brings lo up, drops
// every capability, sets no_new_privs, installs the seccomp filter and
// execs the agent. The driver side (package jail) starts it; proto.go is
// the protocol between the two.
//
// It is cut by process, like runsc's boot package: cmd/ignis-jail-init is
// this package and nothing else, so that a stage starts as a small static
// binary (a Go runtime and no package initialisation to speak of) and
// leaves little memory for the kernel to tear down when it execs the
// agent. It therefore imports only the standard library's basics and
// golang.org/x/sys/unix (deps_test.go keeps it so): no cgroups library, no
// logging, nothing of the worker.
package jailinit
