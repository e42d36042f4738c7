// Package snapshot keeps SnapStart snapshots: the checkpoint image of a
// sandbox whose function version has run its init and before-snapshot
// hooks, from which a worker restores new execution environments.
//
// A snapshot is named by its Key: function, version and the version's
// RevisionId, so a version deleted and published again under the same
// number never restores the old one's image. A Store holds the images a
// worker can restore from. DirStore keeps them as plain directories under
// the worker's data directory; the chunk store of issue 15 (encrypted,
// content-addressed, lazily fetched) will be another Store, behind the same
// contract: Create/Commit to save a checkpoint, Open to get a local
// directory runsc can restore from, Delete and List to clean up.
//
// Lifecycle of one image:
//
//	Create ──► (driver checkpoints into dir) ──► Commit ──► Open* ──► Delete
//	   └──────────────► Abort (init or checkpoint failed)
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrNotFound reports that a store has no image for a key.
var ErrNotFound = errors.New("snapshot not found")

// Key names one snapshot: a published version of a function at one
// revision.
type Key struct {
	Function, Version, Revision string
}

// KeyOf returns the Key of version of function at revision.
func KeyOf(function, version, revision string) Key {
	return Key{Function: function, Version: version, Revision: revision}
}

// String is the key's text form, function@version@revision; it is also
// the image's directory name, so ParseKey admits nothing a path could
// misuse.
func (k Key) String() string { return k.Function + "@" + k.Version + "@" + k.Revision }

var (
	functionRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	versionRe  = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	revisionRe = regexp.MustCompile(`^[0-9a-f-]{1,64}$`)
)

// Validate checks that every part of k is well formed.
func (k Key) Validate() error {
	if !functionRe.MatchString(k.Function) || !versionRe.MatchString(k.Version) || !revisionRe.MatchString(k.Revision) {
		return fmt.Errorf("snapshot key %q is malformed", k.String())
	}
	return nil
}

// ParseKey parses the text form of a Key.
func ParseKey(s string) (Key, error) {
	parts := strings.Split(s, "@")
	if len(parts) != 3 {
		return Key{}, fmt.Errorf("snapshot key %q is malformed", s)
	}
	k := Key{Function: parts[0], Version: parts[1], Revision: parts[2]}
	return k, k.Validate()
}

// Meta describes an image.
type Meta struct {
	Key string `json:"key"`
	// Driver is the sandbox driver that made the image; only it restores.
	Driver string `json:"driver"`
	// AgentProtocol is the agentproto version of the agent checkpointed
	// inside: a worker speaking another one must not restore it.
	AgentProtocol int       `json:"agentProtocol"`
	Created       time.Time `json:"created"`
	// InitDuration is the init the snapshot saves every restore.
	InitDuration time.Duration `json:"initDurationNs"`
	// Bytes is the image's size on disk.
	Bytes int64 `json:"bytes"`
}

// Store keeps the images a worker restores from. Implementations are safe
// for concurrent use.
type Store interface {
	// Create returns a new, empty directory where the caller writes the
	// image of key. Nothing else sees it until Commit.
	Create(ctx context.Context, key Key) (dir string, err error)
	// Commit makes the image written into dir (from Create) the image of
	// key, replacing any previous one.
	Commit(ctx context.Context, key Key, dir string, meta Meta) error
	// Abort removes a directory from Create that will not be committed.
	Abort(dir string)
	// Open returns a local directory holding key's image, and its Meta.
	// ErrNotFound when there is none.
	Open(ctx context.Context, key Key) (dir string, meta Meta, err error)
	// Delete removes key's image; no image is not an error.
	Delete(ctx context.Context, key Key) error
	// List returns the keys of every image.
	List(ctx context.Context) ([]Key, error)
}
