// Package registry is the config service: functions, their $LATEST
// configuration, published versions, aliases, reserved concurrency and code
// packages, all stored in NATS JetStream.
//
// Storage layout (one bucket per kind, see store.go):
//
//	KV ignis_functions    NAME           → functionRecord ($LATEST config, version counter, tags)
//	KV ignis_versions     NAME.N         → FunctionConfig (immutable, Version "N")
//	KV ignis_aliases      NAME.ALIAS     → Alias
//	KV ignis_concurrency  "reserved"     → map NAME → reserved concurrency
//	KV ignis_function_urls    NAME.ALIAS|NAME.=LATEST → URLConfig (urls.go)
//	KV ignis_function_url_ids URLID                   → where that URL id points
//	OBJ ignis_code        hex(sha256)    → zip bytes (content addressed, stored once)
//
// Every read-modify-write is a KV compare-and-set on the entry's revision
// (kv.Update with the last revision), retried on conflict, so concurrent
// mutations from several frontends are safe. A caller-supplied RevisionId
// that no longer matches fails with errdefs.ErrPreconditionFailed.
//
// Version numbers come from a counter in the function record: they start at 1
// and are never reused, even after a version is deleted.
//
// Errors are wrapped errdefs classes whose text is written for the API user;
// the frontend maps the class to the AWS error type.
//
// The invoke path uses Resolve and OpenCode (resolve.go) and nothing else;
// function URL requests first map their URL id with LookupFunctionURL.
//
// # Resolve cache
//
// Resolve runs on every invoke; reading the function, version, alias and
// reservation entries from KV each time cost 3-4 round trips and JSON
// decodes per invoke. So Resolve (and only Resolve: every other method, in
// particular each compare-and-set, still reads KV) serves those entries
// from an in-memory cache (cache.go), one map per bucket keyed as the
// bucket is, filled lazily on a miss. Invariants:
//
//   - Read-your-writes: each mutation in this process invalidates the
//     entries it wrote (or tried to write) before it returns, so the next
//     Resolve here reads them from KV. Nothing relies on a watcher for
//     local writes.
//   - Remote writes (another Registry on the same JetStream): Open starts
//     one KV watcher per bucket (updates only, metadata only) before
//     anything is cached; each update, delete or purge it delivers drops
//     the cached entry unless that entry is already at the update's
//     revision or newer. A remote change is visible once its watch event
//     arrives, normally within milliseconds.
//   - No stale refill: each cache has a generation bumped by every
//     invalidation; a value read from KV is stored only if the generation
//     did not change during the read, and never over a newer revision.
//   - When a watcher stops (ctx given to Open done, Close, or the
//     subscription closed) its cache is disabled and emptied: reads go to
//     KV, never to possibly stale memory.
//   - Cached values are never modified. Configurations Resolve returns
//     are copies (maps and slices cloned), so callers may keep or change
//     them.
//   - Not-found results are not cached; the cache holds at most one entry
//     per live key, dropped when the key is deleted.
package registry
