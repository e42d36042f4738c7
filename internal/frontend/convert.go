package frontend

import (
	"slices"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/registry"
)

// lastModifiedFormat is Lambda's LastModified string format.
const lastModifiedFormat = "2006-01-02T15:04:05.000-0700"

// arnStyle says how FunctionArn is qualified in a response (spec §1.5).
type arnStyle int

const (
	// arnByVersion: unqualified for $LATEST, ":N" for versions.
	arnByVersion arnStyle = iota
	// arnAlwaysQualified: ":$LATEST" too (ListVersionsByFunction).
	arnAlwaysQualified
)

func (f *Frontend) functionConfiguration(c *registry.FunctionConfig, style arnStyle) api.FunctionConfiguration {
	arn := f.arns.Function(c.Name)
	if c.Version != registry.Latest || style == arnAlwaysQualified {
		arn = f.arns.Qualified(c.Name, c.Version)
	}
	out := api.FunctionConfiguration{
		FunctionName:     c.Name,
		FunctionArn:      arn,
		Runtime:          c.Runtime,
		Role:             c.Role,
		Handler:          c.Handler,
		CodeSize:         c.CodeSize,
		Description:      c.Description,
		Timeout:          c.Timeout,
		MemorySize:       c.MemorySize,
		LastModified:     c.LastModified.UTC().Format(lastModifiedFormat),
		CodeSha256:       c.CodeSha256,
		Version:          c.Version,
		KMSKeyArn:        c.KMSKeyArn,
		TracingConfig:    api.TracingConfig{Mode: c.TracingMode},
		RevisionId:       c.RevisionId,
		State:            c.EffectiveState(),
		StateReason:      c.StateReason,
		StateReasonCode:  c.StateReasonCode,
		LastUpdateStatus: c.LastUpdateStatus(),
		PackageType:      c.PackageType,
		Architectures:    slices.Clone(c.Architectures),
		EphemeralStorage: api.EphemeralStorage{Size: c.EphemeralStorageSize},
		SnapStart:        api.SnapStartResponse{ApplyOn: c.SnapStartApplyOn, OptimizationStatus: optimizationStatus(c)},
		LoggingConfig: api.LoggingConfig{
			LogFormat:           c.Logging.LogFormat,
			ApplicationLogLevel: c.Logging.ApplicationLogLevel,
			SystemLogLevel:      c.Logging.SystemLogLevel,
			LogGroup:            c.Logging.LogGroup,
		},
	}
	switch c.EffectiveState() {
	case registry.StatePending:
		out.LastUpdateStatusReason = c.StateReason
	case registry.StateFailed:
		// The FunctionError.* and InternalError codes are in both
		// enums; Creating is only a StateReasonCode.
		out.LastUpdateStatusReason, out.LastUpdateStatusReasonCode = c.StateReason, c.StateReasonCode
	}
	if len(c.Environment) > 0 {
		out.Environment = &api.EnvironmentResponse{Variables: c.Environment}
	}
	if c.DeadLetterTargetArn != "" {
		out.DeadLetterConfig = &api.DeadLetterConfig{TargetArn: c.DeadLetterTargetArn}
	}
	return out
}

func (f *Frontend) aliasConfiguration(a *registry.Alias) api.AliasConfiguration {
	out := api.AliasConfiguration{
		AliasArn:        f.arns.Qualified(a.FunctionName, a.Name),
		Name:            a.Name,
		FunctionVersion: a.FunctionVersion,
		Description:     a.Description,
		RevisionId:      a.RevisionId,
	}
	if len(a.AdditionalVersionWeights) > 0 {
		out.RoutingConfig = &api.AliasRoutingConfiguration{AdditionalVersionWeights: a.AdditionalVersionWeights}
	}
	return out
}

// optimizationStatus is SnapStart.OptimizationStatus: On only for a
// published version that has its snapshot.
func optimizationStatus(c *registry.FunctionConfig) string {
	if c.SnapStartOptimized {
		return "On"
	}
	return "Off"
}
