// Package testcluster runs N Ignis hosts for one test and breaks them the
// ways a fleet breaks: kill, stop, restart, partition, heal.
//
// New(t, n, opts) builds the cluster; each Host runs `ignis server` (built
// from this checkout by servertest.Build) once the test calls Start. In
// the default mode, Namespaces, every host is a separate process in a
// network namespace and a cgroup of its own:
//
//	test process (root netns: no address, no route, no device added)
//	  │ Cluster.HTTPClient / Host.Lambda dial from the switch namespace
//	  ▼
//	netns <id>-sw ── bridge br0 10.213.0.254/24
//	  ├─ port h1 ══ veth ══ eth0 10.213.0.1/24 in netns <id>-h1: ignis server --listen 10.213.0.1:9000
//	  ├─ port h2 ══ veth ══ eth0 10.213.0.2/24 in netns <id>-h2
//	  └─ …
//
// <id> is ignis-tc-<pid of the test process>-<random>. Every address lives
// inside namespaces the cluster made, and nothing connects them to the
// host's network or to another cluster's, so all clusters use the same
// 10.213.0.0/24 without clashing, whatever runs in parallel. The test
// reaches the hosts through sockets it opens inside the switch namespace
// (a locked OS thread joins it for the socket(2) call), not through an
// address or a route in the root namespace: nothing of a cluster is
// visible to the rest of the machine but the namespace and cgroup names.
//
// Cgroups: each host has <id>/hN in each v1 hierarchy the jail uses (cpu,
// cpuacct, memory, pids; on a cgroup v2 host, /sys/fs/cgroup/<id>/hN):
//
//	<id>/hN             the host's CPU quota (Options.CPUMillis, 0.5 CPU by default)
//	<id>/hN/server      the ignis server process
//	<id>/hN/sandboxes   its sandboxes (ignis server --cgroup-parent)
//
// so the quota bounds the functions' CPU as well as the server's (adding a
// host adds capacity, even on a 2-core machine) and hN holds every process
// of the host: Kill sends SIGKILL to each process in it until it is empty.
// The server is forked from a locked OS thread that has joined the host's
// network namespace and cgroup (v1) or with CLONE_INTO_CGROUP (v2), so it
// and all its children are inside from their first instruction; that
// thread waits for the server for its whole life, which makes Pdeathsig
// kill the server should the test binary die.
//
// On cgroup v1 the kernel refuses a child cgroup a larger CPU quota than
// its parent's: a sandbox whose function is entitled to more CPU than the
// host's quota (a memory size above about 880 MB at 0.5 CPU) cannot start.
// The host offers placement the quota as its capacity (--worker-cpu).
//
// Partition drops every packet the host sends or is sent, silently, with
// a zero-length pfifo queue on both ends of its veth (its eth0 and its
// bridge port); Heal removes them. The host keeps running and can still
// reach itself.
//
// Modes: where network namespaces cannot be made (no `ip`, or `ip netns
// add` fails), New falls back to Loopback: the same processes and cgroups,
// each host on 127.0.N.1 and a free port; Partition is then unavailable
// (Capabilities says so; tests skip). InProcess runs the hosts as servers
// inside the test process, for the test bodies that make sense there
// (start, stop, restart); its test binary must call jail.MaybeRunInit in
// TestMain. Process modes need root (cgroups, and the jail driver).
//
// Cleanup (t.Cleanup, also after a failure midway): stop each host
// (SIGTERM, then SIGKILL of its cgroup), remove the cgroups, delete the
// namespaces, which takes the veths and the bridge with them. New first
// sweeps the leftovers of earlier test processes that died before their
// cleanup ran: namespaces and cgroups named ignis-tc-<pid>-… whose pid is
// no longer running.
package testcluster
