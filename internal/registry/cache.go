package registry

// This file keeps what Resolve reads in memory (see "Resolve cache" in
// doc.go for the why and the invariants).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// kvCache holds decoded values of one KV bucket, keyed as the bucket is,
// each with the revision it was read at. Values are never modified once
// stored; readers copy what they hand out.
type kvCache[T any] struct {
	mu sync.RWMutex
	// live is true while the bucket's watcher runs; a cache whose watcher
	// stopped could go stale, so it is then neither read nor filled.
	live bool
	// gen changes on every invalidation. A value read from KV is stored
	// only if gen did not change since before the read, so a read that
	// raced with a change can never put the older value back.
	gen uint64
	m   map[string]cacheEntry[T]
}

type cacheEntry[T any] struct {
	v   T
	rev uint64
}

func newKVCache[T any]() *kvCache[T] {
	return &kvCache[T]{live: true, m: map[string]cacheEntry[T]{}}
}

func (c *kvCache[T]) get(key string) (T, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[key]
	return e.v, ok && c.live
}

// generation returns the token to pass to put after reading from KV, and
// whether the cache may be filled at all.
func (c *kvCache[T]) generation() (uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen, c.live
}

// put stores v read at rev, unless anything was invalidated since gen was
// taken or a newer revision is already cached.
func (c *kvCache[T]) put(key string, v T, rev, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	if e, ok := c.m[key]; ok && e.rev >= rev {
		return
	}
	c.m[key] = cacheEntry[T]{v: v, rev: rev}
}

// invalidate drops key unless the cached value is at least revision rev
// (rev 0: drop unconditionally, for local writes).
func (c *kvCache[T]) invalidate(key string, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if e, ok := c.m[key]; ok && (rev == 0 || e.rev < rev) {
		delete(c.m, key)
	}
}

// invalidatePrefix drops every key starting with prefix.
func (c *kvCache[T]) invalidatePrefix(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k := range c.m {
		if strings.HasPrefix(k, prefix) {
			delete(c.m, k)
		}
	}
}

// disable empties the cache for good: its watcher is gone.
func (c *kvCache[T]) disable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = false
	c.gen++
	c.m = nil
}

// cachedJSON returns key's decoded value from c, reading KV on a miss. Its
// errors are getJSON's.
func cachedJSON[T any](ctx context.Context, c *kvCache[T], kv jetstream.KeyValue, key string) (T, error) {
	if v, ok := c.get(key); ok {
		return v, nil
	}
	gen, fill := c.generation()
	var v T
	rev, err := getJSON(ctx, kv, key, &v)
	if err != nil {
		return v, err
	}
	if fill {
		c.put(key, v, rev, gen)
	}
	return v, nil
}

// resolveCache is the Registry's cache of the three buckets Resolve reads,
// and of the two LookupFunctionURL reads.
type resolveCache struct {
	functions *kvCache[*functionRecord]
	versions  *kvCache[FunctionConfig]
	aliases   *kvCache[Alias]
	urls      *kvCache[URLConfig]
	urlIDs    *kvCache[urlIndex]

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startResolveCache starts one watcher per bucket; they run until ctx ends
// or stop is called. The watchers exist before any value is cached (Watch
// creates its consumer before returning), so no change after a cached read
// can be missed.
func startResolveCache(ctx context.Context, r *Registry) (*resolveCache, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &resolveCache{
		functions: newKVCache[*functionRecord](),
		versions:  newKVCache[FunctionConfig](),
		aliases:   newKVCache[Alias](),
		urls:      newKVCache[URLConfig](),
		urlIDs:    newKVCache[urlIndex](),
		stop:      cancel,
	}
	type bucket struct {
		kv         jetstream.KeyValue
		invalidate func(key string, rev uint64)
		disable    func()
	}
	buckets := []bucket{
		{r.s.functions, c.functions.invalidate, c.functions.disable},
		{r.s.versions, c.versions.invalidate, c.versions.disable},
		{r.s.aliases, c.aliases.invalidate, c.aliases.disable},
		{r.s.urls, c.urls.invalidate, c.urls.disable},
		{r.s.urlIDs, c.urlIDs.invalidate, c.urlIDs.disable},
	}
	watchers := make([]jetstream.KeyWatcher, 0, len(buckets))
	for _, b := range buckets {
		w, err := b.kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
		if err != nil {
			for _, w := range watchers {
				_ = w.Stop()
			}
			cancel()
			return nil, fmt.Errorf("watching %s: %w", b.kv.Bucket(), err)
		}
		watchers = append(watchers, w)
	}
	for i, b := range buckets {
		w := watchers[i]
		c.wg.Go(func() {
			defer b.disable()
			ended := forEachUpdate(ctx, w, func(e jetstream.KeyValueEntry) bool {
				if e != nil {
					b.invalidate(e.Key(), e.Revision())
				}
				return true
			})
			if ended {
				r.log.Warn("registry watcher stopped; resolving from JetStream", "bucket", b.kv.Bucket())
			}
		})
	}
	return c, nil
}

// forEachUpdate calls fn with each entry w delivers (nil marks the end of
// the initial values) until ctx ends or fn returns false, then stops w. It
// reports whether w ended on its own (its updates channel closed).
func forEachUpdate(ctx context.Context, w jetstream.KeyWatcher, fn func(e jetstream.KeyValueEntry) bool) (ended bool) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return false
		case e, ok := <-w.Updates():
			if !ok {
				return true
			}
			if !fn(e) {
				return false
			}
		}
	}
}

// close stops the watchers and waits for them; the caches are then
// disabled and every read goes to KV.
func (c *resolveCache) close() {
	c.stop()
	c.wg.Wait()
}

// Close stops the watchers that keep Resolve's in-memory cache fresh. The
// Registry stays usable: afterwards every read goes to JetStream. Cancelling
// the context given to Open has the same effect.
func (r *Registry) Close() { r.cache.close() }

// The cached readers below are Resolve's versions of loadFunction,
// getVersion and getAlias: same results and errors, served
// from memory when possible. Read-modify-write paths keep reading KV.

func (r *Registry) cachedFunction(ctx context.Context, name string) (*functionRecord, error) {
	rec, err := cachedJSON(ctx, r.cache.functions, r.s.functions, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, functionNotFound(r.cfg.ARNs, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading function %s: %w", name, err)
	}
	return rec, nil
}

func (r *Registry) cachedVersion(ctx context.Context, name, version string) (FunctionConfig, error) {
	c, err := cachedJSON(ctx, r.cache.versions, r.s.versions, versionKey(name, version))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return FunctionConfig{}, notFoundf("Function not found: %s", r.cfg.ARNs.Qualified(name, version))
	}
	if err != nil {
		return FunctionConfig{}, fmt.Errorf("reading version %s:%s: %w", name, version, err)
	}
	return cloneConfig(c), nil
}

// cachedAlias returns the shared cached alias: the caller must not modify
// its AdditionalVersionWeights.
func (r *Registry) cachedAlias(ctx context.Context, name, alias string) (Alias, error) {
	a, err := cachedJSON(ctx, r.cache.aliases, r.s.aliases, aliasKey(name, alias))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Alias{}, r.aliasNotFound(name, alias)
	}
	if err != nil {
		return Alias{}, fmt.Errorf("reading alias %s:%s: %w", name, alias, err)
	}
	return a, nil
}

// Local write invalidation: every mutation calls one of these after
// writing (whether or not the write succeeded), so the next Resolve in this
// process reads the new value from KV instead of waiting for the watcher.

func (r *Registry) invalidateFunction(name string) { r.cache.functions.invalidate(name, 0) }
func (r *Registry) invalidateVersion(name, version string) {
	r.cache.versions.invalidate(versionKey(name, version), 0)
}
func (r *Registry) invalidateAlias(name, alias string) {
	r.cache.aliases.invalidate(aliasKey(name, alias), 0)
}

// invalidateURL drops the cached URL config of name at qualifier and, when
// id is set, its id entry.
func (r *Registry) invalidateURL(name, qualifier, id string) {
	r.cache.urls.invalidate(urlConfigKey(name, qualifier), 0)
	if id != "" {
		r.cache.urlIDs.invalidate(id, 0)
	}
}

// invalidateChildren drops every cached version and alias of name.
func (r *Registry) invalidateChildren(name string) {
	r.cache.versions.invalidatePrefix(name + ".")
	r.cache.aliases.invalidatePrefix(name + ".")
}

// cloneConfig copies the maps and slices of c so the copy shares nothing
// mutable with the cache.
func cloneConfig(c FunctionConfig) FunctionConfig {
	c.Environment = cloneMap(c.Environment)
	c.Architectures = slices.Clone(c.Architectures)
	c.Layers = slices.Clone(c.Layers)
	c.SubnetIds = slices.Clone(c.SubnetIds)
	c.SecurityGroupIds = slices.Clone(c.SecurityGroupIds)
	return c
}
