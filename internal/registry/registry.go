package registry

import (
	"github.com/ignis-run/ignis/internal/fnspec"

	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/errdefs"
)

// Defaults for Config.
const (
	DefaultRegion             = "us-east-1"
	DefaultAccountID          = "000000000000"
	DefaultAccountConcurrency = 1000
	// MinUnreserved is the part of the account's concurrency that reserved
	// concurrency may never take (spec §1.4).
	MinUnreserved = 100
	// MaxPageSize is the most items one List call returns.
	MaxPageSize = 50
)

// Config configures a Registry.
type Config struct {
	// JetStream is the client of the embedded (or external) server. Required.
	JetStream jetstream.JetStream
	// Replicas of every bucket; 0 means 1.
	Replicas int
	// ARNs names the region and account of every ARN.
	ARNs ARNs
	// Runtimes lists the runtimes CreateFunction accepts. Required.
	Runtimes Runtimes
	// AccountConcurrency is the account's concurrent execution limit.
	AccountConcurrency int
	Clock              clock.Clock
	Logger             *slog.Logger
}

// Registry is the function config service. It is safe for concurrent use,
// also across processes sharing the same JetStream.
type Registry struct {
	cfg   Config
	s     *stores
	log   *slog.Logger
	cache *resolveCache
	// reservedWritten is the KV revision of this Registry's last write of
	// the reservations (see ReservationsWritten).
	reservedWritten atomic.Uint64
}

// Open creates or opens the registry's buckets and starts the watchers
// that keep Resolve's in-memory cache fresh; they run until ctx ends or
// Close is called.
func Open(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.JetStream == nil {
		return nil, errors.New("registry: JetStream is required")
	}
	if cfg.Runtimes == nil {
		return nil, errors.New("registry: Runtimes is required")
	}
	if cfg.ARNs.Region == "" {
		cfg.ARNs.Region = DefaultRegion
	}
	if cfg.ARNs.AccountID == "" {
		cfg.ARNs.AccountID = DefaultAccountID
	}
	if cfg.AccountConcurrency == 0 {
		cfg.AccountConcurrency = DefaultAccountConcurrency
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := openStores(ctx, cfg.JetStream, cfg.Replicas)
	if err != nil {
		return nil, fmt.Errorf("opening registry: %w", err)
	}
	r := &Registry{cfg: cfg, s: s, log: cfg.Logger.With("component", "registry")}
	if r.cache, err = startResolveCache(ctx, r); err != nil {
		return nil, fmt.Errorf("opening registry: %w", err)
	}
	return r, nil
}

// ARNs returns the ARN builder of this registry.
func (r *Registry) ARNs() ARNs { return r.cfg.ARNs }

// SupportedRuntimes lists the runtimes CreateFunction accepts.
func (r *Registry) SupportedRuntimes() []string { return r.cfg.Runtimes.Supported() }

func functionNotFound(a ARNs, name string) error {
	return notFoundf("Function not found: %s", a.Function(name))
}

// loadFunction reads the record of name.
func (r *Registry) loadFunction(ctx context.Context, name string) (*functionRecord, uint64, error) {
	var rec functionRecord
	rev, err := getJSON(ctx, r.s.functions, name, &rec)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, functionNotFound(r.cfg.ARNs, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading function %s: %w", name, err)
	}
	return &rec, rev, nil
}

// updateFunction applies mutate to the record of name with compare-and-set,
// re-reading and re-applying on a lost race. mutate must only touch rec.
func (r *Registry) updateFunction(ctx context.Context, name string, mutate func(rec *functionRecord) error) (*functionRecord, error) {
	defer r.invalidateFunction(name)
	for range casAttempts {
		rec, rev, err := r.loadFunction(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := mutate(rec); err != nil {
			return nil, err
		}
		_, err = r.s.functions.Update(ctx, name, mustJSON(rec), rev)
		if isRevisionMismatch(err) {
			continue
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, functionNotFound(r.cfg.ARNs, name)
		}
		if err != nil {
			return nil, fmt.Errorf("writing function %s: %w", name, err)
		}
		return rec, nil
	}
	return nil, conflictf("The operation cannot be performed at this time. Too many concurrent updates to function %s; retry.", name)
}

func checkRevision(want, have string) error {
	if want != "" && want != have {
		return preconditionf("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	}
	return nil
}

// storeCode validates zip and stores it once under its SHA-256.
func (r *Registry) storeCode(ctx context.Context, zip []byte, dryRun bool) (sum string, info ZipInfo, err error) {
	info, err = ValidateZip(zip)
	if err != nil {
		return "", ZipInfo{}, err
	}
	h := sha256.Sum256(zip)
	key := hex.EncodeToString(h[:])
	sum = base64.StdEncoding.EncodeToString(h[:])
	if dryRun {
		return sum, info, nil
	}
	if _, err := r.s.code.GetInfo(ctx, key); err == nil {
		return sum, info, nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", ZipInfo{}, fmt.Errorf("looking up code %s: %w", key, err)
	}
	if _, err := r.s.code.Put(ctx, jetstream.ObjectMeta{Name: key}, bytes.NewReader(zip)); err != nil {
		return "", ZipInfo{}, fmt.Errorf("storing code %s: %w", key, err)
	}
	return sum, info, nil
}

func noOtherCodeSource(src string) error {
	if src != "" {
		return invalidf("Ignis accepts code only as ZipFile; %s is not supported", src)
	}
	return nil
}

// CreateFunction creates a function from a zip; with Publish it also
// publishes version 1 and returns that version's configuration.
func (r *Registry) CreateFunction(ctx context.Context, in CreateFunctionInput) (FunctionConfig, error) {
	if !functionNameRE.MatchString(in.Name) {
		return FunctionConfig{}, badFunctionName(in.Name)
	}
	cfg := newLatest(in.Name)
	if in.PackageType != "" {
		cfg.PackageType = in.PackageType
	}
	if in.Architectures != nil {
		cfg.Architectures = slices.Clone(in.Architectures)
	}
	in.Config.apply(&cfg)
	if err := validateConfig(&cfg, r.cfg.Runtimes.Supported()); err != nil {
		return FunctionConfig{}, err
	}
	if err := validateTags(in.Tags); err != nil {
		return FunctionConfig{}, err
	}
	if err := noOtherCodeSource(in.OtherCodeSource); err != nil {
		return FunctionConfig{}, err
	}
	if in.ZipFile == nil {
		return FunctionConfig{}, invalidf("Code.ZipFile is required")
	}
	if _, err := r.s.functions.Get(ctx, in.Name); err == nil {
		return FunctionConfig{}, existsf("Function already exist: %s", in.Name)
	}
	sum, info, err := r.storeCode(ctx, in.ZipFile, false)
	if err != nil {
		return FunctionConfig{}, err
	}
	now := r.cfg.Clock.Now().UTC()
	cfg.CodeSha256, cfg.CodeSize, cfg.UnzippedSize = sum, int64(len(in.ZipFile)), info.UnzippedSize
	cfg.LastModified = now
	cfg.RevisionId = uuid.NewString()
	// Versions and aliases of an earlier function with this name that a
	// crash left behind must not reappear under the new one.
	if err := r.purgeChildren(ctx, in.Name); err != nil {
		return FunctionConfig{}, err
	}
	cfg.Network, _ = fnspec.NetworkFromTags(in.Tags) // validated above
	rec := functionRecord{Latest: cfg, Tags: cloneMap(in.Tags), Created: now}
	_, err = r.s.functions.Create(ctx, in.Name, mustJSON(rec))
	r.invalidateFunction(in.Name)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return FunctionConfig{}, existsf("Function already exist: %s", in.Name)
		}
		return FunctionConfig{}, fmt.Errorf("creating function %s: %w", in.Name, err)
	}
	r.log.InfoContext(ctx, "function created", "function", in.Name, "runtime", cfg.Runtime, "codeSha256", sum)
	if in.Publish {
		return r.PublishVersion(ctx, in.Name, PublishInput{})
	}
	return cfg, nil
}

// config returns the configuration a qualifier names: "" or $LATEST, a
// version number, or an alias (its primary version).
func (r *Registry) config(ctx context.Context, ref FunctionRef) (FunctionConfig, *functionRecord, error) {
	rec, _, err := r.loadFunction(ctx, ref.Name)
	if err != nil {
		return FunctionConfig{}, nil, err
	}
	q := ref.Qualifier
	if q != "" && q != Latest && !isVersion(q) {
		a, err := r.getAlias(ctx, ref.Name, q)
		if err != nil {
			return FunctionConfig{}, nil, err
		}
		q = a.FunctionVersion
	}
	if q == "" || q == Latest {
		return rec.Latest, rec, nil
	}
	v, err := r.getVersion(ctx, ref.Name, q)
	if err != nil {
		return FunctionConfig{}, nil, err
	}
	return v, rec, nil
}

// GetFunctionConfiguration returns the configuration of fn (name or ARN,
// optionally qualified) at qualifier.
func (r *Registry) GetFunctionConfiguration(ctx context.Context, fn, qualifier string) (FunctionConfig, error) {
	ref, err := ParseFunctionRef(fn, qualifier)
	if err != nil {
		return FunctionConfig{}, err
	}
	c, _, err := r.config(ctx, ref)
	return c, err
}

// GetFunction returns the configuration plus tags and reserved concurrency.
func (r *Registry) GetFunction(ctx context.Context, fn, qualifier string) (FunctionDetails, error) {
	ref, err := ParseFunctionRef(fn, qualifier)
	if err != nil {
		return FunctionDetails{}, err
	}
	c, rec, err := r.config(ctx, ref)
	if err != nil {
		return FunctionDetails{}, err
	}
	reserved, err := r.reservedFor(ctx, ref.Name)
	if err != nil {
		return FunctionDetails{}, err
	}
	return FunctionDetails{Config: c, Tags: cloneMap(rec.Tags), ReservedConcurrency: reserved}, nil
}

// unqualified parses fn and refuses a qualifier other than $LATEST, for
// operations on the function's $LATEST.
func unqualified(fn string) (string, error) {
	ref, err := ParseFunctionRef(fn, "")
	if err != nil {
		return "", err
	}
	if ref.Qualifier != "" && ref.Qualifier != Latest {
		return "", invalidf("Unsupported qualifier %s for this operation; use the unqualified function name", ref.Qualifier)
	}
	return ref.Name, nil
}

// UpdateFunctionCode replaces $LATEST's code; with Publish it then
// publishes a version and returns it.
func (r *Registry) UpdateFunctionCode(ctx context.Context, fn string, in UpdateCodeInput) (FunctionConfig, error) {
	name, err := unqualified(fn)
	if err != nil {
		return FunctionConfig{}, err
	}
	if err := noOtherCodeSource(in.OtherCodeSource); err != nil {
		return FunctionConfig{}, err
	}
	if in.ZipFile == nil {
		return FunctionConfig{}, invalidf("Please provide a source for function code.")
	}
	if _, _, err := r.loadFunction(ctx, name); err != nil {
		return FunctionConfig{}, err
	}
	sum, info, err := r.storeCode(ctx, in.ZipFile, in.DryRun)
	if err != nil {
		return FunctionConfig{}, err
	}
	mutate := func(rec *functionRecord) error {
		if err := checkRevision(in.RevisionId, rec.Latest.RevisionId); err != nil {
			return err
		}
		c := &rec.Latest
		if in.Architectures != nil {
			c.Architectures = slices.Clone(in.Architectures)
			if err := validateConfig(c, r.cfg.Runtimes.Supported()); err != nil {
				return err
			}
		}
		c.CodeSha256, c.CodeSize, c.UnzippedSize = sum, int64(len(in.ZipFile)), info.UnzippedSize
		c.LastModified = r.cfg.Clock.Now().UTC()
		c.RevisionId = uuid.NewString()
		return nil
	}
	if in.DryRun {
		rec, _, err := r.loadFunction(ctx, name)
		if err != nil {
			return FunctionConfig{}, err
		}
		if err := mutate(rec); err != nil {
			return FunctionConfig{}, err
		}
		return rec.Latest, nil
	}
	rec, err := r.updateFunction(ctx, name, mutate)
	if err != nil {
		return FunctionConfig{}, err
	}
	r.log.InfoContext(ctx, "function code updated", "function", name, "codeSha256", sum)
	if in.Publish {
		return r.PublishVersion(ctx, name, PublishInput{})
	}
	return rec.Latest, nil
}

// UpdateFunctionConfiguration changes $LATEST's configuration. Environment
// replaces the whole map.
func (r *Registry) UpdateFunctionConfiguration(ctx context.Context, fn string, in UpdateConfigInput) (FunctionConfig, error) {
	name, err := unqualified(fn)
	if err != nil {
		return FunctionConfig{}, err
	}
	supported := r.cfg.Runtimes.Supported()
	rec, err := r.updateFunction(ctx, name, func(rec *functionRecord) error {
		if err := checkRevision(in.RevisionId, rec.Latest.RevisionId); err != nil {
			return err
		}
		c := rec.Latest
		in.Config.apply(&c)
		if err := validateConfig(&c, supported); err != nil {
			return err
		}
		c.LastModified = r.cfg.Clock.Now().UTC()
		c.RevisionId = uuid.NewString()
		rec.Latest = c
		return nil
	})
	if err != nil {
		return FunctionConfig{}, err
	}
	r.log.InfoContext(ctx, "function configuration updated", "function", name)
	return rec.Latest, nil
}

// DeleteFunction deletes the whole function (qualifier "" or in the name
// absent) or one published version.
func (r *Registry) DeleteFunction(ctx context.Context, fn, qualifier string) error {
	ref, err := ParseFunctionRef(fn, qualifier)
	if err != nil {
		return err
	}
	switch {
	case ref.Qualifier == "":
	case ref.Qualifier == Latest:
		return invalidf("$LATEST version cannot be deleted without deleting the function.")
	case isVersion(ref.Qualifier):
		return r.deleteVersion(ctx, ref.Name, ref.Qualifier)
	default:
		return invalidf("Deletion of aliases is not supported by DeleteFunction; use DeleteAlias for %s", ref.Qualifier)
	}
	if _, _, err := r.loadFunction(ctx, ref.Name); err != nil {
		return err
	}
	err = r.s.functions.Purge(ctx, ref.Name)
	r.invalidateFunction(ref.Name)
	if err != nil {
		return fmt.Errorf("deleting function %s: %w", ref.Name, err)
	}
	if err := r.purgeChildren(ctx, ref.Name); err != nil {
		return err
	}
	if err := r.purgeURLConfigs(ctx, ref.Name); err != nil {
		return err
	}
	if err := r.setReserved(ctx, ref.Name, nil); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "function deleted", "function", ref.Name)
	return nil
}

// purgeChildren removes every version and alias stored under name.
func (r *Registry) purgeChildren(ctx context.Context, name string) error {
	defer r.invalidateChildren(name)
	for _, kv := range []jetstream.KeyValue{r.s.versions, r.s.aliases} {
		keys, err := keysWithPrefix(ctx, kv, name)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := kv.Purge(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("purging %s/%s: %w", kv.Bucket(), k, err)
			}
		}
	}
	return nil
}

// listItem is one row of a listing, with its sort key.
type listItem struct {
	key  string
	name string
	ver  string // "" for $LATEST
}

func itemKey(name, version string) string {
	if version == "" {
		return name + "/"
	}
	n, _ := strconv.Atoi(version)
	return fmt.Sprintf("%s/%010d", name, n)
}

func encodeMarker(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeMarker(m string) (string, error) {
	if m == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return "", invalidf("Invalid Marker: %s", truncate(m, 100))
	}
	return string(b), nil
}

// page sorts items, skips those up to the marker and cuts a page.
func page(items []listItem, in ListInput) ([]listItem, string, error) {
	after, err := decodeMarker(in.Marker)
	if err != nil {
		return nil, "", err
	}
	if in.MaxItems < 0 || in.MaxItems > 10000 {
		return nil, "", constraint(in.MaxItems, "maxItems", "Member must have value between 1 and 10000")
	}
	limit := MaxPageSize
	if in.MaxItems > 0 && in.MaxItems < limit {
		limit = in.MaxItems
	}
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	start := sort.Search(len(items), func(i int) bool { return items[i].key > after })
	items = items[start:]
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeMarker(items[limit-1].key)
	}
	return items, next, nil
}

// ListFunctions lists $LATEST of every function, or with allVersions every
// published version too, in pages of at most MaxPageSize.
func (r *Registry) ListFunctions(ctx context.Context, in ListInput, allVersions bool) ([]FunctionConfig, string, error) {
	names, err := keysWithPrefix(ctx, r.s.functions, "")
	if err != nil {
		return nil, "", err
	}
	items := make([]listItem, 0, len(names))
	for _, n := range names {
		items = append(items, listItem{key: itemKey(n, ""), name: n})
	}
	if allVersions {
		keys, err := keysWithPrefix(ctx, r.s.versions, "")
		if err != nil {
			return nil, "", err
		}
		for _, k := range keys {
			name, ver, ok := strings.Cut(k, ".")
			if ok && slices.Contains(names, name) {
				items = append(items, listItem{key: itemKey(name, ver), name: name, ver: ver})
			}
		}
	}
	pageItems, next, err := page(items, in)
	if err != nil {
		return nil, "", err
	}
	out := make([]FunctionConfig, 0, len(pageItems))
	for _, it := range pageItems {
		var c FunctionConfig
		if it.ver == "" {
			rec, _, err := r.loadFunction(ctx, it.name)
			if errdefs.IsNotFound(err) {
				continue // deleted meanwhile
			} else if err != nil {
				return nil, "", err
			}
			c = rec.Latest
		} else {
			c, err = r.getVersion(ctx, it.name, it.ver)
			if errdefs.IsNotFound(err) {
				continue
			} else if err != nil {
				return nil, "", err
			}
		}
		out = append(out, c)
	}
	return out, next, nil
}

// AccountSettings reports limits and usage.
func (r *Registry) AccountSettings(ctx context.Context) (AccountSettings, error) {
	all, err := r.reservations(ctx)
	if err != nil {
		return AccountSettings{}, err
	}
	reserved := 0
	for _, n := range all.m {
		reserved += n
	}
	names, err := keysWithPrefix(ctx, r.s.functions, "")
	if err != nil {
		return AccountSettings{}, err
	}
	var total int64
	for _, n := range names {
		rec, _, err := r.loadFunction(ctx, n)
		if err != nil {
			continue
		}
		total += rec.Latest.CodeSize
	}
	vkeys, err := keysWithPrefix(ctx, r.s.versions, "")
	if err != nil {
		return AccountSettings{}, err
	}
	for _, k := range vkeys {
		var c FunctionConfig
		if _, err := getJSON(ctx, r.s.versions, k, &c); err == nil {
			total += c.CodeSize
		}
	}
	return AccountSettings{
		ConcurrentExecutions:           r.cfg.AccountConcurrency,
		UnreservedConcurrentExecutions: r.cfg.AccountConcurrency - reserved,
		TotalCodeSize:                  total,
		FunctionCount:                  int64(len(names)),
	}, nil
}
