package registry

// Asynchronous invocation settings per function and qualifier
// (Put/Get/Update/Delete/ListFunctionEventInvokeConfig, spec §1.4), kept
// in their own bucket so they can be added without touching the function
// record. Each record remembers the Created time of the function it was
// written for: after DeleteFunction and a re-create under the same name the
// old record is treated as absent (and purged on the next write).

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Async invoke limits and defaults (spec §4).
const (
	DefaultMaximumRetryAttempts     = 2
	MaxMaximumRetryAttempts         = 2
	DefaultMaximumEventAgeInSeconds = 21600
	MinMaximumEventAgeInSeconds     = 60
	MaxMaximumEventAgeInSeconds     = 21600

	bucketEventConfigs = "ignis_event_invoke_configs"
	// latestKey stands for $LATEST in keys ('$' is not a valid KV key
	// character, '=' is not valid in qualifiers).
	latestKey = "=LATEST"
)

// EventInvokeConfig is a function's (at one qualifier) asynchronous
// invocation configuration. Destinations are ARNs, "" when unset.
type EventInvokeConfig struct {
	FunctionName string `json:"functionName"`
	// Qualifier is $LATEST, a version number or an alias name.
	Qualifier                string    `json:"qualifier"`
	MaximumRetryAttempts     int       `json:"maximumRetryAttempts"`
	MaximumEventAgeInSeconds int       `json:"maximumEventAgeInSeconds"`
	OnSuccess                string    `json:"onSuccess,omitempty"`
	OnFailure                string    `json:"onFailure,omitempty"`
	LastModified             time.Time `json:"lastModified"`
	// FunctionCreated is the Created time of the function the record
	// belongs to.
	FunctionCreated time.Time `json:"functionCreated"`
}

// EventInvokeConfigInput is the body of Put (nil: default) and Update
// (nil: unchanged). A destination set to "" clears it.
type EventInvokeConfigInput struct {
	MaximumRetryAttempts     *int
	MaximumEventAgeInSeconds *int
	OnSuccess                *string
	OnFailure                *string
}

// DefaultEventInvokeConfig is what applies to name at qualifier when no
// configuration was stored.
func DefaultEventInvokeConfig(name, qualifier string) EventInvokeConfig {
	return EventInvokeConfig{
		FunctionName:             name,
		Qualifier:                qualifier,
		MaximumRetryAttempts:     DefaultMaximumRetryAttempts,
		MaximumEventAgeInSeconds: DefaultMaximumEventAgeInSeconds,
	}
}

// destinationRE is the model's destination ARN pattern.
var destinationRE = regexp.MustCompile(`^$|^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$`)

func eventConfigKey(name, qualifier string) string {
	if qualifier == Latest {
		qualifier = latestKey
	}
	return name + "." + qualifier
}

// eventConfigs returns the bucket, creating it when create is set; nil
// without error when it does not exist yet and create is false.
func (r *Registry) eventConfigs(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	kv, err := r.cfg.JetStream.KeyValue(ctx, bucketEventConfigs)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("opening bucket %s: %w", bucketEventConfigs, err)
	}
	if !create {
		return nil, nil
	}
	kv, err = r.cfg.JetStream.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucketEventConfigs,
		Description: "Ignis asynchronous invocation configs",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    r.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", bucketEventConfigs, err)
	}
	return kv, nil
}

// eventTarget parses fn and qualifier and checks that the function and the
// qualified version or alias exist. The qualifier defaults to $LATEST.
func (r *Registry) eventTarget(ctx context.Context, fn, qualifier string) (FunctionRef, *functionRecord, error) {
	ref, err := ParseFunctionRef(fn, qualifier)
	if err != nil {
		return FunctionRef{}, nil, err
	}
	if ref.Qualifier == "" {
		ref.Qualifier = Latest
	}
	_, rec, err := r.config(ctx, ref)
	if err != nil {
		return FunctionRef{}, nil, err
	}
	return ref, rec, nil
}

// loadEventConfig returns the stored record and its revision; found is
// false when there is none (or only a stale one of a deleted function).
func (r *Registry) loadEventConfig(ctx context.Context, kv jetstream.KeyValue, ref FunctionRef, rec *functionRecord) (c EventInvokeConfig, rev uint64, found bool, err error) {
	if kv == nil {
		return EventInvokeConfig{}, 0, false, nil
	}
	rev, err = getJSON(ctx, kv, eventConfigKey(ref.Name, ref.Qualifier), &c)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return EventInvokeConfig{}, 0, false, nil
	}
	if err != nil {
		return EventInvokeConfig{}, 0, false, fmt.Errorf("reading event invoke config of %s:%s: %w", ref.Name, ref.Qualifier, err)
	}
	if !c.FunctionCreated.Equal(rec.Created) {
		return EventInvokeConfig{}, rev, false, nil
	}
	return c, rev, true, nil
}

func (r *Registry) eventConfigNotFound(ref FunctionRef) error {
	return notFoundf("The function %s doesn't have an EventInvokeConfig", r.cfg.ARNs.Qualified(ref.Name, ref.Qualifier))
}

// validateEventConfig checks ranges and destinations of c.
func (r *Registry) validateEventConfig(c *EventInvokeConfig) error {
	if c.MaximumRetryAttempts < 0 {
		return constraint(c.MaximumRetryAttempts, "maximumRetryAttempts", "Member must have value greater than or equal to 0")
	}
	if c.MaximumRetryAttempts > MaxMaximumRetryAttempts {
		return constraint(c.MaximumRetryAttempts, "maximumRetryAttempts", "Member must have value less than or equal to 2")
	}
	if c.MaximumEventAgeInSeconds < MinMaximumEventAgeInSeconds {
		return constraint(c.MaximumEventAgeInSeconds, "maximumEventAgeInSeconds", "Member must have value greater than or equal to 60")
	}
	if c.MaximumEventAgeInSeconds > MaxMaximumEventAgeInSeconds {
		return constraint(c.MaximumEventAgeInSeconds, "maximumEventAgeInSeconds", "Member must have value less than or equal to 21600")
	}
	for _, d := range []struct{ field, arn string }{
		{"destinationConfig.onSuccess.destination", c.OnSuccess},
		{"destinationConfig.onFailure.destination", c.OnFailure},
	} {
		if d.arn == "" {
			continue
		}
		if len(d.arn) > 350 || !destinationRE.MatchString(d.arn) {
			return constraint(truncate(d.arn, 200), d.field, `Member must satisfy regular expression pattern: ^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)`)
		}
		parts := strings.Split(d.arn, ":")
		switch parts[2] {
		case "lambda":
			ref, err := ParseFunctionRef(d.arn, "")
			if err != nil {
				return invalidf("The destination ARN %s is invalid.", d.arn)
			}
			if ref.Name == c.FunctionName {
				return invalidf("You can't specify the function %s as a destination for itself.", c.FunctionName)
			}
		case "sqs", "sns":
			if len(parts) != 6 || !queueNameRE.MatchString(parts[5]) {
				return invalidf("The destination ARN %s is invalid.", d.arn)
			}
		default:
			return invalidf("The destination ARN %s is not supported by Ignis; use a function, SQS queue or SNS topic ARN.", d.arn)
		}
	}
	return nil
}

// queueNameRE is an SQS queue / SNS topic name as Ignis queues accept it.
var queueNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`)

// ValidQueueName reports whether name may name an Ignis queue (the last
// part of an SQS or SNS ARN).
func ValidQueueName(name string) bool { return queueNameRE.MatchString(name) }

// writeEventConfig stores c (create when rev is 0 and nothing is stored).
func (r *Registry) writeEventConfig(ctx context.Context, kv jetstream.KeyValue, c EventInvokeConfig, rev uint64) error {
	key := eventConfigKey(c.FunctionName, c.Qualifier)
	var err error
	if rev == 0 {
		_, err = kv.Create(ctx, key, mustJSON(c))
	} else {
		_, err = kv.Update(ctx, key, mustJSON(c), rev)
	}
	if isRevisionMismatch(err) {
		return errRetry
	}
	if err != nil {
		return fmt.Errorf("writing event invoke config of %s:%s: %w", c.FunctionName, c.Qualifier, err)
	}
	return nil
}

var errRetry = errors.New("lost a compare-and-set race")

// putEventConfig is Put (merge false) and Update (merge true).
func (r *Registry) putEventConfig(ctx context.Context, fn, qualifier string, in EventInvokeConfigInput, merge bool) (EventInvokeConfig, error) {
	ref, rec, err := r.eventTarget(ctx, fn, qualifier)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	kv, err := r.eventConfigs(ctx, true)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	for range casAttempts {
		old, rev, found, err := r.loadEventConfig(ctx, kv, ref, rec)
		if err != nil {
			return EventInvokeConfig{}, err
		}
		if merge && !found {
			return EventInvokeConfig{}, r.eventConfigNotFound(ref)
		}
		c := DefaultEventInvokeConfig(ref.Name, ref.Qualifier)
		if merge {
			c = old
		}
		setIf(&c.MaximumRetryAttempts, in.MaximumRetryAttempts)
		setIf(&c.MaximumEventAgeInSeconds, in.MaximumEventAgeInSeconds)
		setIf(&c.OnSuccess, in.OnSuccess)
		setIf(&c.OnFailure, in.OnFailure)
		c.FunctionCreated = rec.Created
		c.LastModified = r.cfg.Clock.Now().UTC()
		if err := r.validateEventConfig(&c); err != nil {
			return EventInvokeConfig{}, err
		}
		err = r.writeEventConfig(ctx, kv, c, rev)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return EventInvokeConfig{}, err
		}
		r.log.InfoContext(ctx, "event invoke config written", "function", ref.Name, "qualifier", ref.Qualifier,
			"maxRetries", c.MaximumRetryAttempts, "maxAge", c.MaximumEventAgeInSeconds, "onSuccess", c.OnSuccess, "onFailure", c.OnFailure)
		return c, nil
	}
	return EventInvokeConfig{}, conflictf("Too many concurrent updates of the event invoke config of %s; retry.", ref.Name)
}

// PutFunctionEventInvokeConfig replaces the configuration of fn at
// qualifier ("" means $LATEST); absent fields take their defaults.
func (r *Registry) PutFunctionEventInvokeConfig(ctx context.Context, fn, qualifier string, in EventInvokeConfigInput) (EventInvokeConfig, error) {
	return r.putEventConfig(ctx, fn, qualifier, in, false)
}

// UpdateFunctionEventInvokeConfig merges in into the existing
// configuration; errdefs.ErrNotFound when there is none.
func (r *Registry) UpdateFunctionEventInvokeConfig(ctx context.Context, fn, qualifier string, in EventInvokeConfigInput) (EventInvokeConfig, error) {
	return r.putEventConfig(ctx, fn, qualifier, in, true)
}

// GetFunctionEventInvokeConfig returns the stored configuration;
// errdefs.ErrNotFound when there is none.
func (r *Registry) GetFunctionEventInvokeConfig(ctx context.Context, fn, qualifier string) (EventInvokeConfig, error) {
	ref, rec, err := r.eventTarget(ctx, fn, qualifier)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	kv, err := r.eventConfigs(ctx, false)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	c, _, found, err := r.loadEventConfig(ctx, kv, ref, rec)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	if !found {
		return EventInvokeConfig{}, r.eventConfigNotFound(ref)
	}
	return c, nil
}

// EffectiveEventInvokeConfig is the configuration that applies to an
// asynchronous invoke of name at qualifier: the stored one or the
// defaults. errdefs.ErrNotFound only when the function is gone.
func (r *Registry) EffectiveEventInvokeConfig(ctx context.Context, name, qualifier string) (EventInvokeConfig, error) {
	if qualifier == "" {
		qualifier = Latest
	}
	rec, _, err := r.loadFunction(ctx, name)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	kv, err := r.eventConfigs(ctx, false)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	c, _, found, err := r.loadEventConfig(ctx, kv, FunctionRef{Name: name, Qualifier: qualifier}, rec)
	if err != nil {
		return EventInvokeConfig{}, err
	}
	if !found {
		return DefaultEventInvokeConfig(name, qualifier), nil
	}
	return c, nil
}

// DeleteFunctionEventInvokeConfig removes the configuration;
// errdefs.ErrNotFound when there is none.
func (r *Registry) DeleteFunctionEventInvokeConfig(ctx context.Context, fn, qualifier string) error {
	ref, rec, err := r.eventTarget(ctx, fn, qualifier)
	if err != nil {
		return err
	}
	kv, err := r.eventConfigs(ctx, false)
	if err != nil {
		return err
	}
	_, _, found, err := r.loadEventConfig(ctx, kv, ref, rec)
	if err != nil {
		return err
	}
	if !found {
		return r.eventConfigNotFound(ref)
	}
	if err := kv.Purge(ctx, eventConfigKey(ref.Name, ref.Qualifier)); err != nil {
		return fmt.Errorf("deleting event invoke config of %s:%s: %w", ref.Name, ref.Qualifier, err)
	}
	r.log.InfoContext(ctx, "event invoke config deleted", "function", ref.Name, "qualifier", ref.Qualifier)
	return nil
}

// ListFunctionEventInvokeConfigs lists fn's configurations (every
// qualifier), in pages of at most MaxPageSize.
func (r *Registry) ListFunctionEventInvokeConfigs(ctx context.Context, fn string, in ListInput) ([]EventInvokeConfig, string, error) {
	name, err := unqualified(fn)
	if err != nil {
		return nil, "", err
	}
	rec, _, err := r.loadFunction(ctx, name)
	if err != nil {
		return nil, "", err
	}
	kv, err := r.eventConfigs(ctx, false)
	if err != nil {
		return nil, "", err
	}
	return listFunctionEntries(ctx, kv, name, rec, in, func(c *EventInvokeConfig) time.Time { return c.FunctionCreated })
}

// listFunctionEntries returns one page (MaxItems ≤ MaxPageSize) of the
// values stored under name in kv (keys NAME.…; kv nil: none), skipping
// those whose function-created time is not rec's: leftovers of an earlier
// function of the same name.
func listFunctionEntries[T any](ctx context.Context, kv jetstream.KeyValue, name string, rec *functionRecord, in ListInput, created func(*T) time.Time) ([]T, string, error) {
	if in.MaxItems > MaxPageSize {
		return nil, "", constraint(in.MaxItems, "maxItems", "Member must have value less than or equal to 50")
	}
	var keys []string
	if kv != nil {
		var err error
		if keys, err = keysWithPrefix(ctx, kv, name); err != nil {
			return nil, "", err
		}
	}
	items := make([]listItem, 0, len(keys))
	for _, k := range keys {
		items = append(items, listItem{key: k, name: name})
	}
	pageItems, next, err := page(items, in)
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(pageItems))
	for _, it := range pageItems {
		var v T
		if _, err := getJSON(ctx, kv, it.key, &v); errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return nil, "", err
		}
		if created(&v).Equal(rec.Created) {
			out = append(out, v)
		}
	}
	return out, next, nil
}
