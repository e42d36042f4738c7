package registry

import (
	"archive/zip"
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ignis-run/ignis/internal/codepkg"
	"github.com/ignis-run/ignis/internal/codepkg/codepkgtest"
	"github.com/ignis-run/ignis/internal/errdefs"
)

var (
	buildZip = codepkgtest.Zip
	file     = codepkgtest.File
	link     = codepkgtest.Link
)

// hostile returns the package of the codepkgtest corpus called name.
func hostile(t *testing.T, name string) []byte {
	t.Helper()
	for _, c := range codepkgtest.Hostile(t, "/tmp", "NAME") {
		if c.Name == name {
			return c.Zip
		}
	}
	t.Fatalf("no hostile package %q", name)
	return nil
}

func TestValidateZip_Scenarios(t *testing.T) {
	tests := []struct {
		name      string
		zip       []byte
		wantClass error
		wantMsg   string
	}{
		{name: "valid", zip: buildZip(t, file("app.py", "x"), file("lib/", ""), file("lib/m.py", "y"))},
		{name: "valid relative symlink", zip: buildZip(t, link("lib/link", "../app.py"), file("app.py", "x"))},
		{name: "empty", zip: nil, wantClass: errdefs.ErrInvalidArgument, wantMsg: "unzip"},
		{name: "not a zip", zip: []byte("hello world, definitely not a zip"), wantClass: errdefs.ErrInvalidArgument, wantMsg: "unzip"},
		{name: "truncated", zip: buildZip(t, file("a", "x"))[:30], wantClass: errdefs.ErrInvalidArgument},
		{name: "zip slip", zip: buildZip(t, file("../evil", "x")), wantClass: errdefs.ErrInvalidArgument, wantMsg: ".."},
		{name: "nested zip slip", zip: buildZip(t, file("a/../../evil", "x")), wantClass: errdefs.ErrInvalidArgument, wantMsg: ".."},
		{name: "absolute path", zip: buildZip(t, file("/etc/passwd", "x")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "absolute"},
		{name: "backslash", zip: buildZip(t, file(`..\evil`, "x")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "backslash"},
		{name: "drive letter", zip: buildZip(t, file("C:evil", "x")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "drive"},
		{name: "escaping symlink", zip: buildZip(t, link("link", "../../etc/passwd")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "outside"},
		{name: "absolute symlink", zip: buildZip(t, link("link", "/etc/passwd")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "outside"},
		{name: "valid in-package links", zip: buildZip(t, file("node_modules/x/bin/x.js", "x"), link("node_modules/.bin/x", "../x/bin/x.js"), link("a/up", ".."), link("a/x", "up/a/up/node_modules"), link("dangling", "conf/missing.json"))},
		{name: "link chain", zip: codepkgtest.LinkChain(t, "NAME"), wantClass: errdefs.ErrInvalidArgument, wantMsg: "beneath"},
		{name: "symlink escaping through another link", zip: buildZip(t, link("a/up", ".."), link("a/x", "up/..")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "outside"},
		{name: "symlink escaping through a chain of links", zip: buildZip(t, link("a/b/l", "../m"), link("a/m", "../../n")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "outside"},
		{name: "symlink loop", zip: buildZip(t, link("a", "b"), link("b", "a")), wantClass: errdefs.ErrInvalidArgument, wantMsg: "more than 40 links"},
		{name: "crc mismatch", zip: hostile(t, "crc mismatch"), wantClass: errdefs.ErrInvalidArgument, wantMsg: "checksum"},
		{name: "declared size over limit", zip: codepkgtest.LyingZip(t, []byte("small"), MaxUnzippedSize+1), wantClass: errdefs.ErrInvalidArgument, wantMsg: "Unzipped size"},
		{name: "header lies about size", zip: codepkgtest.LyingZip(t, bytes.Repeat([]byte("z"), 4096), 10), wantClass: errdefs.ErrInvalidArgument, wantMsg: "corrupt"},
		{name: "overlapping entries", zip: codepkgtest.OverlappingZip(t, 2), wantClass: errdefs.ErrInvalidArgument, wantMsg: "overlapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ValidateZip(tt.zip)
			if tt.wantClass == nil {
				if err != nil {
					t.Fatalf("ValidateZip: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantClass) {
				t.Fatalf("ValidateZip error = %v, want class %v", err, tt.wantClass)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// TestValidateZip_RefusesHostilePackages runs the corpus the worker's
// unpacker is tested on: the registry refuses every package the worker
// would, so none is accepted only to fail at its first invoke.
func TestValidateZip_RefusesHostilePackages(t *testing.T) {
	for _, tc := range codepkgtest.Hostile(t, "/tmp", codepkgtest.Marker()) {
		t.Run(tc.Name, func(t *testing.T) {
			if _, err := ValidateZip(tc.Zip); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ValidateZip = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestValidateZip_Limits(t *testing.T) {
	big := make([]byte, MaxZipSize+1)
	if _, err := ValidateZip(big); !errors.Is(err, errdefs.ErrTooLarge) {
		t.Errorf("zip over 50 MB: %v, want ErrTooLarge", err)
	}
	// 10 MB of zeros deflates ~1000:1, which is legitimate.
	info, err := ValidateZip(buildZip(t, file("zeros", string(make([]byte, 10<<20)))))
	if err != nil || info.UnzippedSize != 10<<20 {
		t.Errorf("highly compressible file: %v %+v", err, info)
	}
}

func FuzzValidateZip(f *testing.F) {
	f.Add(buildZip(f, file("app.py", "def handler(e, c): return e")))
	f.Add(buildZip(f, file("../x", "x")))
	f.Add(buildZip(f, link("l", "../../x")))
	f.Add(codepkgtest.OverlappingZip(f, 2))
	f.Add(codepkgtest.LyingZip(f, []byte("abcdef"), 2))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ValidateZip(b)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		// Whatever passes must be readable within limits, every name safe.
		zr, zerr := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if zerr != nil {
			t.Fatalf("accepted a zip archive/zip cannot open: %v", zerr)
		}
		if info.UnzippedSize > MaxUnzippedSize {
			t.Fatalf("accepted %d unzipped bytes", info.UnzippedSize)
		}
		for _, fl := range zr.File {
			if strings.HasPrefix(fl.Name, "/") || slices.Contains(strings.Split(fl.Name, "/"), "..") {
				t.Fatalf("accepted unsafe name %q", fl.Name)
			}
		}
		// The worker's unpacker must accept what the registry accepted.
		p, err := codepkg.Open(b)
		if err != nil {
			t.Fatalf("accepted a package codepkg.Open refuses: %v", err)
		}
		if _, err := p.Unpack(t.TempDir()); err != nil {
			t.Fatalf("accepted a package Unpack refuses: %v", err)
		}
	})
}
