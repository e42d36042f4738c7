package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// SnapStart's version lifecycle (spec §8). PublishVersion of a function
// whose SnapStartApplyOn is PublishedVersions stores the version Pending;
// the SnapStart role of a server initialises it in a sandbox, checkpoints
// it and settles it with SetVersionState:
//
//	PublishVersion ──► Pending (Creating) ──► Active, OptimizationStatus On (snapshot made)
//	                                     ├──► Active, Off (the driver cannot checkpoint)
//	                                     └──► Failed (init failed; StateReason says why)
//
// A Pending version refuses invokes with SnapStartNotReadyException, a
// Failed one with SnapStartException; every other version keeps serving.

// Lambda's State values and the reason codes SnapStart uses.
const (
	StatePending = "Pending"
	StateActive  = "Active"
	StateFailed  = "Failed"

	ReasonCodeCreating = "Creating"
	// ApplyOnPublished is SnapStart.ApplyOn for functions that snapshot
	// their published versions.
	ApplyOnPublished = "PublishedVersions"
)

// EffectiveState is c.State, Active when unset.
func (c *FunctionConfig) EffectiveState() string {
	if c.State == "" {
		return StateActive
	}
	return c.State
}

// LastUpdateStatus is the version's LastUpdateStatus, derived from its
// State: configuration updates apply synchronously, so only a version whose
// snapshot is being made is InProgress.
func (c *FunctionConfig) LastUpdateStatus() string {
	switch c.EffectiveState() {
	case StatePending:
		return "InProgress"
	case StateFailed:
		return "Failed"
	}
	return "Successful"
}

// SnapStartError refuses an invoke of a version whose SnapStart snapshot is
// not usable: Pending (SnapStartNotReadyException, 409) or Failed
// (SnapStartException, 400).
type SnapStartError struct {
	State   string
	Message string
}

func (e *SnapStartError) Error() string { return "snapstart: " + e.Message }

// Unwrap gives the class: Conflict while pending, InvalidArgument when failed.
func (e *SnapStartError) Unwrap() error {
	if e.State == StatePending {
		return errdefs.ErrConflict
	}
	return errdefs.ErrInvalidArgument
}

// UserMessage is the text for the API response.
func (e *SnapStartError) UserMessage() string { return e.Message }

// CheckInvocable returns a *SnapStartError when c cannot be invoked yet
// (Pending) or at all (Failed), nil otherwise.
func (c *FunctionConfig) CheckInvocable(qualifiedARN string) error {
	switch c.EffectiveState() {
	case StatePending:
		return &SnapStartError{State: StatePending, Message: "Lambda is initializing your function. It will be ready to invoke shortly: " + qualifiedARN}
	case StateFailed:
		return &SnapStartError{State: StateFailed, Message: fmt.Sprintf("The SnapStart snapshot of %s could not be created: %s", qualifiedARN, c.StateReason)}
	}
	return nil
}

// VersionState is the outcome of a version's snapshot.
type VersionState struct {
	State           string // StateActive or StateFailed
	StateReason     string
	StateReasonCode string
	Optimized       bool // OptimizationStatus On
}

// SetVersionState settles a Pending version: it moves to st if it is still
// the version published with revision (not deleted and re-published since)
// and still Pending. It reports whether it did.
func (r *Registry) SetVersionState(ctx context.Context, name, version, revision string, st VersionState) (bool, error) {
	if st.State != StateActive && st.State != StateFailed {
		return false, fmt.Errorf("setting version state %q: %w", st.State, errdefs.ErrInvalidArgument)
	}
	key := versionKey(name, version)
	for range casAttempts {
		var c FunctionConfig
		rev, err := getJSON(ctx, r.s.versions, key, &c)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading version %s:%s: %w", name, version, err)
		}
		if c.RevisionId != revision || c.EffectiveState() != StatePending {
			return false, nil
		}
		c.State, c.StateReason, c.StateReasonCode, c.SnapStartOptimized = st.State, st.StateReason, st.StateReasonCode, st.Optimized
		_, err = r.s.versions.Update(ctx, key, mustJSON(c), rev)
		r.invalidateVersion(name, version)
		if isRevisionMismatch(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("writing version %s:%s: %w", name, version, err)
		}
		r.log.InfoContext(ctx, "version state settled", "function", name, "version", version, "state", st.State, "optimized", st.Optimized, "reason", st.StateReason)
		return true, nil
	}
	return false, conflictf("Too many concurrent updates to version %s:%s; retry.", name, version)
}

// SnapStartVersions lists every published version whose configuration
// applies SnapStart, whatever its state: the SnapStart role finishes the
// Pending ones (also those a killed server left) and keeps the snapshots of
// the others, deleting any snapshot no version listed here owns.
func (r *Registry) SnapStartVersions(ctx context.Context) ([]FunctionConfig, error) {
	keys, err := keysWithPrefix(ctx, r.s.versions, "")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, err
	}
	var out []FunctionConfig
	for _, k := range keys {
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			continue
		}
		c, err := r.getVersion(ctx, k[:i], k[i+1:])
		if errdefs.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if c.SnapStartApplyOn == ApplyOnPublished {
			out = append(out, c)
		}
	}
	return out, nil
}

// WatchVersions signals on the returned channel (coalesced: one slot)
// each time a published version is created, changed or deleted from now
// on, until ctx ends. The SnapStart role rescans on it.
func (r *Registry) WatchVersions(ctx context.Context) (<-chan struct{}, error) {
	w, err := r.s.versions.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("watching versions: %w", err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		forEachUpdate(ctx, w, func(e jetstream.KeyValueEntry) bool {
			if e == nil {
				return true
			}
			select {
			case out <- struct{}{}:
			default:
			}
			return true
		})
	}()
	return out, nil
}
