package registry

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

func aliasKey(name, alias string) string { return name + "." + alias }

func (r *Registry) aliasNotFound(name, alias string) error {
	return notFoundf("Alias not found: %s", r.cfg.ARNs.Qualified(name, alias))
}

func (r *Registry) getAlias(ctx context.Context, name, alias string) (Alias, error) {
	var a Alias
	_, err := getJSON(ctx, r.s.aliases, aliasKey(name, alias), &a)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Alias{}, r.aliasNotFound(name, alias)
	}
	if err != nil {
		return Alias{}, fmt.Errorf("reading alias %s:%s: %w", name, alias, err)
	}
	return a, nil
}

// checkTarget validates an alias's primary version and routing weights.
func (r *Registry) checkTarget(ctx context.Context, name string, a *Alias) error {
	v := a.FunctionVersion
	if v != Latest && !isVersion(v) {
		return constraint(truncate(v, 64), "functionVersion", `Member must satisfy regular expression pattern: (\$LATEST|[0-9]+)`)
	}
	if isVersion(v) {
		if _, err := r.getVersion(ctx, name, v); err != nil {
			return err
		}
	}
	if len(a.AdditionalVersionWeights) == 0 {
		a.AdditionalVersionWeights = nil
		return nil
	}
	if len(a.AdditionalVersionWeights) > 1 {
		return invalidf("Number of items in AdditionalVersionWeights cannot be greater than 1")
	}
	if v == Latest {
		return invalidf("$LATEST is not supported for an alias pointing to more than 1 version")
	}
	for extra, w := range a.AdditionalVersionWeights {
		if !isVersion(extra) {
			return invalidf("Invalid version %s in AdditionalVersionWeights; it must be a published version number", truncate(extra, 64))
		}
		if extra == v {
			return invalidf("Invalid function version %s. Function version %s is already included in routing configuration.", extra, extra)
		}
		if math.IsNaN(w) || w < 0 || w > 1 {
			return constraint(w, "routingConfig.additionalVersionWeights", "Member must have value between 0.0 and 1.0")
		}
		if _, err := r.getVersion(ctx, name, extra); err != nil {
			return err
		}
	}
	return nil
}

// CreateAlias creates alias (Name) of fn pointing at in.FunctionVersion.
func (r *Registry) CreateAlias(ctx context.Context, fn, alias string, in AliasInput) (Alias, error) {
	name, err := unqualified(fn)
	if err != nil {
		return Alias{}, err
	}
	if err := validateAliasName(alias); err != nil {
		return Alias{}, err
	}
	if in.FunctionVersion == nil || *in.FunctionVersion == "" {
		return Alias{}, constraint("null", "functionVersion", "Member must not be null")
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return Alias{}, err
	}
	a := Alias{FunctionName: name, Name: alias, FunctionVersion: *in.FunctionVersion, RevisionId: uuid.NewString()}
	if in.Description != nil {
		a.Description = *in.Description
	}
	if len(a.Description) > MaxDescriptionLen {
		return Alias{}, constraint("...", "description", "Member must have length less than or equal to 256")
	}
	if in.Weights != nil {
		a.AdditionalVersionWeights = cloneMap(*in.Weights)
	}
	if err := r.checkTarget(ctx, name, &a); err != nil {
		return Alias{}, err
	}
	_, err = r.s.aliases.Create(ctx, aliasKey(name, alias), mustJSON(a))
	r.invalidateAlias(name, alias)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Alias{}, existsf("Alias already exists: %s", r.cfg.ARNs.Qualified(name, alias))
		}
		return Alias{}, fmt.Errorf("creating alias %s:%s: %w", name, alias, err)
	}
	r.log.InfoContext(ctx, "alias created", "function", name, "alias", alias, "version", a.FunctionVersion)
	return a, nil
}

// GetAlias returns one alias.
func (r *Registry) GetAlias(ctx context.Context, fn, alias string) (Alias, error) {
	name, err := unqualified(fn)
	if err != nil {
		return Alias{}, err
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return Alias{}, err
	}
	return r.getAlias(ctx, name, alias)
}

// updateAlias is a compare-and-set read-modify-write of one alias.
func (r *Registry) updateAlias(ctx context.Context, name, alias string, mutate func(a *Alias) error) (Alias, error) {
	defer r.invalidateAlias(name, alias)
	for range casAttempts {
		var a Alias
		rev, err := getJSON(ctx, r.s.aliases, aliasKey(name, alias), &a)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Alias{}, r.aliasNotFound(name, alias)
		} else if err != nil {
			return Alias{}, fmt.Errorf("reading alias %s:%s: %w", name, alias, err)
		}
		if err := mutate(&a); err != nil {
			return Alias{}, err
		}
		if len(a.AdditionalVersionWeights) == 0 {
			a.AdditionalVersionWeights = nil
		}
		a.RevisionId = uuid.NewString()
		_, err = r.s.aliases.Update(ctx, aliasKey(name, alias), mustJSON(a), rev)
		if isRevisionMismatch(err) {
			continue
		}
		if err != nil {
			return Alias{}, fmt.Errorf("writing alias %s:%s: %w", name, alias, err)
		}
		return a, nil
	}
	return Alias{}, conflictf("Too many concurrent updates to alias %s; retry.", alias)
}

// UpdateAlias changes the fields set in in.
func (r *Registry) UpdateAlias(ctx context.Context, fn, alias string, in AliasInput) (Alias, error) {
	name, err := unqualified(fn)
	if err != nil {
		return Alias{}, err
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return Alias{}, err
	}
	a, err := r.updateAlias(ctx, name, alias, func(a *Alias) error {
		if err := checkRevision(in.RevisionId, a.RevisionId); err != nil {
			return err
		}
		if in.FunctionVersion != nil {
			a.FunctionVersion = *in.FunctionVersion
		}
		if in.Description != nil {
			if len(*in.Description) > MaxDescriptionLen {
				return constraint("...", "description", "Member must have length less than or equal to 256")
			}
			a.Description = *in.Description
		}
		if in.Weights != nil {
			a.AdditionalVersionWeights = cloneMap(*in.Weights)
		}
		return r.checkTarget(ctx, name, a)
	})
	if err != nil {
		return Alias{}, err
	}
	r.log.InfoContext(ctx, "alias updated", "function", name, "alias", alias, "version", a.FunctionVersion)
	return a, nil
}

// DeleteAlias deletes one alias.
func (r *Registry) DeleteAlias(ctx context.Context, fn, alias string) error {
	name, err := unqualified(fn)
	if err != nil {
		return err
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return err
	}
	if _, err := r.getAlias(ctx, name, alias); err != nil {
		return err
	}
	err = r.s.aliases.Purge(ctx, aliasKey(name, alias))
	r.invalidateAlias(name, alias)
	if err != nil {
		return fmt.Errorf("deleting alias %s:%s: %w", name, alias, err)
	}
	if err := r.deleteAliasURLConfig(ctx, name, alias); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "alias deleted", "function", name, "alias", alias)
	return nil
}

func (r *Registry) listAllAliases(ctx context.Context, name string) ([]Alias, error) {
	keys, err := keysWithPrefix(ctx, r.s.aliases, name)
	if err != nil {
		return nil, err
	}
	out := make([]Alias, 0, len(keys))
	for _, k := range keys {
		var a Alias
		if _, err := getJSON(ctx, r.s.aliases, k, &a); err == nil {
			out = append(out, a)
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// ListAliases lists the aliases of fn, optionally only those whose primary
// or additional version is version.
func (r *Registry) ListAliases(ctx context.Context, fn, version string, in ListInput) ([]Alias, string, error) {
	name, err := unqualified(fn)
	if err != nil {
		return nil, "", err
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return nil, "", err
	}
	all, err := r.listAllAliases(ctx, name)
	if err != nil {
		return nil, "", err
	}
	byKey := map[string]Alias{}
	var items []listItem
	for _, a := range all {
		if version != "" {
			if _, extra := a.AdditionalVersionWeights[version]; a.FunctionVersion != version && !extra {
				continue
			}
		}
		byKey[a.Name] = a
		items = append(items, listItem{key: a.Name, name: a.Name})
	}
	pageItems, next, err := page(items, in)
	if err != nil {
		return nil, "", err
	}
	out := make([]Alias, 0, len(pageItems))
	for _, it := range pageItems {
		out = append(out, byKey[it.key])
	}
	return out, next, nil
}
