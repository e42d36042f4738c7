// Package assignment is the partition leader's sandbox table: which
// sandboxes exist for each function configuration, which are idle or busy,
// and who holds them. It leases one sandbox per in-flight invoke, starts new
// ones through placement and the workers, keeps idle ones warm for a while,
// enforces Lambda's concurrency limits, and journals every sandbox lifecycle
// change so that a restarted (or new) leader can rebuild the table.
//
// # Sandbox lifecycle
//
//	         Acquire (cold): journal Creating,      Release(OutcomeOK)
//	         Workers.CreateSandbox, journal Ready   (memory only)
//	(none) ───────────────► initializing ──► busy ─────────────────► idle
//	                             │            ▲ │                      │
//	          create failed      │            │ └───── Acquire (warm) ─┘
//	                             │            │        memory only, no IO
//	                             ▼            │ Release(timeout/crash/OOM/discard)
//	                           dead ◄─────────┘ idle > KeepAlive (Reap)
//	                             │  ◄────────── idle beyond MaxIdlePerKey
//	                             │ Workers.DestroySandbox (retried by Reap),
//	                             ▼ journal Destroyed, capacity freed
//	                           (gone)
//
// A busy sandbox is leased to exactly one invoke: one invoke per sandbox at
// a time, always. A sandbox never changes Key, so it never serves two
// functions or two configurations.
//
// # Glossary
//
//   - Function: the function name. Concurrency limits and partitioning use it.
//   - Key: one immutable configuration of a function (version; for $LATEST
//     also code digest and config revision). Sandboxes are pooled per Key.
//   - Partition: functions hash (PartitionOf) to Config.Partitions shards,
//     each with its own table, lock and journal subject.
//   - Lease: the right to send one invoke to one sandbox, until Release.
//
// # Wiring (the invoke path)
//
//	svc, _ := assignment.New(cfg, journal, workers) // workers: the lead's Workers impl
//	events, _ := fleetRegistry.Watch(ctx)           // feed placement's view
//	for ev := range events { svc.ApplyFleetEvent(ev); if ev.Op == fleet.OpSynced { break } }
//	go func() { for ev := range events { svc.ApplyFleetEvent(ev) } }()
//	if err := svc.Recover(ctx); err != nil { ... }  // before serving
//	go svc.Run(ctx)                                 // keep-alive reaping, compaction
//
//	// frontend, per invoke:
//	lease, err := svc.Acquire(ctx, assignment.Request{
//		Function: name, Key: name + ":" + version + "#" + revision,
//		MemoryMB: cfg.MemorySize, Spec: fnspec.Spec{...}, // resolved config
//	})
//	var te *assignment.ThrottleError
//	if errors.As(err, &te) { /* 429 TooManyRequestsException, Reason: te.Reason */ }
//	if err != nil { /* errdefs class → AWS error */ }
//	res, err := worker.Invoke(ctx, lease.WorkerID, lease.SandboxID, payload, lease.Cold)
//	svc.Release(lease, outcomeOf(res, err)) // OutcomeOK unless timeout/crash/OOM
//
// Concurrency limits (SetReservedConcurrency, DeleteReservedConcurrency,
// SetAccountConcurrency) are fed by the wiring from the registry.
//
// # Durability
//
// Only creation (write-ahead SandboxCreating, then SandboxReady with the
// driver Handle) and destruction are journaled, on the cold path. Leases are
// not: a warm Acquire+Release touches memory only (zero allocations; see
// BenchmarkAcquireRelease_Warm). After a crash every surviving sandbox comes
// back idle; Recover reconciles the journal with Workers.ListSandboxes so
// that nothing is orphaned (table on Recover). Journal compaction: every
// Config.CheckpointEvery appends, or Config.CheckpointInterval with any
// append, and after Recover, a partition's table is written as a Checkpoint
// and older entries are purged.
//
// # Leadership seam
//
// Today one Service leads every partition (single node). Per-partition
// leadership (a later issue) will: elect a leader per partition
// (KV create-if-absent + revision CAS + TTL), call RecoverPartitions on
// takeover, fence stale leaders' appends (expected last subject sequence),
// and answer ErrNotLeader for partitions led elsewhere. The account-wide
// concurrency pool and worker allocation then need cluster-wide counters;
// today both are exact in-process (limiter, capacity).
//
// # Concurrency
//
// Service is safe for concurrent use. Each partition has mu (the table,
// held for microseconds, never across IO) and jmu (orders journal appends
// with the table changes they record; cold path only; taken before mu).
// The limiter and the capacity view are process-wide, each with its own
// mutex; a worker's in-flight count is atomic.
package assignment
