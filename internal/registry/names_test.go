package registry

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/errdefs"
)

func TestParseFunctionRef_Forms(t *testing.T) {
	tests := []struct {
		name, in, qualifier string
		want                FunctionRef
		wantErr             bool
	}{
		{name: "plain", in: "fn", want: FunctionRef{Name: "fn"}},
		{name: "qualified", in: "fn:3", want: FunctionRef{Name: "fn", Qualifier: "3"}},
		{name: "latest", in: "fn:$LATEST", want: FunctionRef{Name: "fn", Qualifier: "$LATEST"}},
		{name: "partial arn", in: "000000000000:function:fn", want: FunctionRef{Name: "fn"}},
		{name: "partial arn alias", in: "000000000000:function:fn:live", want: FunctionRef{Name: "fn", Qualifier: "live"}},
		{name: "full arn", in: "arn:aws:lambda:us-east-1:000000000000:function:fn", want: FunctionRef{Name: "fn"}},
		{name: "full arn qualified", in: "arn:aws:lambda:eu-west-1:123456789012:function:fn:7", want: FunctionRef{Name: "fn", Qualifier: "7"}},
		{name: "separate qualifier", in: "fn", qualifier: "live", want: FunctionRef{Name: "fn", Qualifier: "live"}},
		{name: "same qualifier twice", in: "fn:live", qualifier: "live", want: FunctionRef{Name: "fn", Qualifier: "live"}},
		{name: "disagreeing qualifiers", in: "fn:1", qualifier: "2", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "bad chars", in: "bad name!", wantErr: true},
		{name: "too long", in: string(make([]byte, 65)), wantErr: true},
		{name: "empty qualifier", in: "fn:", wantErr: true},
		{name: "bad account", in: "12:function:fn", wantErr: true},
		{name: "not lambda", in: "arn:aws:s3:us-east-1:000000000000:function:fn", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFunctionRef(tt.in, tt.qualifier)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("ParseFunctionRef(%q) = %+v, %v; want ErrInvalidArgument", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseFunctionRef(f *testing.F) {
	for _, s := range []string{"fn", "fn:1", "000000000000:function:fn:live", "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST", "::::", "arn:aws:lambda"} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, s, q string) {
		ref, err := ParseFunctionRef(s, q)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !functionNameRE.MatchString(ref.Name) {
			t.Fatalf("accepted bad name %q from %q", ref.Name, s)
		}
		if ref.Qualifier != "" && validateQualifier(ref.Qualifier) != nil {
			t.Fatalf("accepted bad qualifier %q", ref.Qualifier)
		}
	})
}

func TestHostRuntimes_Supported_DetectsInterpreters(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"python3.11", "python3.12"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A non-executable file is not an interpreter.
	os.WriteFile(filepath.Join(dir, "python3.9"), []byte(""), 0o644)
	node := "#!/bin/sh\necho v22.1.0\n"
	if err := os.WriteFile(filepath.Join(dir, "node"), []byte(node), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &HostRuntimes{Dirs: []string{dir}}
	want := []string{"provided.al2023", "provided.al2", "python3.11", "python3.12", "nodejs22.x"}
	if diff := cmp.Diff(want, h.Supported()); diff != "" {
		t.Errorf("Supported (-want +got):\n%s", diff)
	}
}

func TestHostRuntimes_Supported_ThisHost(t *testing.T) {
	got := (&HostRuntimes{}).Supported()
	for _, rt := range []string{"provided.al2023", "provided.al2"} {
		if !slices.Contains(got, rt) {
			t.Errorf("%s missing from %v", rt, got)
		}
	}
	if _, err := os.Stat("/usr/bin/python3.11"); err == nil && !slices.Contains(got, "python3.11") {
		t.Errorf("python3.11 exists but is not in %v", got)
	}
}
