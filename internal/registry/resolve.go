package registry

// This file is the registry's contract with the invoke path: Resolve says
// which immutable configuration to run, OpenCode hands out the code.

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// ResolvedVersion is what an invoke needs to know about its target.
//
// For $LATEST or a version number Primary is that configuration and
// Additional is nil. For an alias Primary is the alias's FunctionVersion and,
// when the alias splits traffic, Additional is the second version, to be
// picked with probability AdditionalWeight (see Pick); the caller reports the
// version it ran in X-Amz-Executed-Version.
//
// Configurations are copies: the caller may keep them. A published
// version's configuration never changes; $LATEST's may change right after
// Resolve returns (compare RevisionId to detect it).
type ResolvedVersion struct {
	// FunctionArn is the unqualified ARN; QualifiedArn carries the
	// qualifier as requested ($LATEST when none was given).
	FunctionArn  string
	QualifiedArn string
	// Qualifier is what the caller asked for: "$LATEST", "N" or an alias.
	Qualifier string
	// Alias is the alias name when Qualifier is one, else "".
	Alias            string
	Primary          FunctionConfig
	Additional       *FunctionConfig
	AdditionalWeight float64
}

// Pick returns the configuration to run for a uniform random x in [0,1).
func (r *ResolvedVersion) Pick(x float64) *FunctionConfig {
	if r.Additional != nil && x < r.AdditionalWeight {
		return r.Additional
	}
	return &r.Primary
}

// Resolve maps a function name, partial or full ARN (optionally with a
// :qualifier suffix) and an optional separate qualifier to the
// configuration(s) to run. Errors: errdefs.ErrInvalidArgument for a bad name
// or qualifiers that disagree, errdefs.ErrNotFound for a missing function,
// version or alias.
func (r *Registry) Resolve(ctx context.Context, nameOrARN, qualifier string) (ResolvedVersion, error) {
	ref, err := ParseFunctionRef(nameOrARN, qualifier)
	if err != nil {
		return ResolvedVersion{}, err
	}
	rec, err := r.cachedFunction(ctx, ref.Name)
	if err != nil {
		return ResolvedVersion{}, err
	}
	q := ref.Qualifier
	if q == "" {
		q = Latest
	}
	out := ResolvedVersion{
		FunctionArn:  r.cfg.ARNs.Function(ref.Name),
		QualifiedArn: r.cfg.ARNs.Qualified(ref.Name, q),
		Qualifier:    q,
	}
	switch {
	case q == Latest:
		out.Primary = cloneConfig(rec.Latest)
	case isVersion(q):
		if out.Primary, err = r.cachedVersion(ctx, ref.Name, q); err != nil {
			return ResolvedVersion{}, err
		}
	default:
		a, err := r.cachedAlias(ctx, ref.Name, q)
		if err != nil {
			return ResolvedVersion{}, err
		}
		out.Alias = a.Name
		if a.FunctionVersion == Latest {
			out.Primary = cloneConfig(rec.Latest)
		} else if out.Primary, err = r.cachedVersion(ctx, ref.Name, a.FunctionVersion); err != nil {
			return ResolvedVersion{}, err
		}
		for v, w := range a.AdditionalVersionWeights {
			extra, err := r.cachedVersion(ctx, ref.Name, v)
			if err != nil {
				return ResolvedVersion{}, err
			}
			out.Additional, out.AdditionalWeight = &extra, w
		}
	}
	return out, nil
}

// OpenCode opens a code package by its SHA-256, given as the API's base64
// CodeSha256 or as hex (FunctionConfig.CodeKey). The caller closes the
// reader; size is the zip's length in bytes. A missing package is
// errdefs.ErrNotFound.
func (r *Registry) OpenCode(ctx context.Context, sha256 string) (io.ReadCloser, int64, error) {
	key := sha256
	if len(key) != 64 {
		raw, err := base64.StdEncoding.DecodeString(sha256)
		if err != nil || len(raw) != 32 {
			return nil, 0, invalidf("Invalid code SHA-256 %q", truncate(sha256, 80))
		}
		key = hex.EncodeToString(raw)
	} else if _, err := hex.DecodeString(key); err != nil {
		return nil, 0, invalidf("Invalid code SHA-256 %q", truncate(sha256, 80))
	}
	obj, err := r.s.code.Get(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, notFoundf("Code package not found: %s", key)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("opening code %s: %w", key, err)
	}
	info, err := obj.Info()
	if err != nil {
		obj.Close()
		return nil, 0, fmt.Errorf("reading code info %s: %w", key, err)
	}
	return obj, int64(info.Size), nil
}
