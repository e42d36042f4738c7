package embednats

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// createAttempt bounds one attempt to create a replicated stream.
const createAttempt = 3 * time.Second

// clusterJetStream is the JetStream client of a cluster node. When several
// nodes start at once, each creates the same streams and buckets; in a
// cluster, nats-server answers only one of a set of concurrent identical
// creates and leaves the others without a reply
// (nats-io/nats-server#3677). The stream exists by then, so an attempt
// that times out is made again, until the caller's deadline (or
// ClusterAPITimeout). So is one refused because a peer is not yet online.
type clusterJetStream struct{ jetstream.JetStream }

// ForCluster wraps the JetStream client of a process that shares a NATS
// cluster with others starting at the same time (an external cluster,
// --nats-url): creates that go unanswered are made again.
func ForCluster(js jetstream.JetStream) jetstream.JetStream { return clusterJetStream{js} }

func retryCreate[T any](ctx context.Context, create func(context.Context) (T, error)) (T, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ClusterAPITimeout)
		defer cancel()
	}
	for {
		actx, cancel := context.WithTimeout(ctx, createAttempt)
		v, err := create(actx)
		cancel()
		if err == nil || !retriable(err) || ctx.Err() != nil {
			return v, err
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// noPeers is JetStream's "no suitable peers for placement": right after a
// cluster forms, a peer may not yet count as online for a replicated
// stream.
const noPeers jetstream.ErrorCode = 10005

func retriable(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ae) && ae.ErrorCode == noPeers
}

func (c clusterJetStream) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return retryCreate(ctx, func(ctx context.Context) (jetstream.Stream, error) { return c.JetStream.CreateOrUpdateStream(ctx, cfg) })
}

func (c clusterJetStream) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return retryCreate(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return c.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	})
}

func (c clusterJetStream) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return retryCreate(ctx, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return c.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
	})
}

func (c clusterJetStream) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return retryCreate(ctx, func(ctx context.Context) (jetstream.Stream, error) { return c.JetStream.UpdateStream(ctx, cfg) })
}
