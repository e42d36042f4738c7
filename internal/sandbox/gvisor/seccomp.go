package gvisor

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// deniedSyscalls are refused with EPERM inside the Sentry (runsc
// --oci-seccomp applies the OCI profile to the function's syscalls, in the
// Sentry's own kernel). The Sentry implements many of them itself (a user
// namespace, keyrings), where the function would gain privileges over the
// sandbox's own kernel, or answers with errnos (ENOTSUP, ENODEV, EACCES)
// that differ from the jail's. The list is the jail's (jailinit/seccomp.go);
// the conformance suite's privileged_syscalls case holds both to it. Names
// this runsc's syscall table lacks are left out: it refuses a profile that
// names one.
var deniedSyscalls = []string{
	"mount", "umount2", "pivot_root", "chroot",
	"ptrace", "process_vm_readv", "process_vm_writev",
	"kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "fanotify_init",
	"swapon", "swapoff", "reboot",
	"setns", "open_by_handle_at", "name_to_handle_at",
	"keyctl", "add_key", "request_key",
	"userfaultfd", "acct", "quotactl", "lookup_dcookie",
	"iopl", "ioperm", "settimeofday", "clock_settime",
	"clock_adjtime", "syslog", "vhangup", "uselib",
	"sethostname", "setdomainname",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
}

// nsFlags are the namespace-creating flags refused in clone and unshare.
var nsFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP,
}

// seccompProfile is the OCI profile of every sandbox: everything allowed
// but deniedSyscalls and namespace creation, refused with EPERM.
func seccompProfile() *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: deniedSyscalls, Action: specs.ActErrno, ErrnoRet: &eperm},
		},
	}
	// One rule per flag: the conditions of one rule must all hold.
	for _, f := range nsFlags {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: []string{"unshare", "clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}},
		})
	}
	return p
}
