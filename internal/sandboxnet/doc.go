// Package sandboxnet gives sandboxes Lambda's network: egress to the world
// through NAT, like a function outside a VPC, and nothing else. A sandbox
// never reaches the host (so neither the Ignis API nor NATS), link-local
// metadata (169.254.0.0/16), another sandbox, or any prefix the worker is
// told to keep out of reach (the cluster's nodes). Both drivers use it: the
// jail's sandboxes live in the network namespace their setup stage was
// cloned into, gVisor's in one this package creates (NewNamespace).
//
// # Shape
//
//	sandbox netns                   host netns                         world
//	─────────────                   ──────────                         ─────
//	eth0 10.203.0.3/31 ◄── veth ──► igs1 10.203.0.2/31   ── NAT (masquerade) ──► eth0
//	default via 10.203.0.2
//
// Each sandbox gets a veth pair: "eth0" in its namespace, igs<index> in the
// host's, a /31 of the pool (Config.CIDR) between them, and no bridge, so
// that sandboxes share no link: everything between two of them is routed
// through the host, where the rules see it. The index is allocated by the
// kernel: creating igs<index> fails with EEXIST when another sandbox, of
// this worker or of another on the host, holds it, so workers sharing a
// host and a pool need no shared allocator.
//
// # Rules
//
// One nftables table, "inet ignis", is shared by every worker on the host.
// Its base chains match sandbox interfaces by the igs prefix, so the
// default-deny policy does not depend on any one sandbox's rules being in
// place, nor on a worker being alive:
//
//	forward, from a sandbox:  IPv6 → drop
//	                          spoofed source (fib saddr . iif) → drop
//	                          interface without rules (not in @sb_out) → drop
//	                          a new connection: conntrack mark bit for NAT
//	                          jump to the sandbox's own chain (vmap @sb_out):
//	                            new connections over Config.MaxConns → drop
//	                            bytes over Config.RateBytes/s → drop
//	                            its allow-list → accept
//	                            Config.Deny prefixes → drop
//	                          0/8, 127/8, 169.254/16, 224/3 → drop
//	                          out of another sandbox's interface → drop
//	forward, to a sandbox:    rate limit (vmap @sb_in); replies only, else drop
//	input, from a sandbox:    IPv6, or an interface without rules → drop;
//	                          its allow-list (vmap @sb_out) → accept; else drop
//	postrouting (nat):        marked, out of a non-sandbox interface → masquerade
//
// Packets a sandbox sends to any address of the host itself arrive on the
// input hook, whichever interface owns the address; that is what keeps the
// API and NATS listeners out of reach, wherever they listen.
//
// # Cleanup by construction
//
// The veth pair lives as long as the sandbox's namespace: a jail's dies
// with its PID 1, a gVisor namespace when its mount is removed and runsc's
// processes exit. A sandbox's chains are removed by Link.Close, and Sweep
// (New calls it) removes the chains of any interface that no longer exists,
// so a worker killed with SIGKILL leaves nothing that the next start on the
// host does not remove. The base table stays: it is the host's policy,
// identical for every worker, and holds nothing of a sandbox.
//
// DNS: sandboxes get the host's nameservers (those neither loopback nor an
// address of the host itself, which no sandbox reaches), or
// Config.Nameservers; where the host has no other, a forwarder of the
// worker's (dnsfwd.go) serves them the host's resolvers.
package sandboxnet
