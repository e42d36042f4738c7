package codepkg

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"sort"
	"strings"
)

// Limits of a deployment package (spec §4), and of what the model accepts.
const (
	// MaxUnzippedSize is the largest sum of uncompressed entry sizes, both
	// declared and actually inflated.
	MaxUnzippedSize = 262144000
	// MaxEntries bounds the work done on central directories full of tiny
	// entries.
	MaxEntries = 100000
	// MaxCompressionRatio is the highest uncompressed/compressed ratio
	// accepted for an entry bigger than ratioFloor. Deflate tops out near
	// 1032:1 on real input; anything above is a crafted bomb.
	MaxCompressionRatio = 1100
	ratioFloor          = 1 << 20
	// MaxLinkTarget is the longest symbolic link target (PATH_MAX).
	MaxLinkTarget = 4096
	// MaxNameLen is the longest entry name (PATH_MAX) and maxComponentLen
	// the longest component of one (NAME_MAX): a name the host cannot
	// create is refused up front rather than failing at unpack.
	MaxNameLen      = 4096
	maxComponentLen = 255
	// MaxLinkHops is how many links one resolution may follow, as the
	// kernel's ELOOP limit.
	MaxLinkHops = 40
	// resolveBudget bounds the path components all link resolutions of one
	// package may walk: real packages use a tiny fraction, a crafted one
	// (thousands of links of 4 KiB targets chained 40 deep) cannot make the
	// check slow.
	resolveBudget = 1 << 24
)

// Kind is the type of an entry: the only three a package may hold.
type Kind uint8

// Entry kinds.
const (
	Dir Kind = iota + 1
	File
	Symlink
)

func (k Kind) String() string {
	switch k {
	case Dir:
		return "directory"
	case File:
		return "file"
	case Symlink:
		return "symbolic link"
	}
	return "unknown"
}

// Entry is one accepted zip entry.
type Entry struct {
	// Name is normalised: relative, slash-separated, no "", "." or ".."
	// component.
	Name string
	Kind Kind
	// Perm is what the unpacker gives it: 0o755 for a directory or an
	// executable file, 0o644 for another file.
	Perm fs.FileMode
	// Target is a symbolic link's target, relative, resolving inside the
	// package.
	Target string

	f *zip.File
}

// Package is a deployment package that passed every check Open makes: the
// tree its entries declare, with no collision and no link leaving it.
//
// A Package reads its zip data lazily (Verify, Unpack); it is not safe for
// concurrent use.
type Package struct {
	entries []*Entry // zip order
	files   int      // zip entries, including skipped root entries
	root    *node
}

// node is a place in the package tree: the root, an entry, or a directory
// only implied by the entries beneath it.
type node struct {
	parent   *node
	children map[string]*node
	entry    *Entry // nil for the root and implied directories
}

func (n *node) kind() Kind {
	if n.entry == nil {
		return Dir
	}
	return n.entry.Kind
}

// Len is the number of entries in the zip.
func (p *Package) Len() int { return p.files }

// Entries returns the accepted entries in zip order.
func (p *Package) Entries() []Entry {
	out := make([]Entry, len(p.entries))
	for i, e := range p.entries {
		out[i] = *e
	}
	return out
}

// Open parses data as a zip and builds the package tree its entries
// declare, refusing (with *Error) everything doc.go lists as refused. It
// reads the central directory, the local headers and the symbolic links'
// targets; the other entries' data is read by Verify or Unpack.
func Open(data []byte) (*Package, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	// ErrInsecurePath comes with a usable reader: the names are judged below.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, refusef("Could not unzip uploaded file. Please check your file, then try to upload again. (%v)", err)
	}
	if len(zr.File) > MaxEntries {
		return nil, refusef("Zip file has %d entries; at most %d are allowed", len(zr.File), MaxEntries)
	}
	p := &Package{files: len(zr.File), root: &node{}}
	var declared uint64
	type span struct{ start, end int64 }
	spans := make([]span, 0, len(zr.File))
	for _, f := range zr.File {
		declared += f.UncompressedSize64
		if declared > MaxUnzippedSize {
			return nil, unzippedTooLarge()
		}
		if f.CompressedSize64 > uint64(len(data)) {
			return nil, refusef("Zip entry %q claims %d compressed bytes in a %d-byte file", clip(f.Name), f.CompressedSize64, len(data))
		}
		if f.UncompressedSize64 > ratioFloor && f.UncompressedSize64/max(f.CompressedSize64, 1) > MaxCompressionRatio {
			return nil, bomb(f.Name)
		}
		off, err := f.DataOffset()
		if err != nil {
			return nil, corrupt(f.Name, err)
		}
		spans = append(spans, span{off, off + int64(f.CompressedSize64)})

		e, err := newEntry(f)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue // the root directory itself
		}
		if err := p.insert(e); err != nil {
			return nil, err
		}
		p.entries = append(p.entries, e)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return nil, bomb("(overlapping entries)")
		}
	}
	if err := p.checkLinks(); err != nil {
		return nil, err
	}
	return p, nil
}

// newEntry judges one zip entry on its own: name, type, link target. It
// returns nil for an entry naming the package root as a directory ("./").
func newEntry(f *zip.File) (*Entry, error) {
	name, err := normalise(f.Name)
	if err != nil {
		return nil, err
	}
	e := &Entry{Name: name, f: f}
	// Mode().Type() holds every type bit, so a name ending in "/" with a
	// link's mode (ModeDir|ModeSymlink) is refused, not guessed at.
	switch mode := f.Mode(); mode.Type() {
	case fs.ModeDir:
		e.Kind, e.Perm = Dir, 0o755
	case 0:
		// Set-id and sticky bits are dropped, not refused: the unpacker
		// writes 0644 or 0755 whatever the zip says, as Lambda does.
		e.Kind, e.Perm = File, 0o644
		if mode&0o111 != 0 {
			e.Perm = 0o755
		}
	case fs.ModeSymlink:
		e.Kind, e.Perm = Symlink, 0o777
	default:
		return nil, refusef("Zip entry %q is a %v; only files, directories and symbolic links are allowed", clip(f.Name), mode.Type())
	}
	if name == "" {
		if e.Kind != Dir {
			return nil, refusef("Zip entry %q names the package root; only a directory may", clip(f.Name))
		}
		return nil, nil
	}
	if e.Kind == Symlink {
		if e.Target, err = readTarget(f); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// normalise returns name relative, slash-separated, with empty and "."
// components dropped ("./a//b" is "a/b"), or refuses it. "" is the root.
func normalise(name string) (string, error) {
	bad := func(why string) error {
		return refusef("Zip entry %q %s; entries must stay inside the package root", clip(name), why)
	}
	switch {
	case name == "":
		return "", bad("has an empty name")
	case strings.ContainsRune(name, 0):
		return "", bad("contains a NUL byte")
	case strings.Contains(name, `\`):
		return "", bad("contains a backslash")
	case strings.HasPrefix(name, "/"):
		return "", bad("is an absolute path")
	case len(name) >= 2 && name[1] == ':':
		return "", bad("has a drive letter")
	case len(name) > MaxNameLen:
		return "", bad("is longer than 4096 bytes")
	}
	parts := strings.Split(name, "/")
	kept := parts[:0]
	for _, part := range parts {
		switch {
		case part == "..":
			return "", bad("contains '..'")
		case part == "" || part == ".":
			continue
		case len(part) > maxComponentLen:
			return "", bad("has a component longer than 255 bytes")
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "/"), nil
}

// readTarget reads a link's target to EOF (so its CRC is checked) and
// judges it on its own; where it leads is checkLinks' business.
func readTarget(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", corrupt(f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxLinkTarget+1))
	if err != nil {
		return "", corrupt(f.Name, err)
	}
	target := string(b)
	switch {
	case len(b) > MaxLinkTarget:
		return "", refusef("Symbolic link %q has a target longer than %d bytes", clip(f.Name), MaxLinkTarget)
	case target == "" || strings.ContainsRune(target, 0):
		return "", refusef("Symbolic link %q has an invalid target %q", clip(f.Name), clip(target))
	case strings.HasPrefix(target, "/"):
		return "", outside(f.Name, target)
	}
	return target, nil
}

// insert places e in the tree. Whatever the order of the entries, it
// refuses a name declared twice and an entry beneath a file or a link: the
// unpacker never writes through a link, and never has to choose which of
// two entries wins.
func (p *Package) insert(e *Entry) error {
	n := p.root
	parts := strings.Split(e.Name, "/")
	for i, part := range parts {
		child := n.children[part]
		last := i == len(parts)-1
		switch {
		case child == nil:
			if n.children == nil {
				n.children = make(map[string]*node)
			}
			child = &node{parent: n}
			n.children[part] = child
			if last {
				child.entry = e
			}
		case !last && child.kind() != Dir:
			return refusef("Zip entry %q lies beneath %q, which is a %v", clip(e.Name), clip(strings.Join(parts[:i+1], "/")), child.kind())
		case last && child.entry != nil:
			return refusef("Zip entry %q appears twice (as a %v and as a %v)", clip(e.Name), child.entry.Kind, e.Kind)
		case last && e.Kind != Dir:
			return refusef("Zip entry %q is a %v, but other entries lie beneath it", clip(e.Name), e.Kind)
		case last:
			child.entry = e // an implied directory, now declared
		}
		n = child
	}
	return nil
}

func unzippedTooLarge() error {
	return refusef("Unzipped size must be smaller than %d bytes", MaxUnzippedSize)
}

func bomb(name string) error {
	return refusef("Zip entry %s has a compression ratio above %d:1; refusing a likely zip bomb", clip(name), MaxCompressionRatio)
}

func corrupt(name string, err error) error {
	return refusef("Could not unzip uploaded file: entry %q is corrupt (%v)", clip(name), err)
}

func outside(name, target string) error {
	return refusef("Symbolic link %q points to %q, outside the package root", clip(name), clip(target))
}
