package registry

import (
	"errors"

	"github.com/ignis-run/ignis/internal/codepkg"
)

// Deployment package limits (spec §4). All but MaxZipSize are codepkg's,
// which the worker's unpacker enforces too.
const (
	// MaxZipSize is the largest zip accepted in a direct upload.
	MaxZipSize = 50 * 1024 * 1024
	// MaxUnzippedSize is the largest sum of uncompressed entry sizes.
	MaxUnzippedSize = codepkg.MaxUnzippedSize
	// MaxZipEntries bounds the work done on central directories full of
	// tiny entries.
	MaxZipEntries = codepkg.MaxEntries
	// MaxCompressionRatio is the highest uncompressed/compressed ratio
	// accepted for a big entry.
	MaxCompressionRatio = codepkg.MaxCompressionRatio
)

// ZipInfo describes a validated zip.
type ZipInfo struct {
	Entries      int
	UnzippedSize int64
}

// ValidateZip checks that b is a deployment package Ignis can unpack safely,
// with the model the worker's unpacker uses (codepkg, whose doc lists what
// is refused and what is made harmless): a real zip within the size limits,
// whose entries form a tree with no collision, no name outside the root and
// no link whose resolution, through the package's other links, leaves it;
// and whose entries all inflate, CRC checked, to their declared sizes
// within the bomb limits.
func ValidateZip(b []byte) (ZipInfo, error) {
	if len(b) == 0 {
		return ZipInfo{}, invalidf("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	if len(b) > MaxZipSize {
		return ZipInfo{}, tooLargef("Unzipped size must be smaller than %d bytes; zipped size must be smaller than %d bytes (got %d)", MaxUnzippedSize, MaxZipSize, len(b))
	}
	p, err := codepkg.Open(b)
	if err != nil {
		return ZipInfo{}, packageError(err)
	}
	n, err := p.Verify()
	if err != nil {
		return ZipInfo{}, packageError(err)
	}
	return ZipInfo{Entries: p.Len(), UnzippedSize: n}, nil
}

// packageError makes a codepkg refusal a registry Error, its message for
// the API user kept.
func packageError(err error) error {
	var pe *codepkg.Error
	if errors.As(err, &pe) {
		return invalidf("%s", pe.Message)
	}
	return err
}
