package jailinit

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestSeccompProgram_WellFormed checks what the kernel would only report
// at sandbox start: jumps stay inside the program, it ends in a return and
// fits the kernel's limit.
func TestSeccompProgram_WellFormed(t *testing.T) {
	p := seccompProgram()
	if len(p) > 4096 {
		t.Fatalf("%d instructions, above BPF_MAXINSNS", len(p))
	}
	for i, ins := range p {
		if ins.Code&0x07 == unix.BPF_JMP && i+1+int(max(ins.Jt, ins.Jf)) >= len(p) {
			t.Errorf("instruction %d jumps past the end", i)
		}
	}
	if last := p[len(p)-1]; last.Code != unix.BPF_RET|unix.BPF_K || last.K != retAllow {
		t.Errorf("last instruction %+v, want ret ALLOW", last)
	}
}

// seccompData is struct seccomp_data as the filter sees it.
type seccompData struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

// packet lays d out for x/net/bpf's VM. The kernel's filter reads
// seccomp_data with native (little-endian) 32-bit loads; the VM reads its
// packet big-endian. Each 32-bit word is therefore stored big-endian at the
// offset where the kernel would find it natively: nr at 0, arch at 4, the
// instruction pointer at 8, and each 64-bit argument as its low word at
// 16+8i and its high word at 20+8i (little-endian order of the halves).
// Loads of the same offset then yield the same values in both.
func (d seccompData) packet() []byte {
	b := make([]byte, 64) // sizeof(struct seccomp_data)
	be := binary.BigEndian
	be.PutUint32(b[0:], d.nr)
	be.PutUint32(b[4:], d.arch)
	for i, a := range d.args {
		be.PutUint32(b[16+8*i:], uint32(a))
		be.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

// TestSeccompProgram_Verdicts runs the filter itself, in a BPF virtual
// machine, over a table of syscalls and checks the verdict the kernel would
// act on. The denied list is written out here, not taken from
// deniedSyscalls, so that dropping a syscall from the filter fails it.
func TestSeccompProgram_Verdicts(t *testing.T) {
	raw := seccompProgram()
	insns := make([]bpf.RawInstruction, len(raw))
	for i, ins := range raw {
		insns[i] = bpf.RawInstruction{Op: ins.Code, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	prog, decoded := bpf.Disassemble(insns)
	if !decoded {
		t.Fatalf("the filter holds instructions x/net/bpf cannot decode: %v", prog)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("loading the filter into the BPF VM: %v", err)
	}
	const (
		x86_64 = unix.AUDIT_ARCH_X86_64
		i386   = unix.AUDIT_ARCH_I386
		x32Bit = 0x40000000 // __X32_SYSCALL_BIT
		// What Go's runtime and glibc pass to clone for a thread.
		threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
			unix.CLONE_SYSVSEM | unix.CLONE_THREAD | unix.CLONE_SETTLS |
			unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
		forkFlags = unix.CLONE_CHILD_SETTID | unix.CLONE_CHILD_CLEARTID | uint64(unix.SIGCHLD)
	)
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	enosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)

	type tc struct {
		name string
		data seccompData
		want uint32
	}
	var cases []tc
	sys := func(name string, nr uintptr, want uint32, args ...uint64) {
		d := seccompData{nr: uint32(nr), arch: x86_64}
		copy(d.args[:], args)
		cases = append(cases, tc{name, d, want})
	}
	// Issue 11's list, and the rest of the privileged surface.
	for _, s := range []struct {
		name string
		nr   uintptr
	}{
		{"mount", unix.SYS_MOUNT}, {"umount2", unix.SYS_UMOUNT2},
		{"setns", unix.SYS_SETNS}, {"ptrace", unix.SYS_PTRACE},
		{"kexec_load", unix.SYS_KEXEC_LOAD}, {"kexec_file_load", unix.SYS_KEXEC_FILE_LOAD},
		{"init_module", unix.SYS_INIT_MODULE}, {"finit_module", unix.SYS_FINIT_MODULE},
		{"delete_module", unix.SYS_DELETE_MODULE},
		{"bpf", unix.SYS_BPF}, {"keyctl", unix.SYS_KEYCTL}, {"add_key", unix.SYS_ADD_KEY},
		{"request_key", unix.SYS_REQUEST_KEY}, {"perf_event_open", unix.SYS_PERF_EVENT_OPEN},
		{"open_by_handle_at", unix.SYS_OPEN_BY_HANDLE_AT}, {"name_to_handle_at", unix.SYS_NAME_TO_HANDLE_AT},
		{"reboot", unix.SYS_REBOOT}, {"swapon", unix.SYS_SWAPON}, {"swapoff", unix.SYS_SWAPOFF},
		{"pivot_root", unix.SYS_PIVOT_ROOT}, {"chroot", unix.SYS_CHROOT},
		{"clock_settime", unix.SYS_CLOCK_SETTIME}, {"settimeofday", unix.SYS_SETTIMEOFDAY},
		{"clock_adjtime", unix.SYS_CLOCK_ADJTIME},
		{"open_tree", unix.SYS_OPEN_TREE}, {"move_mount", unix.SYS_MOVE_MOUNT},
		{"fsopen", unix.SYS_FSOPEN}, {"fsmount", unix.SYS_FSMOUNT},
		{"process_vm_readv", unix.SYS_PROCESS_VM_READV}, {"process_vm_writev", unix.SYS_PROCESS_VM_WRITEV},
		{"userfaultfd", unix.SYS_USERFAULTFD}, {"io_uring_setup", unix.SYS_IO_URING_SETUP},
		{"iopl", unix.SYS_IOPL}, {"ioperm", unix.SYS_IOPERM}, {"syslog", unix.SYS_SYSLOG},
		{"sethostname", unix.SYS_SETHOSTNAME}, {"acct", unix.SYS_ACCT},
	} {
		sys(s.name, s.nr, eperm)
	}
	// Namespaces: refused in unshare and clone, whatever else is set.
	sys("unshare_newuser", unix.SYS_UNSHARE, eperm, unix.CLONE_NEWUSER)
	sys("unshare_newns", unix.SYS_UNSHARE, eperm, unix.CLONE_NEWNS)
	sys("unshare_newnet_files", unix.SYS_UNSHARE, eperm, unix.CLONE_NEWNET|unix.CLONE_FILES)
	sys("unshare_newtime", unix.SYS_UNSHARE, eperm, unix.CLONE_NEWTIME)
	sys("clone_newuser", unix.SYS_CLONE, eperm, forkFlags|unix.CLONE_NEWUSER)
	sys("clone_newpid", unix.SYS_CLONE, eperm, forkFlags|unix.CLONE_NEWPID)
	sys("clone_newcgroup", unix.SYS_CLONE, eperm, forkFlags|unix.CLONE_NEWCGROUP)
	// clone3's flags are out of the filter's reach: ENOSYS sends callers
	// back to clone.
	sys("clone3", unix.SYS_CLONE3, enosys)
	// What functions do all day.
	for _, s := range []struct {
		name string
		nr   uintptr
	}{
		{"read", unix.SYS_READ}, {"write", unix.SYS_WRITE}, {"openat", unix.SYS_OPENAT},
		{"close", unix.SYS_CLOSE}, {"mmap", unix.SYS_MMAP}, {"munmap", unix.SYS_MUNMAP},
		{"mprotect", unix.SYS_MPROTECT}, {"brk", unix.SYS_BRK}, {"futex", unix.SYS_FUTEX},
		{"epoll_pwait", unix.SYS_EPOLL_PWAIT}, {"rt_sigaction", unix.SYS_RT_SIGACTION},
		{"rt_sigreturn", unix.SYS_RT_SIGRETURN}, {"execve", unix.SYS_EXECVE},
		{"wait4", unix.SYS_WAIT4}, {"kill", unix.SYS_KILL}, {"exit_group", unix.SYS_EXIT_GROUP},
		{"socket", unix.SYS_SOCKET}, {"connect", unix.SYS_CONNECT}, {"getrandom", unix.SYS_GETRANDOM},
		{"clock_gettime", unix.SYS_CLOCK_GETTIME}, {"nanosleep", unix.SYS_NANOSLEEP},
		{"sched_yield", unix.SYS_SCHED_YIELD}, {"prctl", unix.SYS_PRCTL},
	} {
		sys(s.name, s.nr, allow)
	}
	sys("clone_thread", unix.SYS_CLONE, allow, threadFlags)
	sys("clone_fork", unix.SYS_CLONE, allow, forkFlags)
	sys("clone_vfork", unix.SYS_CLONE, allow, unix.CLONE_VM|unix.CLONE_VFORK|uint64(unix.SIGCHLD))
	sys("unshare_files", unix.SYS_UNSHARE, allow, unix.CLONE_FILES)
	// A namespace bit in the high half of the 64-bit argument is no flag
	// the kernel knows (they all fit in 32 bits): the filter looks at the
	// low word only, and the kernel rejects unknown bits itself.
	sys("unshare_high_word", unix.SYS_UNSHARE, allow, uint64(unix.CLONE_NEWUSER)<<32)
	// Another ABI: the syscall numbers mean other things there.
	cases = append(cases,
		tc{"i386_arch", seccompData{nr: 1, arch: i386}, kill},
		tc{"i386_read", seccompData{nr: 3, arch: i386}, kill},
		tc{"unknown_arch", seccompData{nr: unix.SYS_READ, arch: 0}, kill},
		tc{"x32_read", seccompData{nr: x32Bit | unix.SYS_READ, arch: x86_64}, eperm},
		tc{"x32_mount", seccompData{nr: x32Bit | unix.SYS_MOUNT, arch: x86_64}, eperm},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := vm.Run(c.data.packet())
			if err != nil {
				t.Fatalf("running the filter: %v", err)
			}
			if uint32(got) != c.want {
				t.Errorf("verdict %s, want %s", verdict(uint32(got)), verdict(c.want))
			}
		})
	}
}

func verdict(v uint32) string {
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%s)", unix.ErrnoName(unix.Errno(v&unix.SECCOMP_RET_DATA)))
	}
	return fmt.Sprintf("%#x", v)
}
