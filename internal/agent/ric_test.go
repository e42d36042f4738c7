package agent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ricDir returns a directory with node_modules/aws-lambda-ric installed,
// installing it with npm into the user cache on first use. The package
// builds aws-lambda-cpp and curl from source (cmake, autoconf, automake,
// libtool, make, g++), so the first install takes minutes.
func ricDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("IGNIS_AWS_LAMBDA_RIC_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("no cache dir for aws-lambda-ric: %v", err)
		}
		dir = filepath.Join(cache, "ignis-test", "aws-lambda-ric")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "aws-lambda-ric", "package.json")); err == nil {
		return dir
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm not installed")
	}
	for _, tool := range []string{"cmake", "make", "g++", "autoconf", "automake", "libtoolize"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("aws-lambda-ric needs %s to build its native addon (apt-get install cmake autoconf automake libtool g++ make)", tool)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--prefix", dir, "aws-lambda-ric")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		t.Skipf("npm install aws-lambda-ric failed: %v\n%s", err, tail)
	}
	return dir
}

// TestAgent_AWSLambdaRIC runs AWS's own Node runtime interface client (a
// Runtime API client no one here wrote) as a provided runtime's bootstrap.
func TestAgent_AWSLambdaRIC(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and builds aws-lambda-ric")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir := ricDir(t)
	bin := filepath.Join(dir, "node_modules", ".bin", "aws-lambda-ric")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("aws-lambda-ric installed without its bin: %v", err)
	}
	f := newFn(t, "provided.al2023", "index.handler")
	f.write(t, "bootstrap", "#!/bin/sh\nexec "+node+" "+bin+" \"$_HANDLER\"\n", 0o755)
	f.write(t, "index.mjs", `export const handler = async (event, context) => {
  if (event.fail) throw new RangeError("ric fail");
  console.log("ric log", context.awsRequestId);
  return { echo: event, id: context.awsRequestId, fn: context.functionName, left: context.getRemainingTimeInMillis() > 0 };
};
`, 0o644)
	p := f.start(t)
	p.initOK(f.init())
	id, res := p.invoke(`{"a":"b"}`)
	m := decode(t, res.Body)
	if res.Error || m["id"] != id || m["fn"] != f.name || m["left"] != true || m["echo"].(map[string]any)["a"] != "b" {
		t.Fatalf("result = %+v %s", res, res.Body)
	}
	if got := p.logsUntil("", id, "ric log "+id, 5*time.Second); !strings.Contains(got, "ric log "+id) {
		t.Fatalf("logs for %s = %q", id, got)
	}
	_, res = p.invoke(`{"fail":true}`)
	if em := decode(t, res.Body); !res.Error || em["errorType"] != "RangeError" || em["errorMessage"] != "ric fail" {
		t.Fatalf("error = %+v %s", res, res.Body)
	}
	p.shutdown()
}
