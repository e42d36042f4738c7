package logs_test

import (
	"testing"

	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/logs"
)

func TestParsePattern_Match(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string
		match   []string
		noMatch []string
	}{
		{name: "empty matches all", pattern: "", match: []string{"", "anything"}},
		{name: "blank matches all", pattern: "   ", match: []string{"x"}},
		{name: "single term", pattern: "ERROR", match: []string{"ERROR: x", "[ERROR]", "xERRORx"}, noMatch: []string{"error", "WARN"}},
		{name: "all terms required", pattern: "ERROR Exception", match: []string{"Exception ERROR"}, noMatch: []string{"ERROR only", "Exception only"}},
		{name: "quoted phrase", pattern: `"Task timed out"`, match: []string{"x Task timed out after 3.00 seconds"}, noMatch: []string{"Task out timed"}},
		{name: "escaped quote", pattern: `"say \"hi\""`, match: []string{`they say "hi" there`}, noMatch: []string{"say hi"}},
		{name: "exclusion", pattern: "ERROR -Retrying", match: []string{"ERROR fatal"}, noMatch: []string{"ERROR Retrying now"}},
		{name: "exclusion only", pattern: "-DEBUG", match: []string{"INFO x"}, noMatch: []string{"DEBUG x"}},
		{name: "any of", pattern: "?ERROR ?WARN", match: []string{"ERROR", "WARN"}, noMatch: []string{"INFO"}},
		{name: "any with required", pattern: "START ?a ?b", match: []string{"START b"}, noMatch: []string{"START c", "a b"}},
		{name: "quoted exclusion", pattern: `x -"a b"`, match: []string{"x a", "x b a"}, noMatch: []string{"x a b"}},
		{name: "symbols unquoted", pattern: "RequestId: 42", match: []string{"END RequestId: 42"}, noMatch: []string{"RequestId 42"}},
		{name: "tabs separate", pattern: "a\tb", match: []string{"b a"}, noMatch: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := logs.ParsePattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
			}
			for _, m := range tt.match {
				if !p.Match(m) {
					t.Errorf("%q should match %q", tt.pattern, m)
				}
			}
			for _, m := range tt.noMatch {
				if p.Match(m) {
					t.Errorf("%q should not match %q", tt.pattern, m)
				}
			}
		})
	}
}

func TestParsePattern_Errors(t *testing.T) {
	t.Parallel()
	for _, p := range []string{`"open`, `- x`, `?`, `{ $.level = "ERROR" }`, `[ip, user]`, `%ERR.*%`, `a"b"`, `"a"b`} {
		t.Run(p, func(t *testing.T) {
			_, err := logs.ParsePattern(p)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("ParsePattern(%q) = %v, want invalid argument", p, err)
			}
		})
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"", "ERROR", `"a b" -c ?d ?e`, `"\"x\\"`, "-", "?\"", "{", "% %", "a\tb\n-c"} {
		f.Add(s, "message ERROR a b d")
	}
	f.Fuzz(func(t *testing.T, pattern, msg string) {
		p, err := logs.ParsePattern(pattern)
		if err != nil {
			return
		}
		got := p.Match(msg)
		// Rendering and reparsing is lossless.
		q, err := logs.ParsePattern(p.String())
		if err != nil {
			t.Fatalf("reparsing %q (from %q): %v", p.String(), pattern, err)
		}
		if q.String() != p.String() {
			t.Fatalf("round trip %q -> %q", p.String(), q.String())
		}
		if q.Match(msg) != got {
			t.Fatalf("reparsed pattern disagrees on %q", msg)
		}
	})
}
