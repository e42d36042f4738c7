package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The benchmark functions' sources. The Go echo is compiled on the fly in a
// throwaway module that pins the aws-lambda-go version of the Ignis module
// (a test keeps lambdaGoVersion and lambdaGoSum in step with go.mod/go.sum).
//
//go:embed fn/goecho/main.go fn/pyecho/app.py fn/nodeecho/index.mjs
var fnSources embed.FS

const (
	lambdaGoModule  = "github.com/aws/aws-lambda-go"
	lambdaGoVersion = "v1.55.1"
	lambdaGoSum     = "github.com/aws/aws-lambda-go v1.55.1 h1:We2cCp4BwqqH/JW+bEEo1FhgG71rslvjfi4y7KmlrR0=\n" +
		"github.com/aws/aws-lambda-go v1.55.1/go.mod h1:V+NzkHNR6vBC8C1PDloqSLE+7jYWFiPvJJFiCiTm8nE=\n"
)

// Runtime names of the benchmark functions.
const (
	RuntimeGo     = "go"
	RuntimePython = "python"
	RuntimeNode   = "node"
)

// function is one deployable benchmark function.
type function struct {
	kind    string // RuntimeGo, RuntimePython, RuntimeNode
	runtime string // Lambda runtime identifier
	handler string
	files   map[string][]byte // zip content: name → bytes
	zip     []byte
}

// buildFunctions prepares the functions of kinds, compiling the Go echo into
// workDir.
func buildFunctions(ctx context.Context, workDir string, kinds []string) ([]*function, error) {
	var out []*function
	for _, k := range kinds {
		f := &function{kind: k, files: map[string][]byte{}}
		switch k {
		case RuntimeGo:
			bin, err := buildGoEcho(ctx, workDir)
			if err != nil {
				return nil, err
			}
			f.runtime, f.handler, f.files["bootstrap"] = "provided.al2023", "bootstrap", bin
		case RuntimePython:
			src, _ := fnSources.ReadFile("fn/pyecho/app.py")
			f.runtime, f.handler, f.files["app.py"] = "python3.11", "app.handler", src
		case RuntimeNode:
			src, _ := fnSources.ReadFile("fn/nodeecho/index.mjs")
			f.runtime, f.handler, f.files["index.mjs"] = "nodejs20.x", "index.handler", src
		default:
			return nil, fmt.Errorf("unknown benchmark runtime %q (want go, python or node)", k)
		}
		z, err := zipFiles(f.files)
		if err != nil {
			return nil, err
		}
		f.zip = z
		out = append(out, f)
	}
	return out, nil
}

// buildGoEcho compiles fn/goecho as a static linux binary.
func buildGoEcho(ctx context.Context, workDir string) ([]byte, error) {
	dir := filepath.Join(workDir, "goecho-src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("building the go echo: %w", err)
	}
	src, _ := fnSources.ReadFile("fn/goecho/main.go")
	files := map[string]string{
		"main.go": string(src),
		"go.mod":  "module ignisbench/goecho\n\ngo 1.22\n\nrequire " + lambdaGoModule + " " + lambdaGoVersion + "\n",
		"go.sum":  lambdaGoSum,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("building the go echo: %w", err)
		}
	}
	out := filepath.Join(workDir, "goecho")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the go echo (go build needs the Go toolchain and %s %s in the module cache or proxy): %w: %s",
			lambdaGoModule, lambdaGoVersion, err, strings.TrimSpace(string(b)))
	}
	return os.ReadFile(out)
}

// zipFiles packs files into a deployment zip; a bootstrap is executable.
func zipFiles(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		mode := os.FileMode(0o644)
		if name == "bootstrap" {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("zipping %s: %w", name, err)
		}
		if _, err := w.Write(content); err != nil {
			return nil, fmt.Errorf("zipping %s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zipping: %w", err)
	}
	return buf.Bytes(), nil
}
