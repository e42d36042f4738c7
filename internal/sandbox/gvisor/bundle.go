package gvisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ignis-run/ignis/internal/sandbox"
)

// hostBase is the host runtime base every sandbox sees read-only. A host
// symlink (merged /usr: /bin → usr/bin) is copied as a symlink.
var hostBase = [...]string{"/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"}

// hostEtc are the host /etc entries runtimes need (dynamic linker cache, CA
// certificates, time zone, Debian alternatives), mounted read-only when they
// exist. The rest of /etc is generated: the host's is none of the
// function's business.
var hostEtc = [...]string{
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl", "ca-certificates",
	"ca-certificates.conf", "pki", "localtime", "alternatives", "mime.types",
	"protocols", "services",
}

// generatedEtc are files written into the bundle's /etc.
var generatedEtc = map[string]string{
	"passwd":        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
	"group":         "root:x:0:\nnogroup:x:65534:\n",
	"hosts":         "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
	"hostname":      "localhost\n",
	"resolv.conf":   "",
	"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}

// writeBundle creates dir with rootfs/ and config.json for spec, placing
// the sandbox in cgroup cg and, when netns is set, in the network
// namespace mounted there (its /etc/resolv.conf is then resolvConf), and
// returns the OCI spec it wrote.
func writeBundle(dir string, s sandbox.Spec, cg, netns string, resolvConf []byte) (*specs.Spec, error) {
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, err
	}
	// The bundle directory (and its parents) must be traversable by the
	// gofer; MkdirAll honours the umask, so be explicit.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	b := &builder{rootfs: rootfs}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "etc", "var/task", "var/runtime", "opt", "root"} {
		b.mkdir(d)
	}
	for _, p := range hostBase {
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			b.symlink(target, p)
		case fi.IsDir():
			b.bind(p, p, fi)
		}
	}
	for name, content := range generatedEtc {
		b.write("etc/"+name, content)
	}
	if netns != "" {
		b.write("etc/resolv.conf", string(resolvConf))
	}
	for _, name := range hostEtc {
		p := "/etc/" + name
		if fi, err := os.Lstat(p); err == nil {
			if fi.Mode()&os.ModeSymlink != 0 {
				// Debian's /etc/localtime → /usr/share/zoneinfo/...: the
				// target is inside /usr, which is mounted.
				target, err := os.Readlink(p)
				if err != nil {
					return nil, err
				}
				b.symlink(target, p)
				continue
			}
			b.bind(p, p, fi)
		}
	}
	b.bind(s.CodeDir, sandbox.TaskRoot, nil)
	if len(s.LayerDirs) == 1 {
		b.bind(s.LayerDirs[0], sandbox.OptRoot, nil)
	}
	// /var/runtime: each entry of RuntimeDir, then the agent, so that no
	// mount point is ever created inside the host's RuntimeDir.
	entries, err := os.ReadDir(s.RuntimeDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Name() == filepath.Base(sandbox.AgentPath) {
			continue
		}
		src := filepath.Join(s.RuntimeDir, e.Name())
		dst := filepath.Join(sandbox.RuntimeRoot, e.Name())
		fi, err := os.Lstat(src)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				return nil, err
			}
			b.symlink(target, dst)
			continue
		}
		b.bind(src, dst, fi)
	}
	b.bind(s.AgentBinary, sandbox.AgentPath, nil)
	for _, p := range s.ExtraMounts {
		if b.covered(p) {
			// Already visible at the same path through a mounted parent
			// (e.g. /usr/local/lib/node under /usr).
			continue
		}
		if b.underForeign(p) {
			return nil, fmt.Errorf("extra mount %s lies inside another mounted host directory: %w", p, sandbox.ErrInvalidSpec)
		}
		b.bind(p, p, nil)
	}
	if b.err != nil {
		return nil, b.err
	}

	tmpMB := s.TmpMB
	if tmpMB == 0 {
		tmpMB = 512
	}
	pids := s.PidsLimit
	if pids == 0 {
		pids = 1024
	}
	mem := int64(s.MemoryMB) << 20
	period := uint64(100000)
	quota := int64(s.CPU()) * int64(period) / 1000
	// Linux's shares scale, with 1024 for one CPU.
	shares := uint64(s.CPU()) * 1024 / 1000
	pidsLimit := int64(pids)
	swappiness := uint64(0)

	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		// /dev stays writable (the jail's is read-only): this runsc
		// refuses to open a device node for writing on a read-only mount
		// (EROFS for /dev/null, which breaks every exec with default
		// stdio), and ignores size= and mode= here. It is the Sentry's own
		// tmpfs, private to the sandbox, bounded by its memory.
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		// runsc adds a writable /dev/shm otherwise; Lambda has none.
		{Destination: "/dev/shm", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "ro", "size=4k"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: sandbox.TmpRoot, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "mode=1777", fmt.Sprintf("size=%dm", tmpMB)}},
	}
	mounts = append(mounts, b.mounts...)
	// Mount a parent before its children: runsc mounts in order.
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(mounts[i].Destination, "/") < strings.Count(mounts[j].Destination, "/")
	})

	env := append([]string(nil), s.Env...)
	if !hasEnv(env, "PATH") {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	oci := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0},
			// gVisor hands a restored sandbox new stdio pipes under the
			// same descriptor numbers; an epoll registration of the old
			// one would not follow, so the agent reads stdin plainly here.
			Args:            append([]string{sandbox.AgentPath, "-poll-stdin=false"}, s.AgentArgs...),
			Env:             env,
			Cwd:             "/",
			NoNewPrivileges: true,
			// No capability in any set: the agent and the function are
			// root in name only, as in the jail. The agent signals and
			// reaps its own children (same uid) and needs none; with
			// CAP_SYS_ADMIN the function could mount, and with the rest
			// act on the Sentry's kernel as its administrator.
			Capabilities: &specs.LinuxCapabilities{
				Bounding: []string{}, Effective: []string{}, Permitted: []string{},
				Inheritable: []string{}, Ambient: []string{},
			},
			// The Sentry enforces RLIMIT_NPROC on clone and fork: the
			// function's process limit (the host cgroup's pids limit also
			// counts the Sentry's own threads).
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
				{Type: "RLIMIT_NPROC", Hard: uint64(pids), Soft: uint64(pids)},
			},
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "localhost",
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: netns},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			CgroupsPath: cg,
			Seccomp:     seccompProfile(),
			// runsc leaves our pre-created cgroup's settings alone but
			// sizes the Sentry (total memory, CPU count) from these.
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: &mem, Swap: &mem, Swappiness: &swappiness},
				CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares},
				Pids:   &specs.LinuxPids{Limit: &pidsLimit},
			},
		},
	}
	js, err := json.MarshalIndent(oci, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		return nil, err
	}
	return oci, nil
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// builder lays out the rootfs and collects bind mounts; the first error
// sticks.
type builder struct {
	rootfs string
	mounts []specs.Mount
	// dests are the sandbox paths of host bind mounts made so far.
	dests []string
	err   error
}

func (b *builder) path(p string) string { return filepath.Join(b.rootfs, p) }

func (b *builder) mkdir(p string) {
	if b.err == nil {
		b.err = os.MkdirAll(b.path(p), 0o755)
	}
}

func (b *builder) write(p, content string) {
	b.mkdir(filepath.Dir(p))
	if b.err == nil {
		b.err = os.WriteFile(b.path(p), []byte(content), 0o644)
	}
}

func (b *builder) symlink(target, p string) {
	b.mkdir(filepath.Dir(p))
	if b.err == nil {
		b.err = os.Symlink(target, b.path(p))
	}
}

// bind mounts host src read-only at dst, creating dst's mount point (a
// directory or an empty file, like src) inside the bundle. fi may be nil.
func (b *builder) bind(src, dst string, fi os.FileInfo) {
	if b.err != nil {
		return
	}
	if fi == nil {
		if fi, b.err = os.Stat(src); b.err != nil {
			return
		}
	}
	if fi.IsDir() {
		b.mkdir(dst)
	} else {
		b.mkdir(filepath.Dir(dst))
		if b.err == nil {
			var f *os.File
			if f, b.err = os.OpenFile(b.path(dst), os.O_CREATE|os.O_WRONLY, 0o644); b.err == nil {
				b.err = f.Close()
			}
		}
	}
	b.mounts = append(b.mounts, specs.Mount{
		Destination: dst, Type: "bind", Source: src,
		Options: []string{"rbind", "ro", "nosuid", "nodev"},
	})
	b.dests = append(b.dests, dst)
}

// covered reports whether p is inside a mount of the same host path, so it
// is already visible.
func (b *builder) covered(p string) bool {
	for i, m := range b.mounts {
		if m.Source == m.Destination && within(p, b.dests[i]) {
			return true
		}
	}
	return false
}

// underForeign reports whether p would need a mount point inside a host
// directory mounted elsewhere (which runsc would create on the host).
func (b *builder) underForeign(p string) bool {
	for _, d := range b.dests {
		if within(p, d) {
			return true
		}
	}
	return false
}

func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
