// Package codepkgtest builds deployment packages for tests, hostile ones
// above all, and watches a directory for anything an unpacker writes
// outside the root it was given. The registry's validation, the codepkg
// unpacker and the worker's code cache are all tested on the same corpus.
package codepkgtest

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io/fs"
	"path"
	"strings"
	"testing"
)

// Entry is one zip entry to build.
type Entry struct {
	Name string
	// Body is a file's content, or a link's target.
	Body string
	// Mode is the entry's mode; 0 means a 0644 regular file.
	Mode fs.FileMode
	// Store stores the body uncompressed, so a test can corrupt it.
	Store bool
}

// File is a 0644 regular file.
func File(name, body string) Entry { return Entry{Name: name, Body: body} }

// Link is a symbolic link to target.
func Link(name, target string) Entry {
	return Entry{Name: name, Body: target, Mode: fs.ModeSymlink | 0o777}
}

// Zip builds a zip of entries, in order.
func Zip(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate}
		if e.Store {
			h.Method = zip.Store
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.Body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Marker returns a name no file on the host has: hostile packages aim
// their escapes at it, and Watch looks for it.
func Marker() string { return "ignis-escape-" + strings.ToLower(rand.Text()[:12]) }

// Case is a package an unpacker must refuse.
type Case struct {
	Name string
	Zip  []byte
}

// Hostile returns packages that must be refused. Unpacked by an unpacker
// that follows them, their escapes write files whose names hold marker
// beside the root, in outside (an absolute directory), or at "/": the
// places Watch looks at.
func Hostile(t testing.TB, outside, marker string) []Case {
	t.Helper()
	crc := Zip(t, File("app.py", "def handler(e, c): return 1"), Entry{Name: "data.txt", Body: "the good bytes", Store: true})
	i := bytes.Index(crc, []byte("the good bytes"))
	crc[i] ^= 0xff

	return []Case{
		{"link chain of twelve", LinkChain(t, marker)},
		{"link to parent then file through it", Zip(t, Link("up", ".."), File("up/"+marker, "x"))},
		{"absolute link then file through it", Zip(t, Link("out", outside), File("out/"+marker, "x"))},
		{"link escaping through another link", Zip(t, Link("a/up", ".."), Link("a/x", "up/.."), File("a/x/"+marker, "x"))},
		{"link escaping through another link alone", Zip(t, Link("a/up", ".."), Link("a/x", "up/../.."))},
		{"link to /etc", Zip(t, Link("etc", "/etc"))},
		{"link to parent", Zip(t, Link("up", "../"+marker))},
		{"link loop", Zip(t, Link("a", "b"), Link("b", "a"))},
		{"link beneath a link", Zip(t, Link("a", "b"), Link("a/c", "."), Entry{Name: "b/", Mode: fs.ModeDir | 0o755})},
		{"absolute name", Zip(t, File(path.Join(outside, marker), "x"))},
		{"absolute name at the host root", Zip(t, File("/"+marker, "x"))},
		{"dot-dot name", Zip(t, File("../"+marker, "x"))},
		{"nested dot-dot name", Zip(t, File("a/../../"+marker, "x"))},
		{"backslash name", Zip(t, File(`..\`+marker, "x"))},
		{"block device", Zip(t, Entry{Name: "dev", Mode: fs.ModeDevice | 0o644})},
		{"char device", Zip(t, Entry{Name: "dev", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o644})},
		{"fifo", Zip(t, Entry{Name: "fifo", Mode: fs.ModeNamedPipe | 0o644})},
		{"socket", Zip(t, Entry{Name: "sock", Mode: fs.ModeSocket | 0o644})},
		{"directory and file of one name", Zip(t, Entry{Name: "a/", Mode: fs.ModeDir | 0o755}, File("a", "x"))},
		{"file and link of one name", Zip(t, File("a", "x"), Link("a", "b"))},
		{"same file twice", Zip(t, File("a", "first"), File("a", "second"))},
		{"same file twice after normalising", Zip(t, File("a/b", "first"), File("a/./b", "second"))},
		{"file then a file beneath it", Zip(t, File("a", "x"), File("a/b", "y"))},
		{"file beneath a file declared after", Zip(t, File("a/b", "y"), File("a", "x"))},
		{"crc mismatch", crc},
		{"bomb: header understates the size", LyingZip(t, bytes.Repeat([]byte("z"), 4096), 10)},
		{"bomb: declared size over the limit", LyingZip(t, []byte("small"), 262144001)},
		{"bomb: entries share their data", OverlappingZip(t, 50)},
	}
}

// LinkChain is the package of issue 11: d/s → "..", d/s/<marker>-la →
// "..", … twelve links, each created through the ones before by a naive
// unpacker and climbing one more level, then a file <marker> beneath them,
// which lands 12 levels up from the root: at "/" from any temp dir.
func LinkChain(t testing.TB, marker string) []byte {
	t.Helper()
	chain := []Entry{Link("d/s", "..")}
	dir := "d/s"
	for i := range 12 {
		dir = path.Join(dir, marker+"-l"+string(rune('a'+i)))
		chain = append(chain, Link(dir, ".."))
	}
	return Zip(t, append(chain, File(path.Join(dir, marker), "escaped"))...)
}

// LyingZip stores content but declares declared uncompressed bytes, the
// way a crafted bomb hides its real size from header-only checks.
func LyingZip(t testing.TB, content []byte, declared uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bomb.bin", Method: zip.Store, UncompressedSize64: declared, CompressedSize64: uint64(len(content))}
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// OverlappingZip repeats the single central-directory record of a zip n
// times (n ≤ 52), each under its own name, so n entries share one
// compressed body (the non-recursive bomb trick).
func OverlappingZip(t testing.TB, n int) []byte {
	t.Helper()
	b := Zip(t, File("a", strings.Repeat("a", 1000)))
	eocd := bytes.LastIndex(b, []byte("PK\x05\x06"))
	cdSize := binary.LittleEndian.Uint32(b[eocd+12:])
	cdOff := binary.LittleEndian.Uint32(b[eocd+16:])
	cd := b[cdOff : cdOff+cdSize]
	out := append([]byte{}, b[:cdOff]...)
	for i := range n {
		rec := append([]byte{}, cd...)
		rec[46] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[i%52] // the name follows the fixed 46-byte header
		out = append(out, rec...)
	}
	end := append([]byte{}, b[eocd:]...)
	binary.LittleEndian.PutUint16(end[8:], uint16(n))
	binary.LittleEndian.PutUint16(end[10:], uint16(n))
	binary.LittleEndian.PutUint32(end[12:], cdSize*uint32(n))
	return append(out, end...)
}
