package registry

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/ignis-run/ignis/internal/errdefs"
)

type entry struct {
	name    string
	content string
	symlink bool
}

func buildZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.symlink {
			h.SetMode(0o777 | 1<<27) // fs.ModeSymlink
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lyingZip stores content but declares a smaller uncompressed size, the way
// a crafted bomb hides its real size from header-only checks.
func lyingZip(t testing.TB, content []byte, declared uint64) []byte {
	t.Helper()
	var comp bytes.Buffer
	fw := zip.NewWriter(&comp)
	w, _ := fw.CreateHeader(&zip.FileHeader{Name: "x", Method: zip.Store})
	w.Write(content)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bomb.bin", Method: zip.Store, UncompressedSize64: declared, CompressedSize64: uint64(len(content))}
	rw, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	rw.Write(content)
	zw.Close()
	return buf.Bytes()
}

// overlappingZip duplicates the single central-directory record of a zip,
// so two entries share one compressed body (the non-recursive bomb trick).
func overlappingZip(t testing.TB) []byte {
	t.Helper()
	b := buildZip(t, entry{name: "a", content: strings.Repeat("a", 1000)})
	eocd := bytes.LastIndex(b, []byte("PK\x05\x06"))
	cdSize := binary.LittleEndian.Uint32(b[eocd+12:])
	cdOff := binary.LittleEndian.Uint32(b[eocd+16:])
	cd := b[cdOff : cdOff+cdSize]
	rec := append([]byte{}, cd...)
	rec[46] = 'b' // rename the copy: the name follows the fixed 46-byte header
	out := append([]byte{}, b[:cdOff]...)
	out = append(out, cd...)
	out = append(out, rec...)
	end := append([]byte{}, b[eocd:]...)
	binary.LittleEndian.PutUint16(end[8:], 2)
	binary.LittleEndian.PutUint16(end[10:], 2)
	binary.LittleEndian.PutUint32(end[12:], cdSize*2)
	return append(out, end...)
}

func TestValidateZip_Scenarios(t *testing.T) {
	tests := []struct {
		name      string
		zip       []byte
		wantClass error
		wantMsg   string
	}{
		{name: "valid", zip: buildZip(t, entry{name: "app.py", content: "x"}, entry{name: "lib/", content: ""}, entry{name: "lib/m.py", content: "y"})},
		{name: "valid relative symlink", zip: buildZip(t, entry{name: "lib/link", content: "../app.py", symlink: true}, entry{name: "app.py", content: "x"})},
		{name: "empty", zip: nil, wantClass: errdefs.ErrInvalidArgument, wantMsg: "unzip"},
		{name: "not a zip", zip: []byte("hello world, definitely not a zip"), wantClass: errdefs.ErrInvalidArgument, wantMsg: "unzip"},
		{name: "truncated", zip: buildZip(t, entry{name: "a", content: "x"})[:30], wantClass: errdefs.ErrInvalidArgument},
		{name: "zip slip", zip: buildZip(t, entry{name: "../evil", content: "x"}), wantClass: errdefs.ErrInvalidArgument, wantMsg: ".."},
		{name: "nested zip slip", zip: buildZip(t, entry{name: "a/../../evil", content: "x"}), wantClass: errdefs.ErrInvalidArgument, wantMsg: ".."},
		{name: "absolute path", zip: buildZip(t, entry{name: "/etc/passwd", content: "x"}), wantClass: errdefs.ErrInvalidArgument, wantMsg: "absolute"},
		{name: "backslash", zip: buildZip(t, entry{name: `..\evil`, content: "x"}), wantClass: errdefs.ErrInvalidArgument, wantMsg: "backslash"},
		{name: "drive letter", zip: buildZip(t, entry{name: "C:evil", content: "x"}), wantClass: errdefs.ErrInvalidArgument, wantMsg: "drive"},
		{name: "escaping symlink", zip: buildZip(t, entry{name: "link", content: "../../etc/passwd", symlink: true}), wantClass: errdefs.ErrInvalidArgument, wantMsg: "outside"},
		{name: "absolute symlink", zip: buildZip(t, entry{name: "link", content: "/etc/passwd", symlink: true}), wantClass: errdefs.ErrInvalidArgument, wantMsg: "outside"},
		{name: "declared size over limit", zip: lyingZip(t, []byte("small"), MaxUnzippedSize+1), wantClass: errdefs.ErrInvalidArgument, wantMsg: "Unzipped size"},
		{name: "header lies about size", zip: lyingZip(t, bytes.Repeat([]byte("z"), 4096), 10), wantClass: errdefs.ErrInvalidArgument, wantMsg: "corrupt"},
		{name: "overlapping entries", zip: overlappingZip(t), wantClass: errdefs.ErrInvalidArgument, wantMsg: "overlapping"},
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

func TestValidateZip_Limits(t *testing.T) {
	big := make([]byte, MaxZipSize+1)
	if _, err := ValidateZip(big); !errors.Is(err, errdefs.ErrTooLarge) {
		t.Errorf("zip over 50 MB: %v, want ErrTooLarge", err)
	}
	// 10 MB of zeros deflates ~1000:1, which is legitimate.
	info, err := ValidateZip(buildZip(t, entry{name: "zeros", content: string(make([]byte, 10<<20))}))
	if err != nil || info.UnzippedSize != 10<<20 {
		t.Errorf("highly compressible file: %v %+v", err, info)
	}
}

func FuzzValidateZip(f *testing.F) {
	f.Add(buildZip(f, entry{name: "app.py", content: "def handler(e, c): return e"}))
	f.Add(buildZip(f, entry{name: "../x", content: "x"}))
	f.Add(buildZip(f, entry{name: "l", content: "../../x", symlink: true}))
	f.Add(overlappingZip(f))
	f.Add(lyingZip(f, []byte("abcdef"), 2))
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
			if checkEntryName(fl.Name) != nil {
				t.Fatalf("accepted unsafe name %q", fl.Name)
			}
		}
	})
}
