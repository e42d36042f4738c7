package jail

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// baseDirs are the host's runtime base, bound read-only at the same place
// in every sandbox. Merged-/usr hosts have symlinks for all but /usr; those
// become the same symlinks in the sandbox.
var baseDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// devices are bound from the host's /dev into the sandbox's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// etcEntries are what the sandbox's /etc takes from the host's, copied once
// per driver: the dynamic linker's cache and config, CA certificates, the
// alternatives symlinks that language runtimes resolve through, and the
// OS release. Everything else in the host's /etc (shadow, keys, host names,
// service configs) stays out of reach.
var etcEntries = []string{
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "os-release",
	"ssl/certs/ca-certificates.crt", "ssl/openssl.cnf", "mime.types",
	"python3", "python3.11", "python3.12", "python3.13",
}

// etcGenerated are written rather than copied: the sandbox's own identity.
var etcGenerated = map[string]string{
	"passwd": "root:x:0:0:root:/tmp:/usr/sbin/nologin\n" +
		"sbx_user1051:x:993:990::/tmp:/usr/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	"group":         "root:x:0:\nsbx_user1051:x:990:\nnogroup:x:65534:\n",
	"hosts":         "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	"hostname":      "localhost\n",
	"resolv.conf":   "# no network beyond loopback\nnameserver 127.0.0.1\n",
	"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
}

// prepareEtc builds the minimal /etc in dir, world-readable so the
// sandbox's unprivileged uid can read it.
func prepareEtc(dir string, resolvConf []byte) error {
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for name, content := range etcGenerated {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if resolvConf != nil {
		if err := os.WriteFile(filepath.Join(tmp, "resolv.conf"), resolvConf, 0o644); err != nil {
			return err
		}
	}
	if err := os.Symlink("/usr/share/zoneinfo/UTC", filepath.Join(tmp, "localtime")); err != nil {
		return err
	}
	for _, e := range etcEntries {
		if err := copyTree(filepath.Join("/etc", e), filepath.Join(tmp, e)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("copying /etc/%s: %w", e, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// copyTree copies a file, symlink or directory tree, making everything
// world-readable; unreadable host files are skipped, not exposed.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == from {
				return err
			}
			return nil
		}
		dst := filepath.Join(to, strings.TrimPrefix(p, from))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil || info.Mode().Perm()&0o004 == 0 {
				return nil // not world-readable on the host: keep it out
			}
			return copyFile(p, dst, info.Mode().Perm()|0o444)
		}
		return nil
	})
}

func copyFile(from, to string, mode fs.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// Attributes of the detached trees handed to the sandbox.
const (
	attrRO  = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	attrDev = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC
)

// detach clones the mount tree at host path p into a detached mount (no
// host-visible mount exists at any time) with attributes attr, and returns
// its descriptor. The sandbox's setup stage attaches it with move_mount,
// which needs neither search permission on p's parents (t.TempDir, /root)
// nor p to be visible in the sandbox's mount namespace.
func detach(p string, attr uint64) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("cloning mount of %s: %w", p, err)
	}
	ma := unix.MountAttr{Attr_set: attr}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &ma); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("setting attributes of %s: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// overlay returns a detached read-only overlay of dirs, the last one on top
// (a later layer overrides an earlier one, as in Lambda).
func overlay(dirs []string) (*os.File, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("opening overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", dirs[i]); err != nil {
			return nil, fmt.Errorf("adding layer %s: %w", dirs[i], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("creating overlay: %w", err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(attrRO))
	if err != nil {
		return nil, fmt.Errorf("mounting overlay: %w", err)
	}
	return os.NewFile(uintptr(fd), "overlay"), nil
}
