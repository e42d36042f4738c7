// Package gvisor is the sandbox.Driver that runs each sandbox in gVisor
// (runsc, the Debian package), with an OCI bundle it generates per sandbox.
//
// Host layout, all under Config.StateDir:
//
//	<StateDir>/runsc/                  runsc --root: runsc's own container state
//	<StateDir>/bundles/<id>/config.json the generated OCI spec
//	<StateDir>/bundles/<id>/rootfs/     the read-only root: empty mount points,
//	                                    symlinks copied from the host (/bin → usr/bin),
//	                                    and a generated minimal /etc
//	<StateDir>/bundles/<id>/runsc.log   runsc's own log (warnings, errors)
//	cgroup  /ignis-gvisor-<id>          created by us before runsc starts
//
// Why the cgroup is ours: runsc leaves a pre-existing cgroup alone (it joins
// the sandbox and gofer to it but neither configures nor deletes it). Owning
// it lets Stats survive the sandbox's death.
//
// Limits: the host cgroup holds the Sentry and gofer as well as the
// function, and this runsc enforces no memory limit inside, so the host
// cgroup's is the hard one (memwatch.go): a safety limit while the Sentry
// boots, then, from the agent's first message, Spec.MemoryMB plus the
// sandbox's own footprint measured at that moment. Hitting it kills the
// whole sandbox, reported as ErrOutOfMemory and in Stats.OOMKills, as
// Lambda replaces an environment that ran out of memory. /tmp is a tmpfs
// inside the Sentry, so its contents count toward MemoryMB here.
// PidsLimit is RLIMIT_NPROC, which the Sentry enforces on fork and clone;
// the host cgroup gets a safety pids limit (4×PidsLimit + 256).
//
// Process model: each sandbox is one foreground `runsc run` (or `runsc
// restore`) child of the worker. Its stdin and stdout are the agent's control
// channel (pipes) and its stderr is Spec.Stderr. runsc starts the Sentry
// "attached" (parent-death signal), so killing the runsc process kills the
// sandbox; the container's exit status becomes runsc's exit status.
//
// Mount points are only ever created inside the bundle: runsc's gofer would
// otherwise create a missing mount point on the host, inside a directory we
// promised to mount read-only. That is why /var/runtime is a bundle directory
// with each entry of Spec.RuntimeDir bind-mounted separately next to the agent
// binary, rather than RuntimeDir itself with the agent mounted on top.
//
// Checkpoint/restore: `runsc checkpoint` saves the whole sandbox (memory,
// netstack, in-Sentry files such as /tmp) into one image file and stops it;
// `runsc restore` starts a new sandbox from it with the restoring process's
// stdio donated as the application's host file descriptors 0, 1 and 2. The
// agent therefore keeps reading and writing its fds 0/1 as if nothing had
// happened and a restored sandbox's Control talks to the same agent state on
// new pipes. Frames in flight across a checkpoint are lost, so the worker
// checkpoints only while the agent is idle (after InitDone, before Invoke).
//
// Whether this host's runsc can checkpoint and restore at all is probed,
// not assumed: Probe checkpoints a small sandbox (a shell echoing its
// stdin), restores it and checks that it still echoes; Capabilities
// reports Checkpoint true only after that worked. A failure there is
// logged, not returned: gVisor still runs functions.
package gvisor
