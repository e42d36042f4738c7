package registry

import (
	"github.com/ignis-run/ignis/internal/fnspec"

	"regexp"
	"runtime"
	"slices"
	"strings"
)

// Lambda's limits on function configuration (spec §1.4, §4).
const (
	MinTimeout          = 1
	MaxTimeout          = 900
	DefaultTimeout      = 3
	MinMemorySize       = 128
	MaxMemorySize       = 10240
	DefaultMemorySize   = 128
	MinEphemeralStorage = 512
	MaxEphemeralStorage = 10240
	MaxDescriptionLen   = 256
	MaxHandlerLen       = 128
	MaxEnvironmentBytes = 4096
	MaxLayers           = 5
)

var (
	roleRE     = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	handlerRE  = regexp.MustCompile(`^[^\s]+$`)
	envKeyRE   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
	arnRE      = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*$`)
	logGroupRE = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]{1,512}$`)
)

// reservedEnv are the variables the platform sets (spec §5.6); functions may
// not configure them.
var reservedEnv = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API",
	"LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ",
}

// hostArchitecture is the Lambda name of the architecture functions run on.
func hostArchitecture() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

// newLatest returns the $LATEST configuration with Lambda's defaults.
func newLatest(name string) FunctionConfig {
	return FunctionConfig{
		Name:                 name,
		Version:              Latest,
		Timeout:              DefaultTimeout,
		MemorySize:           DefaultMemorySize,
		Architectures:        []string{hostArchitecture()},
		EphemeralStorageSize: MinEphemeralStorage,
		TracingMode:          "PassThrough",
		PackageType:          "Zip",
		SnapStartApplyOn:     "None",
		Logging:              Logging{LogFormat: "Text", LogGroup: "/aws/lambda/" + name},
	}
}

// apply copies every field set in in onto c.
func (in *ConfigInput) apply(c *FunctionConfig) {
	setIf(&c.Role, in.Role)
	setIf(&c.Runtime, in.Runtime)
	setIf(&c.Handler, in.Handler)
	setIf(&c.Description, in.Description)
	setIf(&c.Timeout, in.Timeout)
	setIf(&c.MemorySize, in.MemorySize)
	if in.Environment != nil {
		c.Environment = cloneMap(*in.Environment)
	}
	setIf(&c.EphemeralStorageSize, in.EphemeralStorageSize)
	setIf(&c.TracingMode, in.TracingMode)
	if in.Layers != nil {
		c.Layers = slices.Clone(*in.Layers)
	}
	setIf(&c.DeadLetterTargetArn, in.DeadLetterTargetArn)
	setIf(&c.KMSKeyArn, in.KMSKeyArn)
	setIf(&c.SnapStartApplyOn, in.SnapStartApplyOn)
	if in.SubnetIds != nil {
		c.SubnetIds = slices.Clone(*in.SubnetIds)
	}
	if in.SecurityGroupIds != nil {
		c.SecurityGroupIds = slices.Clone(*in.SecurityGroupIds)
	}
	if in.Logging != nil {
		l := *in.Logging
		if l.LogFormat == "" {
			l.LogFormat = c.Logging.LogFormat
		}
		if l.LogGroup == "" {
			l.LogGroup = c.Logging.LogGroup
		}
		c.Logging = l
	}
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func constraint(value any, field, rule string) error {
	return invalidf("1 validation error detected: Value '%v' at '%s' failed to satisfy constraint: %s", value, field, rule)
}

// validateConfig checks a complete configuration against Lambda's limits and
// the runtimes this host supports.
func validateConfig(c *FunctionConfig, supported []string) error {
	if c.PackageType != "Zip" {
		return invalidf("PackageType %s is not supported by Ignis; use Zip", c.PackageType)
	}
	if c.Role == "" {
		return constraint("null", "role", "Member must not be null")
	}
	if !roleRE.MatchString(c.Role) {
		return constraint(truncate(c.Role, 200), "role", `Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	}
	if c.Runtime == "" {
		return invalidf("Runtime is required for .zip deployment packages. Supported runtimes: %s", strings.Join(supported, ", "))
	}
	if !slices.Contains(supported, c.Runtime) {
		return invalidf("The runtime parameter of %s is not supported on this host. Supported runtimes: %s", truncate(c.Runtime, 64), strings.Join(supported, ", "))
	}
	if c.Handler == "" && !strings.HasPrefix(c.Runtime, "provided") {
		return invalidf("Handler is required for runtime %s", c.Runtime)
	}
	if len(c.Handler) > MaxHandlerLen {
		return constraint(truncate(c.Handler, 160), "handler", "Member must have length less than or equal to 128")
	}
	if c.Handler != "" && !handlerRE.MatchString(c.Handler) {
		return constraint(c.Handler, "handler", `Member must satisfy regular expression pattern: [^\s]+`)
	}
	if len(c.Description) > MaxDescriptionLen {
		return constraint(truncate(c.Description, 64)+"...", "description", "Member must have length less than or equal to 256")
	}
	if c.Timeout < MinTimeout || c.Timeout > MaxTimeout {
		if c.Timeout < MinTimeout {
			return constraint(c.Timeout, "timeout", "Member must have value greater than or equal to 1")
		}
		return constraint(c.Timeout, "timeout", "Member must have value less than or equal to 900")
	}
	if c.MemorySize < MinMemorySize {
		return constraint(c.MemorySize, "memorySize", "Member must have value greater than or equal to 128")
	}
	if c.MemorySize > MaxMemorySize {
		return constraint(c.MemorySize, "memorySize", "Member must have value less than or equal to 10240")
	}
	if c.EphemeralStorageSize < MinEphemeralStorage || c.EphemeralStorageSize > MaxEphemeralStorage {
		return constraint(c.EphemeralStorageSize, "ephemeralStorage.size", "Member must have value between 512 and 10240")
	}
	if err := validateEnvironment(c.Environment); err != nil {
		return err
	}
	if len(c.Architectures) != 1 {
		return constraint(c.Architectures, "architectures", "Member must have length less than or equal to 1 and greater than or equal to 1")
	}
	if a := c.Architectures[0]; a != "x86_64" && a != "arm64" {
		return constraint(a, "architectures", "Member must satisfy enum value set: [x86_64, arm64]")
	} else if a != hostArchitecture() {
		return invalidf("Architecture %s is not supported on this host; use %s", a, hostArchitecture())
	}
	if c.TracingMode != "Active" && c.TracingMode != "PassThrough" {
		return constraint(c.TracingMode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")
	}
	if len(c.Layers) > MaxLayers {
		return invalidf("Cannot reference more than %d layers.", MaxLayers)
	}
	if len(c.Layers) > 0 {
		return invalidf("Layers are not supported by Ignis yet: %s", truncate(c.Layers[0], 200))
	}
	if c.DeadLetterTargetArn != "" && !arnRE.MatchString(c.DeadLetterTargetArn) {
		return constraint(truncate(c.DeadLetterTargetArn, 200), "deadLetterConfig.targetArn", "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()")
	}
	if c.KMSKeyArn != "" && !arnRE.MatchString(c.KMSKeyArn) {
		return constraint(truncate(c.KMSKeyArn, 200), "kMSKeyArn", "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()")
	}
	if c.SnapStartApplyOn != "None" && c.SnapStartApplyOn != "PublishedVersions" {
		return constraint(c.SnapStartApplyOn, "snapStart.applyOn", "Member must satisfy enum value set: [PublishedVersions, None]")
	}
	return validateLogging(&c.Logging)
}

func validateEnvironment(env map[string]string) error {
	size := 0
	for k, v := range env {
		if !envKeyRE.MatchString(k) {
			return constraint(truncate(k, 100), "environment.variables", "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])* for keys")
		}
		if slices.Contains(reservedEnv, k) {
			return invalidf("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", k)
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvironmentBytes {
		return invalidf("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %d bytes", size)
	}
	return nil
}

func validateLogging(l *Logging) error {
	if l.LogFormat != "Text" && l.LogFormat != "JSON" {
		return constraint(l.LogFormat, "loggingConfig.logFormat", "Member must satisfy enum value set: [JSON, Text]")
	}
	if l.ApplicationLogLevel != "" && !slices.Contains([]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, l.ApplicationLogLevel) {
		return constraint(l.ApplicationLogLevel, "loggingConfig.applicationLogLevel", "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]")
	}
	if l.SystemLogLevel != "" && !slices.Contains([]string{"DEBUG", "INFO", "WARN"}, l.SystemLogLevel) {
		return constraint(l.SystemLogLevel, "loggingConfig.systemLogLevel", "Member must satisfy enum value set: [DEBUG, INFO, WARN]")
	}
	if (l.ApplicationLogLevel != "" || l.SystemLogLevel != "") && l.LogFormat != "JSON" {
		return invalidf("To set ApplicationLogLevel or SystemLogLevel, LogFormat must be JSON")
	}
	if !logGroupRE.MatchString(l.LogGroup) {
		return constraint(truncate(l.LogGroup, 200), "loggingConfig.logGroup", `Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+`)
	}
	return nil
}

// validateTags checks the Tags map of CreateFunction/TagResource.
func validateTags(tags map[string]string) error {
	if len(tags) > 50 {
		return invalidf("Number of tags exceeds resource tag limit of 50")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return invalidf("Tag key %q is invalid", truncate(k, 140))
		}
		if len(v) > 256 {
			return invalidf("Tag value for key %q exceeds 256 characters", k)
		}
	}
	if _, err := fnspec.NetworkFromTags(tags); err != nil {
		return invalidf("Invalid network policy: %s", err)
	}
	return nil
}
