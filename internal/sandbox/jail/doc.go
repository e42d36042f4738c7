// Package jail is the sandbox.Driver built from Linux primitives alone:
// namespaces, cgroups, seccomp and a pivot_root into a read-only root. It is
// the default where gVisor is absent.
//
// # How a sandbox starts
//
//	worker                                   setup stage (ignis-jail-init)            agent
//	──────                                   ─────────────────────────────            ─────
//	ahead of time (Config.Prestart):
//	clone(NEWUSER|NEWPID|NEWNS|NEWNET|
//	  NEWIPC|NEWUTS), root ↦ HostUID,
//	  execve /proc/self/fd/5 (InitBinary,
//	  opened by New) ─────────────────────►  small static Go binary starts;
//	v1: move it into cgroup                    blocks on its config socket (fd 3)
//	  <parent>/stage-…
//	open_tree(CLONE) /usr, the minimal
//	  /etc, /dev/{null,zero,…} → fds
//	send root config + fds (SCM_RIGHTS) ───►  tmpfs root; move_mount /usr /etc /dev/*
//	                                          /proc (host-wide files masked), /dev
//	                                          pivot_root, detach the old root
//	                                          /dev read-only, hostname, lo up, rlimits
//	stage ready: into the pool ◄──────────  "ready" on the socket; blocks again
//
//	Create:
//	validate Spec
//	open_tree(CLONE) the Spec's mount
//	  sources → detached, read-only trees
//	take a ready stage (pool empty: start
//	  the pending refill now and wait for it;
//	  no pool: prepare one)
//	send sandbox config + fds ────────────►  stdio ← control pipes, stderr
//	meanwhile:                              move_mount /var/task /var/runtime/*
//	v1: rename its cgroup to <parent>/<id>,   /var/runtime/ignis-agent /opt, extras
//	  set memory (no swap) and pids limits  /tmp (TmpMB), / read-only
//	v2: new cgroup <parent>/<id>, move in   fds close-on-exec
//	                                        bounding, ambient caps dropped,
//	                                          securebits locked
//	send start ───────────────────────────►  unshare(NEWCGROUP)
//	                                        caps dropped, no_new_privs, seccomp
//	wait for EOF on the error pipe ◄──────  execve(/var/runtime/ignis-agent) ────►  PID 1, Hello on stdout
//	apply the CPU quota (unless
//	  Spec.DeferCPU: then LimitCPU does)
//	return Sandbox{Control: stdio pipes}
//	refill the pool, Config.RefillDelay
//	  later, in the background
//
// The setup stage is package jailinit, built as its own small static
// binary, cmd/ignis-jail-init (Config.InitBinary; the server finds it
// beside the ignis binary, see worker.LocateJailInit). It links nothing but
// the standard library's basics and golang.org/x/sys/unix, so that little
// runs before a stage is ready and little memory is left for the kernel to
// tear down when it execs the agent (page tables are expensive to write
// under a hypervisor). With the worker's own binary as the stage, every
// package initialisation of the worker (AWS SDK, NATS server, …) ran in
// each stage: here a prepared stage of ignis held ~24 MB resident and had
// used ~60 ms of CPU, one of ignis-jail-init ~3 MB and ~14 ms.
//
// New opens the binary, and stages execute it by descriptor
// (/proc/self/fd/5): the execve happens once the child is root of its user
// namespace, i.e. HostUID, which could not resolve a path under /root or a
// temp dir; the file itself must be executable by HostUID, which New
// checks. Without InitBinary the driver falls back to its own binary,
// /proc/self/exe, run with argv[0] "ignis-jail-init": every binary that
// creates jail sandboxes must therefore call MaybeRunInit first thing in
// main (test binaries: in TestMain). The stage refuses a config of another
// protocol version, so a stale ignis-jail-init beside a newer worker fails
// its first stage plainly.
//
// Starting a stage (clone with new namespaces, id maps, execve, Go runtime
// start), building the part of its root every sandbox shares, and, on
// cgroup v1, moving a process into a cgroup (an RCU grace period per
// hierarchy) are the slow parts of a start, tens of ms on a busy host; the
// driver does them ahead of Create for Config.Prestart stages, so that a
// Create only adds what depends on its Spec. A v1 stage's cgroup becomes
// the sandbox's by rename. The pool is refilled Config.RefillDelay after a
// Create returns, so that the refill (whose fork, namespaces and execve
// slow any process starting at the same time, whatever its CPU priority)
// does not overlap the agent's own start; a Create that finds the pool
// empty starts the pending refill at once and waits for it.
// Close stops the prestarted stages; a worker that dies without Close
// leaves empty stage cgroups (<parent>/stage-<pid>-…), which the next New on
// the host removes, and the next New with its parent also removes the empty
// cgroups of sandboxes it had not recorded yet. A waiting stage has already pivoted into its new root:
// it sees nothing of the host's file system, and its mounts die with it.
//
// # Why it is built this way
//
// Mount sources are cloned by the worker with open_tree into detached mount
// trees and handed over as file descriptors. The sandbox's root user is an
// unprivileged host uid, which could not even reach a code directory under
// /root or t.TempDir(); a detached tree needs no path lookup inside the
// sandbox, nothing is ever mounted in the host's namespace (so a crashed
// worker leaves no mount behind), and nothing is copied per sandbox. The only
// per-driver preparation is a minimal /etc (passwd, group, hosts, the
// dynamic linker cache, CA certificates, alternatives) in Config.StateDir:
// the host's /etc stays out of reach.
//
// The sandbox's resources are its cgroup and its processes; mounts live only
// in its mount namespace. PID 1 dying (Destroy kills it, and Pdeathsig does
// when the worker dies) takes down the pid namespace and with it every
// process and mount; removing the cgroup finishes the job. So Handle.Data
// (cgroup path, PID and its start time) is all Recover needs. The control
// channel is a pair of pipes owned by the worker process and cannot be
// reattached: Recover removes what is left and returns sandbox.ErrGone.
//
// Cgroups go through github.com/containerd/cgroups/v3: cgroup v2 on unified
// hosts, v1 on legacy and hybrid ones (hybrid hosts keep their controllers
// in v1). The CPU quota is applied only once the agent runs, so the jail's
// own setup is not throttled by a small function's share of a CPU.
//
// /tmp is a tmpfs: its pages count against the sandbox's memory limit.
//
// The seccomp filter (jailinit/seccomp.go) is a hand-assembled classic BPF
// program: x86_64 only, a denylist answered with EPERM (mount family,
// ptrace, kexec, modules, bpf, perf, keyrings, userfaultfd, io_uring, …),
// clone and unshare refused when asked for a namespace, clone3 answered
// ENOSYS so runtimes fall back to clone.
package jail
