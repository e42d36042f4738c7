package worker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/ignis-run/ignis/internal/codepkg"
	"github.com/ignis-run/ignis/internal/errdefs"
)

// CodeSource yields function code packages (zip files) by their CodeSha256
// (base64 of the SHA-256 of the zip, as Lambda reports it).
type CodeSource interface {
	OpenCode(ctx context.Context, codeSha256 string) (io.ReadCloser, int64, error)
}

// codeCache unpacks each code package once into a content-addressed
// directory shared read-only by every sandbox of that code.
type codeCache struct {
	dir string
	src CodeSource

	mu      sync.Mutex
	pending map[string]*codeFetch // guarded by mu
	// fetches tracks the fetch goroutines, which outlive a caller that
	// stops waiting (a prefetch at shutdown, a cancelled create).
	fetches sync.WaitGroup
}

type codeFetch struct {
	done chan struct{}
	path string
	err  error
}

func newCodeCache(dir string, src CodeSource) (*codeCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating code cache %s: %w", dir, err)
	}
	return &codeCache{dir: dir, src: src, pending: make(map[string]*codeFetch)}, nil
}

// Get returns the directory holding the unpacked code, fetching it if needed.
// Concurrent calls for the same code share one fetch.
func (c *codeCache) Get(ctx context.Context, codeSha256 string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(codeSha256)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("code sha256 %q: %w", codeSha256, errdefs.ErrInvalidArgument)
	}
	key := hex.EncodeToString(raw)
	final := filepath.Join(c.dir, key)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}

	c.mu.Lock()
	f, ok := c.pending[key]
	if !ok {
		f = &codeFetch{done: make(chan struct{})}
		c.pending[key] = f
		c.fetches.Go(func() {
			// Detached from the caller's ctx: other callers may be waiting too.
			f.path, f.err = c.fetch(context.WithoutCancel(ctx), codeSha256, key, final)
			c.mu.Lock()
			delete(c.pending, key)
			c.mu.Unlock()
			close(f.done)
		})
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.path, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *codeCache) fetch(ctx context.Context, codeSha256, key, final string) (string, error) {
	rc, size, err := c.src.OpenCode(ctx, codeSha256)
	if err != nil {
		return "", fmt.Errorf("fetching code %s: %w", codeSha256, err)
	}
	defer rc.Close()
	buf := bytes.NewBuffer(make([]byte, 0, max(size, 0)))
	if _, err := io.Copy(buf, rc); err != nil {
		return "", fmt.Errorf("reading code %s: %w", codeSha256, err)
	}
	tmp, err := os.MkdirTemp(c.dir, ".unpack-"+key[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("unpacking code: %w", err)
	}
	if err := unzip(buf.Bytes(), tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpacking code %s: %w", codeSha256, err)
	}
	// Sandboxes run as an unprivileged uid: the tree must be world-readable.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(final); statErr == nil {
			return final, nil // another process won the race
		}
		return "", fmt.Errorf("installing code %s: %w", codeSha256, err)
	}
	return final, nil
}

// wait returns once no fetch is under way (or ctx is done), so that a
// closing worker leaves no writer behind in its data directory.
func (c *codeCache) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		c.fetches.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// unzip unpacks a zip the registry has validated, deciding again with the
// same code (codepkg) rather than trusting it: the cache must never trust
// its input. A refused package is an error of class
// errdefs.ErrInvalidArgument; dst then holds part of it.
func unzip(data []byte, dst string) error {
	p, err := codepkg.Open(data)
	if err != nil {
		return err
	}
	_, err = p.Unpack(dst)
	return err
}
