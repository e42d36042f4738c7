// Package journal is the assignment journal: typed, versioned, append-only
// entries recording the lifecycle of sandboxes, one JetStream subject per
// assignment partition. The partition leader writes it; a new leader (or a
// restarted server) replays it to rebuild the sandbox table.
//
// # What is durable
//
// Only what recovery needs to find every sandbox that may exist:
//
//	SandboxCreating  write-ahead, before the worker is asked to create
//	SandboxReady     the sandbox exists: worker, function, key, memory, driver Handle
//	SandboxDestroyed the sandbox is gone (with a reason)
//	Checkpoint       the full table; older entries of the subject are purged
//
// Leases (idle ⇄ busy) are NOT journaled: a warm invoke never waits on
// disk. After a crash every recovered sandbox is idle; in-flight invokes of
// the crashed leader are lost with it (their callers see an error), and
// their sandboxes are reconciled against what the workers report.
//
// # Storage
//
// Stream StreamName, subjects journal.p.<n>, file storage, limits retention,
// Discard=New (a full stream fails appends loudly instead of dropping
// history), DenyDelete. MaxAge (default 7 days) is only a safety net.
//
// Compaction: the writer calls Compact every so often (assignment does it
// every CheckpointEvery entries and after recovery): Compact appends a
// Checkpoint of the whole table and purges the subject's entries before it,
// so a replay reads one checkpoint plus the entries after it. The writer
// must keep a partition's appends ordered with its state changes so the
// checkpoint covers everything before it.
//
// # Encoding
//
// See FormatVersion: a format byte, the type (uint16), the type's schema
// version, then a JSON body. JSON keeps additive changes (new optional
// fields) free; a semantic change bumps the type's schema version and
// decodeBody upgrades old versions into the current struct.
//
// # Unknown entries: policy
//
//   - Unknown format byte or corrupt envelope/body: Decode returns ErrFormat
//     and Replay stops. The partition cannot be trusted; an operator must
//     look (this should only happen with a downgrade across a format bump).
//   - Unknown type, or a known type at a newer schema version than this
//     binary writes: decoded as *Unknown and passed to Replay's callback;
//     Table.Apply ignores it and Load logs it. Therefore every new type and
//     every new version must be safe for an older reader to ignore (the
//     worst outcome being a sandbox an older leader does not know, which
//     reconciliation destroys as an orphan). A change that is not safe to
//     ignore needs a new FormatVersion instead.
//
// # Checklist: adding an entry type (or a new version of one)
//
//  1. entries.go: add the Type constant with the next unused number (never
//     reuse or renumber), its String case, currentVersion, newEntry, the
//     struct and its Type method. For a new version of an existing type:
//     bump currentVersion and teach decodeBody to upgrade the old version.
//  2. Make sure an older binary ignoring the entry stays safe (policy above).
//  3. table.go: fold it in Table.Apply (and Checkpoint if it adds state).
//  4. codec_test.go: add a sample to samples(); run
//     `go test ./internal/journal -run TestDecode_Testdata -update` and
//     commit the new testdata/<Type>-v<N>.bin. Never edit or delete an
//     existing .bin file: old samples are decoded forever.
//  5. Writers (assignment) and their recovery tests.
package journal
