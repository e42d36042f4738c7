package registry

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Deployment package limits (spec §4).
const (
	// MaxZipSize is the largest zip accepted in a direct upload.
	MaxZipSize = 50 * 1024 * 1024
	// MaxUnzippedSize is the largest sum of uncompressed entry sizes.
	MaxUnzippedSize = 262144000
	// MaxZipEntries bounds the work done on central directories full of
	// tiny entries.
	MaxZipEntries = 100000
	// MaxCompressionRatio is the highest uncompressed/compressed ratio
	// accepted for an entry bigger than ratioFloor. Deflate tops out near
	// 1032:1 on real input; anything above is a crafted bomb.
	MaxCompressionRatio = 1100
	ratioFloor          = 1 << 20
	maxSymlinkTarget    = 4096
)

// ZipInfo describes a validated zip.
type ZipInfo struct {
	Entries      int
	UnzippedSize int64
}

// ValidateZip checks that b is a deployment package Ignis can unpack safely:
// a real zip within the size limits whose entries all stay inside the
// extraction root (no absolute paths, no "..", no symlinks pointing out),
// whose entries do not overlap (the trick behind non-recursive zip bombs),
// and whose sizes are the ones actually produced by decompressing — the
// headers are checked first for a cheap refusal, then every entry is
// inflated with a hard cap, never trusting the declared size alone.
func ValidateZip(b []byte) (ZipInfo, error) {
	if len(b) == 0 {
		return ZipInfo{}, invalidf("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	if len(b) > MaxZipSize {
		return ZipInfo{}, tooLargef("Unzipped size must be smaller than %d bytes; zipped size must be smaller than %d bytes (got %d)", MaxUnzippedSize, MaxZipSize, len(b))
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return ZipInfo{}, invalidf("Could not unzip uploaded file. Please check your file, then try to upload again. (%v)", err)
	}
	if len(zr.File) > MaxZipEntries {
		return ZipInfo{}, invalidf("Zip file has %d entries; at most %d are allowed", len(zr.File), MaxZipEntries)
	}
	var declared uint64
	type span struct{ start, end int64 }
	spans := make([]span, 0, len(zr.File))
	for _, f := range zr.File {
		if err := checkEntryName(f.Name); err != nil {
			return ZipInfo{}, err
		}
		declared += f.UncompressedSize64
		if declared > MaxUnzippedSize {
			return ZipInfo{}, unzippedTooLarge()
		}
		if f.CompressedSize64 > uint64(len(b)) {
			return ZipInfo{}, invalidf("Zip entry %q claims %d compressed bytes in a %d-byte file", f.Name, f.CompressedSize64, len(b))
		}
		if f.UncompressedSize64 > ratioFloor && f.UncompressedSize64/max(f.CompressedSize64, 1) > MaxCompressionRatio {
			return ZipInfo{}, bomb(f.Name)
		}
		off, err := f.DataOffset()
		if err != nil {
			return ZipInfo{}, invalidf("Could not unzip uploaded file: entry %q: %v", f.Name, err)
		}
		spans = append(spans, span{off, off + int64(f.CompressedSize64)})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return ZipInfo{}, bomb("(overlapping entries)")
		}
	}

	// Inflate everything for real with a running cap: the headers may lie.
	var total int64
	for _, f := range zr.File {
		n, err := inflate(f, MaxUnzippedSize-total)
		if err != nil {
			return ZipInfo{}, err
		}
		total += n
		if f.UncompressedSize64 > 0 || n > 0 {
			if c := max(int64(f.CompressedSize64), 1); n > ratioFloor && n/c > MaxCompressionRatio {
				return ZipInfo{}, bomb(f.Name)
			}
		}
	}
	return ZipInfo{Entries: len(zr.File), UnzippedSize: total}, nil
}

// inflate decompresses one entry, reading at most limit+1 bytes, and checks
// symlink targets.
func inflate(f *zip.File, limit int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, invalidf("Could not unzip uploaded file: entry %q: %v", f.Name, err)
	}
	defer rc.Close()
	if f.Mode()&fs.ModeSymlink != 0 {
		target, err := io.ReadAll(io.LimitReader(rc, maxSymlinkTarget+1))
		if err != nil {
			return 0, invalidf("Could not unzip uploaded file: entry %q: %v", f.Name, err)
		}
		if len(target) > maxSymlinkTarget {
			return 0, invalidf("Symbolic link %q has a target longer than %d bytes", f.Name, maxSymlinkTarget)
		}
		if err := checkSymlink(f.Name, string(target)); err != nil {
			return 0, err
		}
		return int64(len(target)), nil
	}
	n, err := io.Copy(io.Discard, io.LimitReader(rc, limit+1))
	if n > limit {
		return 0, unzippedTooLarge()
	}
	if err != nil {
		if errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrChecksum) {
			return 0, invalidf("Could not unzip uploaded file: entry %q is corrupt (%v)", f.Name, err)
		}
		return 0, invalidf("Could not unzip uploaded file: entry %q: %v", f.Name, err)
	}
	return n, nil
}

func unzippedTooLarge() error {
	return invalidf("Unzipped size must be smaller than %d bytes", MaxUnzippedSize)
}

func bomb(name string) error {
	return invalidf("Zip entry %s has a compression ratio above %d:1; refusing a likely zip bomb", name, MaxCompressionRatio)
}

// checkEntryName refuses names that would land outside the extraction root.
func checkEntryName(name string) error {
	bad := func(why string) error {
		return invalidf("Zip entry %q %s; entries must stay inside the package root", truncate(name, 200), why)
	}
	switch {
	case name == "":
		return bad("has an empty name")
	case strings.ContainsRune(name, 0):
		return bad("contains a NUL byte")
	case strings.Contains(name, `\`):
		return bad("contains a backslash")
	case strings.HasPrefix(name, "/"):
		return bad("is an absolute path")
	case len(name) >= 2 && name[1] == ':':
		return bad("has a drive letter")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return bad("contains '..'")
		}
	}
	return nil
}

// checkSymlink refuses a link whose target resolves outside the root.
func checkSymlink(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return invalidf("Symbolic link %q points to %q, outside the package root", truncate(name, 200), truncate(target, 200))
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return invalidf("Symbolic link %q points to %q, outside the package root", truncate(name, 200), truncate(target, 200))
	}
	return nil
}
