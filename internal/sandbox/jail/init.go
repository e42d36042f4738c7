package jail

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/ignis-run/ignis/internal/sandbox/jail/jailinit"
)

// MaybeRunInit runs the jail's setup stage when the process was started as
// one, and never returns then; otherwise it returns at once. It serves the
// fallback where no ignis-jail-init binary is at hand (Config.InitBinary
// unset: the driver re-executes its own binary through /proc/self/exe), so
// every binary that uses the jail driver (cmd/ignis, and test binaries via
// TestMain) must call it first thing in main, before any other work.
func MaybeRunInit() {
	if len(os.Args) == 0 || os.Args[0] != jailinit.Arg0 {
		return
	}
	jailinit.Main()
}

// openInitBinary opens the setup stage's binary p, which stages execute as
// /proc/self/fd/<jailinit.FDExe>. The execve happens after the stage has
// become root of its user namespace, which is the unprivileged host uid
// (uid, gid): by descriptor, no directory on the way to p needs to be
// searchable by it (a binary under /root, or a test's temp dir, is not),
// but p itself must be executable by it, which this checks so that a bad
// mode fails New rather than every stage.
func openInitBinary(p string, uid, gid uint32) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening setup stage binary: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening setup stage binary: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("setup stage binary %s is not a regular file", p)
	}
	// The permission class the kernel checks for the stage's credentials
	// (host root's capabilities do not reach into the stage).
	var need fs.FileMode = 0o001
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		switch {
		case st.Uid == uid:
			need = 0o100
		case st.Gid == gid:
			need = 0o010
		}
	}
	if fi.Mode().Perm()&need == 0 {
		f.Close()
		return nil, fmt.Errorf("setup stage binary %s (mode %04o) is not executable by the sandboxes' host uid %d: make it 0755", p, fi.Mode().Perm(), uid)
	}
	return f, nil
}
