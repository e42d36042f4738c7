package registry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Runtimes lists the runtime identifiers functions may use. The registry
// takes it as a dependency; internal/runtimes will provide the real list
// (the runtimes it ships bootstraps for), HostRuntimes is the stand-in.
type Runtimes interface {
	// Supported returns runtime identifiers such as "provided.al2023",
	// "python3.11", "nodejs20.x". It must be cheap and safe for concurrent use.
	Supported() []string
}

// StaticRuntimes is a fixed list, for tests and configuration.
type StaticRuntimes []string

// Supported returns the list.
func (s StaticRuntimes) Supported() []string { return s }

// HostRuntimes detects the runtimes whose interpreter exists on this host:
// provided.al2023 and provided.al2 always; python3.X for every
// /usr/bin/python3.X (or /usr/local/bin) found; nodejsNN.x for the major
// version of /usr/bin/node (or /usr/local/bin/node). Detection runs once, on
// first use.
//
// TODO(runtimes owner): move this into internal/runtimes, which knows which
// bootstraps it ships.
type HostRuntimes struct {
	// Dirs are searched for interpreters; nil means /usr/bin, /usr/local/bin.
	Dirs []string

	once sync.Once
	list []string // set once by detect
}

// Supported implements Runtimes.
func (h *HostRuntimes) Supported() []string {
	h.once.Do(func() { h.list = h.detect() })
	return h.list
}

func (h *HostRuntimes) detect() []string {
	dirs := h.Dirs
	if dirs == nil {
		dirs = []string{"/usr/bin", "/usr/local/bin"}
	}
	list := []string{"provided.al2023", "provided.al2"}
	for minor := 8; minor <= 20; minor++ {
		for _, d := range dirs {
			if isExecutable(fmt.Sprintf("%s/python3.%d", d, minor)) {
				list = append(list, fmt.Sprintf("python3.%d", minor))
				break
			}
		}
	}
	for _, d := range dirs {
		node := d + "/node"
		if !isExecutable(node) {
			continue
		}
		if major, ok := nodeMajor(node); ok {
			rt := fmt.Sprintf("nodejs%d.x", major)
			if !slices.Contains(list, rt) {
				list = append(list, rt)
			}
		}
	}
	return list
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// nodeMajor runs `node --version` ("v20.20.2") and returns 20.
func nodeMajor(node string) (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return 0, false
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	return n, err == nil && n > 0
}
