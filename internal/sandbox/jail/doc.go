// Package jail is the sandbox.Driver built from Linux primitives alone:
// namespaces, cgroups, seccomp and a pivot_root into a read-only root. It is
// the default where gVisor is absent.
//
// # How a sandbox starts
//
//	worker (Create)                          setup stage (this binary again)          agent
//	───────────────                          ───────────────────────────────          ─────
//	validate Spec
//	cgroup <parent>/<id>: memory (no swap),
//	  pids; CPU left open for now
//	open_tree(CLONE) every mount source
//	  → detached, read-only trees (fds)
//	clone(NEWUSER|NEWPID|NEWNS|NEWNET|
//	  NEWIPC|NEWUTS), root ↦ HostUID ────►  (blocks reading its config)
//	add pid to the cgroup
//	send config (fd 3) ─────────────────►  unshare(NEWCGROUP)
//	                                        tmpfs root; move_mount each tree:
//	                                          /usr /etc /var/task /var/runtime/*
//	                                          /var/runtime/ignis-agent /opt /dev/*
//	                                        /proc, /dev, /tmp (TmpMB) mounts
//	                                        hostname, lo up
//	                                        pivot_root, detach the old root
//	                                        / and /dev read-only
//	                                        rlimits, fds close-on-exec
//	                                        caps dropped (bounding, ambient,
//	                                          securebits), no_new_privs, seccomp
//	wait for EOF on the error pipe ◄──────  execve(/var/runtime/ignis-agent) ────►  PID 1, Hello on stdout
//	apply the CPU quota
//	return Sandbox{Control: stdio pipes}
//
// The setup stage is the worker's own binary re-executed through
// /proc/self/exe with argv[0] "ignis-jail-init". Every binary that creates
// jail sandboxes must therefore call MaybeRunInit first thing in main (test
// binaries: in TestMain).
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
// The seccomp filter (seccomp.go) is a hand-assembled classic BPF program:
// x86_64 only, a denylist answered with EPERM (mount family, ptrace, kexec,
// modules, bpf, perf, keyrings, userfaultfd, io_uring, …), clone and unshare
// refused when asked for a namespace, clone3 answered ENOSYS so runtimes fall
// back to clone.
package jail
