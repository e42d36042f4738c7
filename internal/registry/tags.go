package registry

import (
	"context"
	"maps"
	"reflect"

	"github.com/google/uuid"

	"github.com/ignis-run/ignis/internal/fnspec"
)

// functionFromARN parses the resource ARN of the tagging API (an
// unqualified function ARN).
func functionFromARN(arn string) (string, error) {
	ref, err := ParseFunctionRef(arn, "")
	if err != nil {
		return "", err
	}
	if ref.Qualifier != "" {
		return "", invalidf("Tags are supported on functions only, not on %s", truncate(arn, 200))
	}
	return ref.Name, nil
}

// ListTags returns the tags of the function named by arn.
func (r *Registry) ListTags(ctx context.Context, arn string) (map[string]string, error) {
	name, err := functionFromARN(arn)
	if err != nil {
		return nil, err
	}
	rec, _, err := r.loadFunction(ctx, name)
	if err != nil {
		return nil, err
	}
	if rec.Tags == nil {
		return map[string]string{}, nil
	}
	return rec.Tags, nil
}

// TagResource adds or replaces tags.
func (r *Registry) TagResource(ctx context.Context, arn string, tags map[string]string) error {
	name, err := functionFromARN(arn)
	if err != nil {
		return err
	}
	_, err = r.updateFunction(ctx, name, func(rec *functionRecord) error {
		merged := maps.Clone(rec.Tags)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, tags)
		if err := validateTags(merged); err != nil {
			return err
		}
		rec.Tags = merged
		applyNetworkTags(rec)
		return nil
	})
	return err
}

// applyNetworkTags makes $LATEST's network policy follow the tags. A
// change is a new revision of $LATEST, so that its warm sandboxes, made
// under the old policy, are not reused.
func applyNetworkTags(rec *functionRecord) {
	n, err := fnspec.NetworkFromTags(rec.Tags)
	if err != nil || reflect.DeepEqual(n, rec.Latest.Network) {
		return // the tags were validated: err is nil
	}
	rec.Latest.Network = n
	rec.Latest.RevisionId = uuid.NewString()
}

// UntagResource removes tags by key.
func (r *Registry) UntagResource(ctx context.Context, arn string, keys []string) error {
	name, err := functionFromARN(arn)
	if err != nil {
		return err
	}
	_, err = r.updateFunction(ctx, name, func(rec *functionRecord) error {
		for _, k := range keys {
			delete(rec.Tags, k)
		}
		applyNetworkTags(rec)
		return nil
	})
	return err
}
