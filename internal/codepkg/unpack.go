package codepkg

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// Verify inflates every entry to its end without writing it, so that a CRC
// mismatch, a header that lies about a size, or a bomb is refused at upload
// time rather than at unpack. It returns the unzipped size (link targets
// included).
func (p *Package) Verify() (int64, error) {
	var total int64
	for _, e := range p.entries {
		if e.Kind == Symlink {
			total += int64(len(e.Target)) // read and checked by Open
			continue
		}
		n, err := inflate(e.f, io.Discard, MaxUnzippedSize-total)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// Unpack writes the package into dst, which must be an empty directory,
// and returns the unzipped size. On error dst holds part of the package and
// the caller removes it.
//
// Every path operation goes through an os.Root opened on dst, which
// refuses to leave it whatever a path or a link on disk says; and the order
// makes the root's guard a second line, not the first: directories first,
// then regular files (created, never opened if they exist), then links
// last, so no write ever traverses a link. Each entry's data is read to its
// end through archive/zip (CRC checked) with a running cap on the bytes
// written, since the unpacker must not trust that Verify ran.
func (p *Package) Unpack(dst string) (int64, error) {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return 0, fmt.Errorf("opening unpack root: %w", err)
	}
	defer root.Close()
	if err := mkdirs(root, p.root, ""); err != nil {
		return 0, err
	}
	var total int64
	for _, e := range p.entries {
		var n int64
		switch e.Kind {
		case Dir:
			// A directory's data (normally none) is read for its CRC only.
			n, err = inflate(e.f, io.Discard, MaxUnzippedSize-total)
		case File:
			n, err = writeFile(root, e, MaxUnzippedSize-total)
		}
		if err != nil {
			return 0, err
		}
		total += n
	}
	for _, e := range p.entries {
		if e.Kind != Symlink {
			continue
		}
		if err := root.Symlink(e.Target, e.Name); err != nil {
			return 0, fmt.Errorf("unpacking %s: %w", e.Name, err)
		}
		total += int64(len(e.Target))
	}
	return total, nil
}

// mkdirs creates the directories beneath n (whose path is dir), parents
// first. Preconditions: no link exists in root yet, so Chmod, which follows
// links, acts on the directory just made.
func mkdirs(root *os.Root, n *node, dir string) error {
	for name, child := range n.children {
		if child.kind() != Dir {
			continue
		}
		p := path.Join(dir, name)
		if err := root.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("unpacking %s: %w", p, err)
		}
		// The umask must not hide the code from the sandbox's uid.
		if err := root.Chmod(p, 0o755); err != nil {
			return fmt.Errorf("unpacking %s: %w", p, err)
		}
		if err := mkdirs(root, child, p); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates e (refusing to open anything that exists, link or
// not) and fills it with at most limit bytes.
func writeFile(root *os.Root, e *Entry, limit int64) (int64, error) {
	out, err := root.OpenFile(e.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.Perm)
	if err != nil {
		return 0, fmt.Errorf("unpacking %s: %w", e.Name, err)
	}
	n, err := inflate(e.f, fileWriter{out}, limit)
	if err == nil {
		err = out.Chmod(e.Perm) // the umask must not strip the exec bit
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("unpacking %s: %w", e.Name, cerr)
	}
	return n, err
}

// inflate copies f's data to w to its end, so archive/zip checks its CRC
// and size, reading at most limit+1 bytes; it refuses a corrupt entry, an
// entry past the limit and an entry whose real ratio is a bomb's.
func inflate(f *zip.File, w io.Writer, limit int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, corrupt(f.Name, err)
	}
	defer rc.Close()
	n, err := io.Copy(w, io.LimitReader(rc, limit+1))
	if n > limit {
		return 0, unzippedTooLarge()
	}
	if err != nil {
		var werr *writeError
		if errors.As(err, &werr) {
			return 0, werr.err
		}
		return 0, corrupt(f.Name, err)
	}
	if c := max(int64(f.CompressedSize64), 1); n > ratioFloor && n/c > MaxCompressionRatio {
		return 0, bomb(f.Name)
	}
	return n, nil
}

// fileWriter tells inflate a failed write (a full disk: the host's
// trouble) from a failed read (the package's).
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		err = &writeError{fmt.Errorf("unpacking %s: %w", w.f.Name(), err)}
	}
	return n, err
}

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
