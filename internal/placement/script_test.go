package placement_test

// A tiny data-driven test reader in the style of cockroachdb/datadriven, kept
// here to avoid a dependency for 80 lines.
//
// A script is a sequence of cases separated by blank lines:
//
//	# comments start with '#'
//	command arg key=value ...
//	optional input lines
//	----
//	expected output lines
//
// The harness runs each command and compares its output with the expected
// lines. With -update the expected blocks are rewritten from the actual
// output.

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite expected output in testdata scripts")

type scriptCase struct {
	Line    int      // 1-based line of the command
	Cmd     string   // first word of the command line
	Args    []string // remaining words of the command line
	Input   []string // lines between the command and ----
	Want    string   // expected output
	comment []string // lines before the command (kept on -update)
}

// Arg returns the value of key=value in the command's args, and whether it
// was present. A bare word counts as key with value "".
func (c *scriptCase) Arg(key string) (string, bool) {
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}

func parseScript(t *testing.T, text string) []*scriptCase {
	t.Helper()
	var cases []*scriptCase
	lines := strings.Split(text, "\n")
	var pending []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trim := strings.TrimSpace(l)
		if trim == "" || strings.HasPrefix(trim, "#") {
			pending = append(pending, l)
			continue
		}
		f := strings.Fields(trim)
		c := &scriptCase{Line: i + 1, Cmd: f[0], Args: f[1:], comment: pending}
		pending = nil
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			c.Input = append(c.Input, lines[i])
		}
		if i >= len(lines) {
			t.Fatalf("line %d: %s: missing ----", c.Line, c.Cmd)
		}
		var want []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			want = append(want, lines[i])
		}
		c.Want = strings.Join(want, "\n")
		cases = append(cases, c)
	}
	return cases
}

// runScript runs every case of the script at path through run.
func runScript(t *testing.T, path string, run func(t *testing.T, c *scriptCase) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := parseScript(t, string(b))
	var out strings.Builder
	for _, c := range cases {
		got := strings.TrimRight(run(t, c), "\n")
		if !*update && got != c.Want {
			t.Errorf("%s:%d: %s %s: output differs (-want +got):\n%s", path, c.Line, c.Cmd,
				strings.Join(c.Args, " "), cmp.Diff(c.Want, got))
		}
		for _, l := range c.comment {
			out.WriteString(l + "\n")
		}
		out.WriteString(strings.Join(append([]string{c.Cmd}, c.Args...), " ") + "\n")
		for _, l := range c.Input {
			out.WriteString(l + "\n")
		}
		out.WriteString("----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
		out.WriteString("\n")
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
