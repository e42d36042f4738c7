// Package server is the composition root of `ignis server`: it builds every
// role of the platform into one process from one Config.
//
//	Config ──► New ──► Start(ctx) ──────────────► Close(ctx)
//	                     │ credentials (flags/env/<data>/credentials.json)
//	                     │ embedded NATS JetStream (<data>/nats)
//	                     │ registry (KV buckets + code object store)
//	                     │ roles (newRoles): logs, worker, assignment,
//	                     │   invoke, async; each a struct with start and
//	                     │   close, its loops in an errgroup (roles.go)
//	                     └ frontend (AWS API on Config.Listen)
//
// Run is Start, wait for ctx, Close. Close stops accepting connections,
// lets in-flight requests finish (bounded by its ctx), closes the roles in
// reverse start order (the pollers stop taking work, assignment drains its
// background destroys, the worker destroys its sandboxes and deregisters,
// the logs flush), then the registry and NATS, so JetStream flushes to disk.
//
// The sandbox drivers are a table (drivers in compute.go): adding a driver
// is one entry there, adding a role one entry in newRoles.
//
// Nothing else in Ignis imports this package except internal/cli and tests.
package server
