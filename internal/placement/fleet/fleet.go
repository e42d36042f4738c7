// Package fleet is the worker registry: which workers exist, what they
// offer, and whether they are alive. It is the IO half of placement; the
// pure policy is in the parent package.
//
// Each worker owns one key in a JetStream KV bucket (BucketName) holding its
// Registration as JSON. The bucket's MaxAge is the registration TTL: a
// worker that stops heartbeating disappears after Config.TTL, and because the
// bucket keeps limit markers, watchers see that as a delete.
//
// Lifecycle of one worker's key:
//
//	          Register                Heartbeat (every Config.TTL/3 or so)
//	(absent) ─────────► registered ◄───────────┐
//	   ▲                 │   │ └───────────────┘
//	   │  TTL expires    │   │ SetDraining(true): no new sandboxes
//	   └─────────────────┘   ▼
//	   └──────────────── Deregister
//
// Heartbeat fails with errdefs.ErrNotFound once the key has expired: the
// worker must Register again (and the assignment side reconciles it).
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/errdefs"
	"github.com/ignis-run/ignis/internal/placement"
)

// BucketName is the KV bucket holding worker registrations.
const BucketName = "ignis_workers"

// Registration is what a worker publishes about itself.
type Registration struct {
	// ID names the worker; a valid KV key ([-_=a-zA-Z0-9]+).
	ID string `json:"id"`
	// Addr is where other nodes reach the worker ("" when in-process).
	Addr string `json:"addr,omitempty"`
	// MemoryMB and CPUMillis are the capacity offered to sandboxes.
	MemoryMB  int `json:"memory_mb"`
	CPUMillis int `json:"cpu_millis"`
	// Draining: the worker keeps its sandboxes but takes no new ones.
	Draining bool `json:"draining,omitempty"`
	// Load is the worker's own report of what runs on it.
	Load Load `json:"load"`
	// Started is when this worker process started (a new value means the
	// worker restarted and its sandboxes must be reconciled).
	Started time.Time `json:"started"`
	// Heartbeat is when the registry last wrote this entry. Set by the
	// Registry from its clock; ignored on input.
	Heartbeat time.Time `json:"heartbeat"`
}

// Load is a worker's report of its usage.
type Load struct {
	AllocatedMB int `json:"allocated_mb"`
	Sandboxes   int `json:"sandboxes"`
	InFlight    int `json:"in_flight"`
}

// Placement converts a registration into the pure placement view. The
// caller may replace the load with its own, fresher accounting.
func (r *Registration) Placement() placement.Worker {
	st := placement.Ready
	if r.Draining {
		st = placement.Draining
	}
	return placement.Worker{
		ID: r.ID, MemoryMB: r.MemoryMB, CPUMillis: r.CPUMillis,
		AllocatedMB: r.Load.AllocatedMB, Sandboxes: r.Load.Sandboxes, InFlight: r.Load.InFlight,
		State: st, LastHeartbeat: r.Heartbeat,
	}
}

// Config configures a Registry.
type Config struct {
	// TTL is how long a registration lives without a heartbeat.
	TTL time.Duration
	// Replicas of the bucket (1 on a single node, 3 in a cluster).
	Replicas int
	// Clock stamps heartbeats; nil means clock.Real.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns a 15 s TTL on one replica.
func DefaultConfig() Config { return Config{TTL: 15 * time.Second, Replicas: 1} }

// Registry reads and writes worker registrations. Safe for concurrent use.
type Registry struct {
	kv    jetstream.KeyValue
	clock clock.Clock
	log   *slog.Logger
	ttl   time.Duration
}

// Open creates or updates the bucket and returns a Registry over it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Registry, error) {
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("fleet: TTL must be positive: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         BucketName,
		Description:    "ignis worker registrations (TTL = heartbeat timeout)",
		History:        1,
		TTL:            cfg.TTL,
		LimitMarkerTTL: cfg.TTL,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: opening bucket %s: %w", BucketName, err)
	}
	return &Registry{kv: kv, clock: cfg.Clock, log: cfg.Logger.With("component", "fleet"), ttl: cfg.TTL}, nil
}

// Register publishes (or replaces) a worker's registration, stamped with
// the current time. Idempotent.
func (r *Registry) Register(ctx context.Context, reg Registration) error {
	if reg.ID == "" {
		return fmt.Errorf("fleet: registering worker: empty ID: %w", errdefs.ErrInvalidArgument)
	}
	reg.Heartbeat = r.clock.Now()
	if reg.Started.IsZero() {
		reg.Started = reg.Heartbeat
	}
	b, err := json.Marshal(reg)
	if err != nil {
		return fmt.Errorf("fleet: encoding worker %s: %w", reg.ID, err)
	}
	if _, err := r.kv.Put(ctx, reg.ID, b); err != nil {
		return fmt.Errorf("fleet: registering worker %s: %w", reg.ID, err)
	}
	r.log.InfoContext(ctx, "worker registered", "worker", reg.ID, "memory_mb", reg.MemoryMB, "cpu_millis", reg.CPUMillis)
	return nil
}

// Heartbeat refreshes a registration and records its load. It fails with
// errdefs.ErrNotFound when the registration expired or was removed (the
// worker must Register again), and with errdefs.ErrConflict if it raced
// with another writer (retry).
func (r *Registry) Heartbeat(ctx context.Context, id string, load Load) error {
	return r.update(ctx, id, func(reg *Registration) { reg.Load = load })
}

// SetDraining marks a worker as draining (or not). Same errors as Heartbeat.
func (r *Registry) SetDraining(ctx context.Context, id string, draining bool) error {
	return r.update(ctx, id, func(reg *Registration) { reg.Draining = draining })
}

func (r *Registry) update(ctx context.Context, id string, f func(*Registration)) error {
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("fleet: updating worker %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("fleet: reading worker %s: %w", id, err)
	}
	var reg Registration
	if err := json.Unmarshal(e.Value(), &reg); err != nil {
		return fmt.Errorf("fleet: decoding worker %s: %w", id, err)
	}
	f(&reg)
	reg.Heartbeat = r.clock.Now()
	b, err := json.Marshal(reg)
	if err != nil {
		return fmt.Errorf("fleet: encoding worker %s: %w", id, err)
	}
	if _, err := r.kv.Update(ctx, id, b, e.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("fleet: updating worker %s: %w: %w", id, errdefs.ErrConflict, err)
		}
		return fmt.Errorf("fleet: updating worker %s: %w", id, err)
	}
	return nil
}

// Deregister removes a worker's registration. Idempotent.
func (r *Registry) Deregister(ctx context.Context, id string) error {
	if err := r.kv.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("fleet: deregistering worker %s: %w", id, err)
	}
	return nil
}

// Get returns one registration, or errdefs.ErrNotFound.
func (r *Registry) Get(ctx context.Context, id string) (Registration, error) {
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Registration{}, fmt.Errorf("fleet: worker %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Registration{}, fmt.Errorf("fleet: reading worker %s: %w", id, err)
	}
	var reg Registration
	if err := json.Unmarshal(e.Value(), &reg); err != nil {
		return Registration{}, fmt.Errorf("fleet: decoding worker %s: %w", id, err)
	}
	return reg, nil
}

// List returns every live registration, sorted by ID.
func (r *Registry) List(ctx context.Context) ([]Registration, error) {
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: listing workers: %w", err)
	}
	var out []Registration
	for k := range lister.Keys() {
		reg, err := r.Get(ctx, k)
		if errdefs.IsNotFound(err) {
			continue // expired between list and get
		}
		if err != nil {
			_ = lister.Stop()
			return nil, err
		}
		out = append(out, reg)
	}
	slices.SortFunc(out, func(a, b Registration) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Op is the kind of a watch Event.
type Op uint8

const (
	// OpPut: a worker registered or heartbeated; Event.Worker is set.
	OpPut Op = iota + 1
	// OpDelete: a worker deregistered or its registration expired.
	OpDelete
	// OpSynced: every registration that existed when Watch started has
	// been delivered.
	OpSynced
)

// Event is one change seen by Watch.
type Event struct {
	Op     Op
	ID     string
	Worker Registration // for OpPut
}

// Watch streams registrations: first every current one (OpPut each), then
// OpSynced, then changes as they happen. The channel is closed when ctx ends
// or the watch fails (logged). Entries that fail to decode are logged and
// skipped.
func (r *Registry) Watch(ctx context.Context) (<-chan Event, error) {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: watching workers: %w", err)
	}
	out := make(chan Event, 16)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			}
			var ev Event
			switch {
			case e == nil:
				ev = Event{Op: OpSynced}
			case e.Operation() != jetstream.KeyValuePut:
				ev = Event{Op: OpDelete, ID: e.Key()}
			default:
				ev = Event{Op: OpPut, ID: e.Key()}
				if err := json.Unmarshal(e.Value(), &ev.Worker); err != nil {
					r.log.WarnContext(ctx, "skipping undecodable registration", "worker", e.Key(), "error", err)
					continue
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// KeepAlive registers reg and heartbeats every interval with load() until
// ctx ends, re-registering if the entry expired, after calling lapsed (if
// not nil): the worker destroys its sandboxes there, which assignment
// forgot when the registration lapsed. It returns ctx's error. The worker
// runs it for its whole life.
func (r *Registry) KeepAlive(ctx context.Context, reg Registration, interval time.Duration, load func() Load, lapsed func(context.Context)) error {
	if err := r.Register(ctx, reg); err != nil {
		return err
	}
	t := r.clock.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
		}
		l := load()
		err := r.Heartbeat(ctx, reg.ID, l)
		if errdefs.IsNotFound(err) {
			r.log.WarnContext(ctx, "registration expired; registering again", "worker", reg.ID)
			if lapsed != nil {
				// Assignment dropped the worker's sandboxes when the
				// registration lapsed: they belong to nobody now.
				lapsed(ctx)
				l = load()
			}
			reg.Load = l
			err = r.Register(ctx, reg)
		}
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "heartbeat failed", "worker", reg.ID, "error", err)
		}
		t.Reset(interval)
	}
}
