package registry

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// WatchCode sends the CodeSha256 of $LATEST each time a function is
// created or changed from now on (configuration changes send the same
// hash again), until ctx ends. Workers use it to fetch a new code package
// into their cache while the client is still between its deploy and its
// first invoke: unpacking a package takes 100–200 ms, which the first cold
// start would otherwise wait for.
func (r *Registry) WatchCode(ctx context.Context) (<-chan string, error) {
	w, err := r.s.functions.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("watching functions: %w", err)
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		forEachUpdate(ctx, w, func(e jetstream.KeyValueEntry) bool {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				return true
			}
			var rec functionRecord
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				r.log.Warn("decoding a function record for its code", "function", e.Key(), "err", err)
				return true
			}
			if rec.Latest.CodeSha256 == "" {
				return true
			}
			select {
			case out <- rec.Latest.CodeSha256:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return out, nil
}
