package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

func versionKey(name, version string) string { return name + "." + version }

func (r *Registry) getVersion(ctx context.Context, name, version string) (FunctionConfig, error) {
	var c FunctionConfig
	_, err := getJSON(ctx, r.s.versions, versionKey(name, version), &c)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return FunctionConfig{}, notFoundf("Function not found: %s", r.cfg.ARNs.Qualified(name, version))
	}
	if err != nil {
		return FunctionConfig{}, fmt.Errorf("reading version %s:%s: %w", name, version, err)
	}
	return c, nil
}

// PublishVersion snapshots $LATEST into the next version number. When
// nothing changed since the newest published version, that version is
// returned and nothing is created.
func (r *Registry) PublishVersion(ctx context.Context, fn string, in PublishInput) (FunctionConfig, error) {
	name, err := unqualified(fn)
	if err != nil {
		return FunctionConfig{}, err
	}
	for range casAttempts {
		rec, rev, err := r.loadFunction(ctx, name)
		if err != nil {
			return FunctionConfig{}, err
		}
		if err := checkRevision(in.RevisionId, rec.Latest.RevisionId); err != nil {
			return FunctionConfig{}, err
		}
		if in.CodeSha256 != "" && in.CodeSha256 != rec.Latest.CodeSha256 {
			return FunctionConfig{}, invalidf("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the CodeSHA256 in $LATEST.", truncate(in.CodeSha256, 64), rec.Latest.CodeSha256)
		}
		if rec.PublishedVersion > 0 && rec.PublishedFrom == rec.Latest.RevisionId {
			v, err := r.getVersion(ctx, name, strconv.Itoa(rec.PublishedVersion))
			if err == nil {
				return v, nil
			}
		}
		n := rec.VersionCounter + 1
		rec.VersionCounter, rec.PublishedVersion, rec.PublishedFrom = n, n, rec.Latest.RevisionId
		_, err = r.s.functions.Update(ctx, name, mustJSON(rec), rev)
		r.invalidateFunction(name)
		if isRevisionMismatch(err) {
			continue
		} else if err != nil {
			return FunctionConfig{}, fmt.Errorf("publishing %s: %w", name, err)
		}
		v := rec.Latest
		v.Version = strconv.Itoa(n)
		v.RevisionId = uuid.NewString()
		v.LastModified = r.cfg.Clock.Now().UTC()
		if in.Description != "" {
			v.Description = in.Description
		}
		if v.SnapStartApplyOn == ApplyOnPublished {
			// The snapshot is made after this returns (the SnapStart
			// role); until then the version refuses invokes.
			v.State, v.StateReason, v.StateReasonCode = StatePending, "The function is being created.", ReasonCodeCreating
		}
		_, err = r.s.versions.Create(ctx, versionKey(name, v.Version), mustJSON(v))
		r.invalidateVersion(name, v.Version)
		if err != nil {
			return FunctionConfig{}, fmt.Errorf("storing version %s:%s: %w", name, v.Version, err)
		}
		r.log.InfoContext(ctx, "version published", "function", name, "version", v.Version)
		return v, nil
	}
	return FunctionConfig{}, conflictf("The operation cannot be performed at this time. Too many concurrent updates to function %s; retry.", name)
}

// ListVersions lists $LATEST followed by every published version in
// ascending order.
func (r *Registry) ListVersions(ctx context.Context, fn string, in ListInput) ([]FunctionConfig, string, error) {
	name, err := unqualified(fn)
	if err != nil {
		return nil, "", err
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return nil, "", err
	}
	keys, err := keysWithPrefix(ctx, r.s.versions, name)
	if err != nil {
		return nil, "", err
	}
	items := []listItem{{key: itemKey(name, ""), name: name}}
	for _, k := range keys {
		ver := strings.TrimPrefix(k, name+".")
		items = append(items, listItem{key: itemKey(name, ver), name: name, ver: ver})
	}
	pageItems, next, err := page(items, in)
	if err != nil {
		return nil, "", err
	}
	out := make([]FunctionConfig, 0, len(pageItems))
	for _, it := range pageItems {
		c, _, err := r.config(ctx, FunctionRef{Name: name, Qualifier: it.ver})
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, c)
	}
	return out, next, nil
}

// deleteVersion deletes one published version. A version an alias points
// to cannot be deleted; a version that only receives an alias's additional
// weight is dropped from that alias's routing.
func (r *Registry) deleteVersion(ctx context.Context, name, version string) error {
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return err
	}
	if _, err := r.getVersion(ctx, name, version); err != nil {
		return err
	}
	aliases, err := r.listAllAliases(ctx, name)
	if err != nil {
		return err
	}
	for _, a := range aliases {
		if a.FunctionVersion == version {
			return conflictf("Unable to delete version because the following aliases reference it: [%s]", a.Name)
		}
	}
	for _, a := range aliases {
		if _, ok := a.AdditionalVersionWeights[version]; ok {
			_, err := r.updateAlias(ctx, name, a.Name, func(a *Alias) error {
				delete(a.AdditionalVersionWeights, version)
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	err = r.s.versions.Purge(ctx, versionKey(name, version))
	r.invalidateVersion(name, version)
	if err != nil {
		return fmt.Errorf("deleting version %s:%s: %w", name, version, err)
	}
	r.log.InfoContext(ctx, "version deleted", "function", name, "version", version)
	return nil
}
