package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DirStore is a Store of plain directories on local disk:
//
//	<root>/images/<key>/meta.json   Meta
//	<root>/images/<key>/image/      what the driver's checkpoint wrote
//	<root>/tmp/<random>/            images being made (Create … Commit)
type DirStore struct {
	images, tmp string
}

var _ Store = (*DirStore)(nil)

// NewDirStore opens (creating) a DirStore at root. Images a killed process
// was still making are removed: their checkpoint never finished.
func NewDirStore(root string) (*DirStore, error) {
	s := &DirStore{images: filepath.Join(root, "images"), tmp: filepath.Join(root, "tmp")}
	if err := os.RemoveAll(s.tmp); err != nil {
		return nil, fmt.Errorf("snapshot: clearing %s: %w", s.tmp, err)
	}
	for _, d := range []string{s.images, s.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshot: creating %s: %w", d, err)
		}
	}
	return s, nil
}

// imageSubdir is where, inside a Create directory, the driver writes.
const imageSubdir = "image"

// ImageDir is the directory inside a Create (or Open) directory that the
// driver checkpoints into (or restores from).
func ImageDir(dir string) string { return filepath.Join(dir, imageSubdir) }

// Create implements Store.
func (s *DirStore) Create(ctx context.Context, key Key) (string, error) {
	if err := key.Validate(); err != nil {
		return "", err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(s.tmp, hex.EncodeToString(b[:]))
	if err := os.MkdirAll(ImageDir(dir), 0o700); err != nil {
		return "", fmt.Errorf("snapshot: creating %s: %w", dir, err)
	}
	return dir, nil
}

// Commit implements Store.
func (s *DirStore) Commit(ctx context.Context, key Key, dir string, meta Meta) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if filepath.Dir(dir) != s.tmp {
		return fmt.Errorf("snapshot: %s is not a directory of this store", dir)
	}
	n, err := dirSize(dir)
	if err != nil {
		return fmt.Errorf("snapshot: sizing %s: %w", dir, err)
	}
	meta.Key, meta.Bytes = key.String(), n
	b, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("snapshot: encoding meta: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), b, 0o600); err != nil {
		return fmt.Errorf("snapshot: writing meta: %w", err)
	}
	dst := filepath.Join(s.images, key.String())
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("snapshot: replacing %s: %w", dst, err)
	}
	if err := os.Rename(dir, dst); err != nil {
		return fmt.Errorf("snapshot: committing %s: %w", key, err)
	}
	return nil
}

// Abort implements Store.
func (s *DirStore) Abort(dir string) {
	if filepath.Dir(dir) == s.tmp {
		_ = os.RemoveAll(dir)
	}
}

// Open implements Store.
func (s *DirStore) Open(ctx context.Context, key Key) (string, Meta, error) {
	if err := key.Validate(); err != nil {
		return "", Meta{}, err
	}
	dir := filepath.Join(s.images, key.String())
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", Meta{}, fmt.Errorf("snapshot %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", Meta{}, fmt.Errorf("snapshot: reading %s: %w", key, err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return "", Meta{}, fmt.Errorf("snapshot: decoding meta of %s: %w", key, err)
	}
	return dir, m, nil
}

// Delete implements Store.
func (s *DirStore) Delete(ctx context.Context, key Key) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(s.images, key.String())); err != nil {
		return fmt.Errorf("snapshot: deleting %s: %w", key, err)
	}
	return nil
}

// List implements Store. Directories whose names are not keys are skipped.
func (s *DirStore) List(ctx context.Context) ([]Key, error) {
	ents, err := os.ReadDir(s.images)
	if err != nil {
		return nil, fmt.Errorf("snapshot: listing: %w", err)
	}
	var out []Key
	for _, e := range ents {
		if k, err := ParseKey(e.Name()); err == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
