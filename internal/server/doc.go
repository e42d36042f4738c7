// Package server is the composition root of `ignis server`: it builds every
// role of the platform into one process from one Config.
//
//	Config ──► New ──► Start(ctx) ──────────────► Close(ctx)
//	                     │ credentials (flags/env/<data>/credentials.json)
//	                     │ embedded NATS JetStream (<data>/nats)
//	                     │ registry (KV buckets + code object store)
//	                     │ frontend (AWS API on Config.Listen)
//	                     └ later roles (worker, assignment, logs) are added here
//
// Run is Start, wait for ctx, Close. Close stops accepting connections,
// lets in-flight requests finish (bounded by its ctx), then closes the
// components in reverse order so JetStream flushes to disk.
//
// Nothing else in Ignis imports this package except internal/cli and tests.
package server
