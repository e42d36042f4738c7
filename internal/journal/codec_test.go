package journal_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/journal"
)

var update = flag.Bool("update", false, "write testdata samples of the current entry versions")

var at = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// samples are the expected decodings of every file in testdata/, keyed by
// file name. Add a sample for each new type or version; never remove one.
func samples() map[string]journal.Entry {
	return map[string]journal.Entry{
		"SandboxCreating-v1.bin": &journal.SandboxCreating{SandboxID: "sb-1", Function: "fn", Key: "fn:1#abc", WorkerID: "w1", MemoryMB: 128, At: at},
		"SandboxReady-v1.bin": &journal.SandboxReady{SandboxID: "sb-1", Function: "fn", Key: "fn:1#abc", WorkerID: "w1", MemoryMB: 128,
			Handle: json.RawMessage(`{"driver":"jail","id":"sb-1","created":"2025-03-04T05:06:07Z","data":{"pid":42}}`), At: at},
		"SandboxDestroyed-v1.bin": &journal.SandboxDestroyed{SandboxID: "sb-1", Reason: journal.ReasonIdleExpired, At: at},
		"Checkpoint-v1.bin": &journal.Checkpoint{
			Creating: []journal.SandboxCreating{{SandboxID: "sb-2", Function: "g", Key: "g:$LATEST#1", WorkerID: "w2", MemoryMB: 256, At: at}},
			Ready:    []journal.SandboxReady{{SandboxID: "sb-1", Function: "fn", Key: "fn:1#abc", WorkerID: "w1", MemoryMB: 128, Handle: json.RawMessage(`{"id":"sb-1"}`), At: at}},
			At:       at,
		},
		// A type from the future: must decode as Unknown, forever.
		"Type999-v1.bin": &journal.Unknown{T: 999, Version: 1, Body: []byte(`{"future":true}`)},
	}
}

func sampleName(e journal.Entry) string {
	b, _ := journal.Encode(e)
	return fmt.Sprintf("%s-v%d.bin", e.Type(), b[3])
}

// TestDecode_Testdata decodes every sample ever written. With -update it
// first writes samples of the current versions (existing files with the
// same name are rewritten; files of old versions stay untouched).
func TestDecode_Testdata(t *testing.T) {
	want := samples()
	if *update {
		for name, e := range want {
			if name != sampleName(e) && !journal.IsUnknown(e) {
				continue // an old version: its file is history
			}
			b, err := journal.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob("testdata/*.bin")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := journal.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expected value for %s in samples(): never delete a sample", name)
			}
			if d := cmp.Diff(w, got); d != "" {
				t.Fatalf("decoded (-want +got):\n%s", d)
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("sample %s has no testdata file; run with -update", name)
		}
	}
	// Every known type must have a sample of its current version.
	for typ := journal.Type(1); !strings.HasPrefix(typ.String(), "Type("); typ++ {
		found := false
		for name, e := range want {
			if e.Type() == typ && name == sampleName(e) {
				found = true
			}
		}
		if !found {
			t.Errorf("type %s has no sample of its current version", typ)
		}
	}
}

func TestEncodeDecode_RoundTrip(t *testing.T) {
	for name, e := range samples() {
		t.Run(name, func(t *testing.T) {
			b, err := journal.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := journal.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(e, got); d != "" {
				t.Fatalf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecode_Errors(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		unknown bool
	}{
		{name: "short", in: []byte{1, 0}},
		{name: "format 2", in: []byte{2, 0, 1, 1, '{', '}'}},
		{name: "type 0", in: []byte{1, 0, 0, 1, '{', '}'}},
		{name: "version 0", in: []byte{1, 0, 1, 0, '{', '}'}},
		{name: "bad json", in: []byte{1, 0, 1, 1, '{'}},
		{name: "newer version of a known type", in: []byte{1, 0, 1, 9, '{', '}'}, unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := journal.Decode(tt.in)
			if tt.unknown {
				if err != nil || !journal.IsUnknown(e) {
					t.Fatalf("Decode = %v, %v; want Unknown", e, err)
				}
				return
			}
			if !errors.Is(err, journal.ErrFormat) {
				t.Fatalf("Decode error = %v, want ErrFormat", err)
			}
		})
	}
}

func TestTable_Apply(t *testing.T) {
	c1 := journal.SandboxCreating{SandboxID: "a", Key: "k", WorkerID: "w1", MemoryMB: 128, At: at}
	r1 := journal.SandboxReady{SandboxID: "a", Key: "k", WorkerID: "w1", MemoryMB: 128, At: at}
	c2 := journal.SandboxCreating{SandboxID: "b", Key: "k", WorkerID: "w2", MemoryMB: 128, At: at}
	r3 := journal.SandboxReady{SandboxID: "c", Key: "k", WorkerID: "w2", MemoryMB: 128, At: at}
	tests := []struct {
		name    string
		entries []journal.Entry
		want    *journal.Checkpoint
	}{
		{name: "empty", want: &journal.Checkpoint{At: at}},
		{name: "creating then ready", entries: []journal.Entry{&c1, &r1}, want: &journal.Checkpoint{Ready: []journal.SandboxReady{r1}, At: at}},
		{name: "creating only", entries: []journal.Entry{&c1, &c2}, want: &journal.Checkpoint{Creating: []journal.SandboxCreating{c1, c2}, At: at}},
		{name: "destroyed", entries: []journal.Entry{&c1, &r1, &c2, &journal.SandboxDestroyed{SandboxID: "a"}, &journal.SandboxDestroyed{SandboxID: "b"}}, want: &journal.Checkpoint{At: at}},
		{name: "duplicate entries are harmless", entries: []journal.Entry{&c1, &r1, &r1, &c1}, want: &journal.Checkpoint{Ready: []journal.SandboxReady{r1}, At: at}},
		{name: "checkpoint replaces", entries: []journal.Entry{&c1, &r1, &journal.Checkpoint{Ready: []journal.SandboxReady{r3}}, &c2},
			want: &journal.Checkpoint{Creating: []journal.SandboxCreating{c2}, Ready: []journal.SandboxReady{r3}, At: at}},
		{name: "unknown ignored", entries: []journal.Entry{&r1, &journal.Unknown{T: 77, Version: 1}}, want: &journal.Checkpoint{Ready: []journal.SandboxReady{r1}, At: at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := journal.NewTable()
			for _, e := range tt.entries {
				tab.Apply(e)
			}
			if d := cmp.Diff(tt.want, tab.Checkpoint(at)); d != "" {
				t.Fatalf("table (-want +got):\n%s", d)
			}
		})
	}
}
