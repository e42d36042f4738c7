package registry

import (
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/ignis-run/ignis/internal/fnspec"
)

// FunctionConfig is the configuration of one version of a function: $LATEST
// (mutable) or a published version (immutable). It is stored as JSON; field
// names are part of the on-disk format, so only add fields.
type FunctionConfig struct {
	Name    string `json:"name"`
	Version string `json:"version"` // "$LATEST" or "N"

	Runtime     string            `json:"runtime"`
	Role        string            `json:"role"`
	Handler     string            `json:"handler"`
	Description string            `json:"description,omitempty"`
	Timeout     int               `json:"timeout"`    // seconds
	MemorySize  int               `json:"memorySize"` // MB
	Environment map[string]string `json:"environment,omitempty"`
	// Architectures holds exactly one of "x86_64", "arm64".
	Architectures        []string `json:"architectures"`
	EphemeralStorageSize int      `json:"ephemeralStorageSize"` // MB of /tmp
	TracingMode          string   `json:"tracingMode"`
	Layers               []string `json:"layers,omitempty"`
	DeadLetterTargetArn  string   `json:"deadLetterTargetArn,omitempty"`
	KMSKeyArn            string   `json:"kmsKeyArn,omitempty"`
	PackageType          string   `json:"packageType"`
	SnapStartApplyOn     string   `json:"snapStartApplyOn"`
	SubnetIds            []string `json:"subnetIds,omitempty"`
	SecurityGroupIds     []string `json:"securityGroupIds,omitempty"`
	Logging              Logging  `json:"logging"`
	// Network is the sandbox network policy, from the function's
	// ignis:network tags when this configuration was written (a published
	// version keeps the policy it was published with, as VpcConfig does).
	Network fnspec.Network `json:"network,omitzero"`

	// CodeSha256 is base64(SHA-256(zip)), as the API shows it.
	CodeSha256 string `json:"codeSha256"`
	// CodeSize is the zip's size in bytes.
	CodeSize int64 `json:"codeSize"`
	// UnzippedSize is the sum of the zip's entry sizes.
	UnzippedSize int64 `json:"unzippedSize"`

	LastModified time.Time `json:"lastModified"`
	RevisionId   string    `json:"revisionId"`

	// State is the version's Lambda State; empty means Active (every
	// configuration written before SnapStart). Only a published version
	// with SnapStart goes through Pending (its snapshot being made) to
	// Active or Failed.
	State           string `json:"state,omitempty"`
	StateReason     string `json:"stateReason,omitempty"`
	StateReasonCode string `json:"stateReasonCode,omitempty"`
	// SnapStartOptimized is SnapStart.OptimizationStatus On: this version
	// has a snapshot, and its environments restore from it.
	SnapStartOptimized bool `json:"snapStartOptimized,omitempty"`
}

// Logging is the LoggingConfig of a function.
type Logging struct {
	LogFormat           string `json:"logFormat"`
	ApplicationLogLevel string `json:"applicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"systemLogLevel,omitempty"`
	LogGroup            string `json:"logGroup"`
}

// CodeKey is the object-store name of the function's code: hex SHA-256.
// OpenCode takes it.
func (c *FunctionConfig) CodeKey() string {
	raw, err := base64.StdEncoding.DecodeString(c.CodeSha256)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(raw)
}

// Alias is a named pointer to a version, optionally splitting traffic with
// a second version.
type Alias struct {
	FunctionName    string `json:"functionName"`
	Name            string `json:"name"`
	FunctionVersion string `json:"functionVersion"`
	Description     string `json:"description,omitempty"`
	// AdditionalVersionWeights holds at most one version → weight in [0,1].
	AdditionalVersionWeights map[string]float64 `json:"additionalVersionWeights,omitempty"`
	RevisionId               string             `json:"revisionId"`
}

// FunctionDetails is what GetFunction returns: the configuration of the
// requested version plus function-wide settings.
type FunctionDetails struct {
	Config FunctionConfig
	Tags   map[string]string
	// ReservedConcurrency is nil when the function has none.
	ReservedConcurrency *int
}

// ConfigInput carries the configuration fields of CreateFunction and
// UpdateFunctionConfiguration. Nil pointers mean "not given": defaults on
// create, unchanged on update.
type ConfigInput struct {
	Role                 *string
	Runtime              *string
	Handler              *string
	Description          *string
	Timeout              *int
	MemorySize           *int
	Environment          *map[string]string
	EphemeralStorageSize *int
	TracingMode          *string
	Layers               *[]string
	DeadLetterTargetArn  *string
	KMSKeyArn            *string
	SnapStartApplyOn     *string
	SubnetIds            *[]string
	SecurityGroupIds     *[]string
	Logging              *Logging
}

// CreateFunctionInput is CreateFunction.
type CreateFunctionInput struct {
	Name          string
	PackageType   string
	Architectures []string
	Config        ConfigInput
	ZipFile       []byte
	// ImageUri or S3 code locations are refused; only ZipFile is supported.
	OtherCodeSource string
	Publish         bool
	Tags            map[string]string
}

// UpdateCodeInput is UpdateFunctionCode.
type UpdateCodeInput struct {
	ZipFile         []byte
	OtherCodeSource string
	Architectures   []string
	Publish         bool
	DryRun          bool
	RevisionId      string
}

// UpdateConfigInput is UpdateFunctionConfiguration.
type UpdateConfigInput struct {
	Config     ConfigInput
	RevisionId string
}

// PublishInput is PublishVersion.
type PublishInput struct {
	CodeSha256  string
	Description string
	RevisionId  string
}

// AliasInput is CreateAlias (all set) and UpdateAlias (nil: unchanged).
type AliasInput struct {
	FunctionVersion *string
	Description     *string
	// Weights nil: unchanged (update) or none (create); non-nil empty map
	// removes the routing config.
	Weights    *map[string]float64
	RevisionId string
}

// ListInput pages a listing. Marker is the opaque NextMarker of the previous
// page; MaxItems 0 means the page limit (50).
type ListInput struct {
	Marker   string
	MaxItems int
}

// AccountSettings is GetAccountSettings.
type AccountSettings struct {
	ConcurrentExecutions           int
	UnreservedConcurrentExecutions int
	TotalCodeSize                  int64
	FunctionCount                  int64
}
