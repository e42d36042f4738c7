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
// The invoke path uses Resolve and OpenCode (resolve.go) and nothing else.
package registry
