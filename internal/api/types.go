package api

import "time"

// FunctionCode is CreateFunctionRequest.Code. ZipFile is base64 in JSON,
// which encoding/json decodes into []byte directly.
type FunctionCode struct {
	ZipFile         []byte `json:"ZipFile,omitempty"`
	S3Bucket        string `json:"S3Bucket,omitempty"`
	S3Key           string `json:"S3Key,omitempty"`
	S3ObjectVersion string `json:"S3ObjectVersion,omitempty"`
	ImageUri        string `json:"ImageUri,omitempty"`
	SourceKMSKeyArn string `json:"SourceKMSKeyArn,omitempty"`
}

// Environment is the Environment member of requests.
type Environment struct {
	Variables map[string]string `json:"Variables"`
}

// EnvironmentResponse is the Environment member of FunctionConfiguration.
type EnvironmentResponse struct {
	Variables map[string]string `json:"Variables,omitempty"`
}

// EphemeralStorage is the size of /tmp in MB.
type EphemeralStorage struct {
	Size int `json:"Size"`
}

// TracingConfig selects X-Ray tracing.
type TracingConfig struct {
	Mode string `json:"Mode,omitempty"`
}

// DeadLetterConfig names the async failure target.
type DeadLetterConfig struct {
	TargetArn string `json:"TargetArn,omitempty"`
}

// LoggingConfig selects log format, levels and group.
type LoggingConfig struct {
	LogFormat           string `json:"LogFormat,omitempty"`
	ApplicationLogLevel string `json:"ApplicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"SystemLogLevel,omitempty"`
	LogGroup            string `json:"LogGroup,omitempty"`
}

// SnapStart is the request member; SnapStartResponse adds the status.
type SnapStart struct {
	ApplyOn string `json:"ApplyOn,omitempty"`
}

// SnapStartResponse is SnapStart in FunctionConfiguration.
type SnapStartResponse struct {
	ApplyOn            string `json:"ApplyOn"`
	OptimizationStatus string `json:"OptimizationStatus"`
}

// VpcConfig is accepted and echoed; Ignis has no VPCs.
type VpcConfig struct {
	SubnetIds        []string `json:"SubnetIds,omitempty"`
	SecurityGroupIds []string `json:"SecurityGroupIds,omitempty"`
}

// Layer is one entry of FunctionConfiguration.Layers.
type Layer struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

// CreateFunctionRequest is the body of POST /2015-03-31/functions.
type CreateFunctionRequest struct {
	FunctionName     string            `json:"FunctionName"`
	Role             string            `json:"Role"`
	Code             *FunctionCode     `json:"Code"`
	Runtime          string            `json:"Runtime"`
	Handler          string            `json:"Handler"`
	PackageType      string            `json:"PackageType"`
	Description      string            `json:"Description"`
	Timeout          *int              `json:"Timeout"`
	MemorySize       *int              `json:"MemorySize"`
	Publish          bool              `json:"Publish"`
	Environment      *Environment      `json:"Environment"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage *EphemeralStorage `json:"EphemeralStorage"`
	Layers           []string          `json:"Layers"`
	TracingConfig    *TracingConfig    `json:"TracingConfig"`
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig"`
	VpcConfig        *VpcConfig        `json:"VpcConfig"`
	KMSKeyArn        string            `json:"KMSKeyArn"`
	Tags             map[string]string `json:"Tags"`
	SnapStart        *SnapStart        `json:"SnapStart"`
	LoggingConfig    *LoggingConfig    `json:"LoggingConfig"`
}

// UpdateFunctionCodeRequest is the body of PUT …/code.
type UpdateFunctionCodeRequest struct {
	ZipFile         []byte   `json:"ZipFile"`
	S3Bucket        string   `json:"S3Bucket"`
	S3Key           string   `json:"S3Key"`
	S3ObjectVersion string   `json:"S3ObjectVersion"`
	ImageUri        string   `json:"ImageUri"`
	Publish         bool     `json:"Publish"`
	DryRun          bool     `json:"DryRun"`
	RevisionId      string   `json:"RevisionId"`
	Architectures   []string `json:"Architectures"`
}

// UpdateFunctionConfigurationRequest is the body of PUT …/configuration.
// Pointers distinguish "absent" from "set to the zero value".
type UpdateFunctionConfigurationRequest struct {
	Role             *string           `json:"Role"`
	Handler          *string           `json:"Handler"`
	Description      *string           `json:"Description"`
	Timeout          *int              `json:"Timeout"`
	MemorySize       *int              `json:"MemorySize"`
	Environment      *Environment      `json:"Environment"`
	Runtime          *string           `json:"Runtime"`
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig"`
	KMSKeyArn        *string           `json:"KMSKeyArn"`
	TracingConfig    *TracingConfig    `json:"TracingConfig"`
	RevisionId       string            `json:"RevisionId"`
	Layers           []string          `json:"Layers"`
	EphemeralStorage *EphemeralStorage `json:"EphemeralStorage"`
	SnapStart        *SnapStart        `json:"SnapStart"`
	LoggingConfig    *LoggingConfig    `json:"LoggingConfig"`
	VpcConfig        *VpcConfig        `json:"VpcConfig"`
}

// FunctionConfiguration is the response of Create/Get*/Update*/PublishVersion
// and the element of ListFunctions/ListVersionsByFunction (spec §1.5).
type FunctionConfiguration struct {
	FunctionName               string               `json:"FunctionName"`
	FunctionArn                string               `json:"FunctionArn"`
	Runtime                    string               `json:"Runtime,omitempty"`
	Role                       string               `json:"Role"`
	Handler                    string               `json:"Handler,omitempty"`
	CodeSize                   int64                `json:"CodeSize"`
	Description                string               `json:"Description"`
	Timeout                    int                  `json:"Timeout"`
	MemorySize                 int                  `json:"MemorySize"`
	LastModified               string               `json:"LastModified"`
	CodeSha256                 string               `json:"CodeSha256"`
	Version                    string               `json:"Version"`
	Environment                *EnvironmentResponse `json:"Environment,omitempty"`
	DeadLetterConfig           *DeadLetterConfig    `json:"DeadLetterConfig,omitempty"`
	KMSKeyArn                  string               `json:"KMSKeyArn,omitempty"`
	TracingConfig              TracingConfig        `json:"TracingConfig"`
	RevisionId                 string               `json:"RevisionId"`
	Layers                     []Layer              `json:"Layers,omitempty"`
	State                      string               `json:"State"`
	StateReason                string               `json:"StateReason,omitempty"`
	StateReasonCode            string               `json:"StateReasonCode,omitempty"`
	LastUpdateStatus           string               `json:"LastUpdateStatus"`
	LastUpdateStatusReason     string               `json:"LastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string               `json:"LastUpdateStatusReasonCode,omitempty"`
	PackageType                string               `json:"PackageType"`
	Architectures              []string             `json:"Architectures"`
	EphemeralStorage           EphemeralStorage     `json:"EphemeralStorage"`
	SnapStart                  SnapStartResponse    `json:"SnapStart"`
	LoggingConfig              LoggingConfig        `json:"LoggingConfig"`
}

// FunctionCodeLocation is GetFunctionResponse.Code.
type FunctionCodeLocation struct {
	RepositoryType string `json:"RepositoryType"`
	Location       string `json:"Location"`
}

// Concurrency is the reserved concurrency of a function (Put request, Put
// and Get responses, GetFunction member). Nil means unset.
type Concurrency struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

// GetFunctionResponse is the response of GET /2015-03-31/functions/{name}.
type GetFunctionResponse struct {
	Configuration FunctionConfiguration `json:"Configuration"`
	Code          FunctionCodeLocation  `json:"Code"`
	Tags          map[string]string     `json:"Tags,omitempty"`
	Concurrency   *Concurrency          `json:"Concurrency,omitempty"`
}

// ListFunctionsResponse is the response of ListFunctions.
type ListFunctionsResponse struct {
	NextMarker string                  `json:"NextMarker,omitempty"`
	Functions  []FunctionConfiguration `json:"Functions"`
}

// ListVersionsByFunctionResponse is the response of ListVersionsByFunction.
type ListVersionsByFunctionResponse struct {
	NextMarker string                  `json:"NextMarker,omitempty"`
	Versions   []FunctionConfiguration `json:"Versions"`
}

// PublishVersionRequest is the body of POST …/versions.
type PublishVersionRequest struct {
	CodeSha256  string `json:"CodeSha256"`
	Description string `json:"Description"`
	RevisionId  string `json:"RevisionId"`
}

// AliasRoutingConfiguration splits traffic between two versions.
type AliasRoutingConfiguration struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights,omitempty"`
}

// CreateAliasRequest is the body of POST …/aliases.
type CreateAliasRequest struct {
	Name            string                     `json:"Name"`
	FunctionVersion string                     `json:"FunctionVersion"`
	Description     string                     `json:"Description"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig"`
}

// UpdateAliasRequest is the body of PUT …/aliases/{Name}.
type UpdateAliasRequest struct {
	FunctionVersion *string                    `json:"FunctionVersion"`
	Description     *string                    `json:"Description"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig"`
	RevisionId      string                     `json:"RevisionId"`
}

// AliasConfiguration is the response of the alias operations.
type AliasConfiguration struct {
	AliasArn        string                     `json:"AliasArn"`
	Name            string                     `json:"Name"`
	FunctionVersion string                     `json:"FunctionVersion"`
	Description     string                     `json:"Description"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
	RevisionId      string                     `json:"RevisionId"`
}

// ListAliasesResponse is the response of ListAliases.
type ListAliasesResponse struct {
	NextMarker string               `json:"NextMarker,omitempty"`
	Aliases    []AliasConfiguration `json:"Aliases"`
}

// PutFunctionConcurrencyRequest is the body of PUT …/concurrency.
type PutFunctionConcurrencyRequest struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions"`
}

// AccountLimit is GetAccountSettingsResponse.AccountLimit.
type AccountLimit struct {
	TotalCodeSize                  int64 `json:"TotalCodeSize"`
	CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
	CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
	ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
	UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
}

// AccountUsage is GetAccountSettingsResponse.AccountUsage.
type AccountUsage struct {
	TotalCodeSize int64 `json:"TotalCodeSize"`
	FunctionCount int64 `json:"FunctionCount"`
}

// GetAccountSettingsResponse is the response of GET /2016-08-19/account-settings.
type GetAccountSettingsResponse struct {
	AccountLimit AccountLimit `json:"AccountLimit"`
	AccountUsage AccountUsage `json:"AccountUsage"`
}

// TagResourceRequest is the body of POST /2017-03-31/tags/{ARN}.
type TagResourceRequest struct {
	Tags map[string]string `json:"Tags"`
}

// ListTagsResponse is the response of GET /2017-03-31/tags/{ARN}.
type ListTagsResponse struct {
	Tags map[string]string `json:"Tags"`
}

// FunctionUrlCors is the Cors member of function URL requests and
// responses.
type FunctionUrlCors struct {
	AllowCredentials bool     `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           int      `json:"MaxAge,omitempty"`
}

// FunctionUrlConfigRequest is the body of Create- (AuthType required) and
// UpdateFunctionUrlConfig (every member optional).
type FunctionUrlConfigRequest struct {
	AuthType   *string          `json:"AuthType"`
	Cors       *FunctionUrlCors `json:"Cors"`
	InvokeMode *string          `json:"InvokeMode"`
}

// FunctionUrlConfig is the response of Create/Get/UpdateFunctionUrlConfig
// and an item of ListFunctionUrlConfigs. Create's has no LastModifiedTime.
type FunctionUrlConfig struct {
	FunctionUrl      string           `json:"FunctionUrl"`
	FunctionArn      string           `json:"FunctionArn"`
	AuthType         string           `json:"AuthType"`
	Cors             *FunctionUrlCors `json:"Cors,omitempty"`
	CreationTime     string           `json:"CreationTime"`
	LastModifiedTime string           `json:"LastModifiedTime,omitempty"`
	InvokeMode       string           `json:"InvokeMode"`
}

// ListFunctionUrlConfigsResponse is ListFunctionUrlConfigs' response.
type ListFunctionUrlConfigsResponse struct {
	FunctionUrlConfigs []FunctionUrlConfig `json:"FunctionUrlConfigs"`
	NextMarker         string              `json:"NextMarker,omitempty"`
}

// FleetWorker is one worker in GET /_ignis/fleet (`ignis fleet`): its
// registration and the assignment service's accounting of it.
type FleetWorker struct {
	ID string `json:"Id"`
	// State is Ready, Draining or Gone (assignment still accounts for it,
	// its registration lapsed).
	State       string    `json:"State"`
	MemoryMB    int       `json:"MemoryMB"`
	CPUMillis   int       `json:"CpuMillis"`
	AllocatedMB int       `json:"AllocatedMB"`
	Sandboxes   int       `json:"Sandboxes"`
	InFlight    int       `json:"InFlight"`
	Heartbeat   time.Time `json:"Heartbeat,omitzero"`
	Started     time.Time `json:"Started,omitzero"`
}
