package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names. They are part of the on-disk format.
const (
	bucketFunctions   = "ignis_functions"
	bucketVersions    = "ignis_versions"
	bucketAliases     = "ignis_aliases"
	bucketConcurrency = "ignis_concurrency"
	bucketCode        = "ignis_code"
	bucketURLs        = "ignis_function_urls"
	bucketURLIDs      = "ignis_function_url_ids"

	keyReserved = "reserved"

	// casAttempts bounds read-modify-write retries under contention.
	casAttempts = 32
)

// functionRecord is the value under NAME in ignis_functions.
type functionRecord struct {
	Latest FunctionConfig `json:"latest"`
	// VersionCounter is the last version number handed out; never decreases.
	VersionCounter int `json:"versionCounter"`
	// PublishedFrom is Latest.RevisionId when version PublishedVersion was
	// published; equal values mean nothing changed since (publish is a no-op).
	PublishedFrom    string            `json:"publishedFrom,omitempty"`
	PublishedVersion int               `json:"publishedVersion,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	Created          time.Time         `json:"created"`
}

// stores holds the JetStream handles of the registry.
type stores struct {
	functions   jetstream.KeyValue
	versions    jetstream.KeyValue
	aliases     jetstream.KeyValue
	concurrency jetstream.KeyValue
	urls        jetstream.KeyValue
	urlIDs      jetstream.KeyValue
	code        jetstream.ObjectStore
}

func openStores(ctx context.Context, js jetstream.JetStream, replicas int) (*stores, error) {
	kv := func(name, desc string) (jetstream.KeyValue, error) {
		b, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: desc,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("opening bucket %s: %w", name, err)
		}
		if replicas > 1 {
			// A direct get is answered by any replica, also one that has
			// not applied the last write yet: a function just created
			// could be "not found" by the next request. Reads go to the
			// stream's leader instead.
			return leaderReads(ctx, js, b)
		}
		return b, nil
	}
	var s stores
	var err error
	if s.functions, err = kv(bucketFunctions, "Ignis functions ($LATEST)"); err != nil {
		return nil, err
	}
	if s.versions, err = kv(bucketVersions, "Ignis published function versions"); err != nil {
		return nil, err
	}
	if s.aliases, err = kv(bucketAliases, "Ignis function aliases"); err != nil {
		return nil, err
	}
	if s.concurrency, err = kv(bucketConcurrency, "Ignis reserved concurrency"); err != nil {
		return nil, err
	}
	if s.urls, err = kv(bucketURLs, "Ignis function URL configs"); err != nil {
		return nil, err
	}
	if s.urlIDs, err = kv(bucketURLIDs, "Ignis function URL ids"); err != nil {
		return nil, err
	}
	s.code, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      bucketCode,
		Description: "Ignis code packages by SHA-256",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("opening object store %s: %w", bucketCode, err)
	}
	if replicas > 1 {
		// As for the buckets: a worker on another node must find a
		// package the moment its function exists.
		if err := noDirectGets(ctx, js, "OBJ_"+bucketCode); err != nil {
			return nil, err
		}
		if s.code, err = js.ObjectStore(ctx, bucketCode); err != nil {
			return nil, fmt.Errorf("opening object store %s: %w", bucketCode, err)
		}
	}
	return &s, nil
}

// leaderReads turns direct gets off on bucket b's stream and returns a
// handle bound again, which reads through the leader.
func leaderReads(ctx context.Context, js jetstream.JetStream, b jetstream.KeyValue) (jetstream.KeyValue, error) {
	if err := noDirectGets(ctx, js, "KV_"+b.Bucket()); err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, b.Bucket())
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", b.Bucket(), err)
	}
	return kv, nil
}

// noDirectGets makes stream name answer reads through its leader only.
func noDirectGets(ctx context.Context, js jetstream.JetStream, name string) error {
	// Just created by this node or another, the stream may not be known
	// to this node's view of the cluster yet.
	var st jetstream.Stream
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		st, err = js.Stream(ctx, name)
		if err == nil || !errors.Is(err, jetstream.ErrStreamNotFound) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("turning direct gets off on %s: %w", name, err)
	}
	return nil
}

// getJSON reads key into v and returns its revision. A missing key returns
// jetstream.ErrKeyNotFound (callers turn it into a user-facing NotFound).
func getJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decoding %s/%s: %w", kv.Bucket(), key, err)
	}
	return e.Revision(), nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs and maps are marshalled here.
		panic(fmt.Sprintf("registry: encoding %T: %v", v, err))
	}
	return b
}

// keysWithPrefix lists the keys of kv under "prefix.>", sorted by the
// server (stream order).
func keysWithPrefix(ctx context.Context, kv jetstream.KeyValue, prefix string) ([]string, error) {
	var l jetstream.KeyLister
	var err error
	if prefix == "" {
		l, err = kv.ListKeys(ctx)
	} else {
		l, err = kv.ListKeysFiltered(ctx, prefix+".>")
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", kv.Bucket(), err)
	}
	defer l.Stop()
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// isRevisionMismatch reports a lost compare-and-set race.
func isRevisionMismatch(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}
