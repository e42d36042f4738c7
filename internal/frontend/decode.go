package frontend

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/registry"
)

// decodeBody decodes a JSON request body into v. An empty body decodes as
// {}. Unknown members are ignored (as AWS does); malformed JSON or a member
// of the wrong type is InvalidRequestContentException.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalidContent("Could not parse request body into json: Cannot deserialize value of type %s for member '%s'", te.Value, te.Field)
		}
		return invalidContent("Could not parse request body into json: %v", err)
	}
	return nil
}

// listInput reads Marker and MaxItems.
func listInput(r *http.Request) (registry.ListInput, error) {
	q := r.URL.Query()
	in := registry.ListInput{Marker: q.Get("Marker")}
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return in, invalidParam("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000", s)
		}
		in.MaxItems = n
	}
	return in, nil
}

// Conversions from decoded requests to registry inputs. They are pure so
// the fuzz target can drive them.

func createInput(req *api.CreateFunctionRequest) registry.CreateFunctionInput {
	in := registry.CreateFunctionInput{
		Name:          req.FunctionName,
		PackageType:   req.PackageType,
		Architectures: req.Architectures,
		Publish:       req.Publish,
		Tags:          req.Tags,
	}
	in.Config = registry.ConfigInput{
		Role:        &req.Role,
		Runtime:     &req.Runtime,
		Handler:     &req.Handler,
		Description: &req.Description,
		Timeout:     req.Timeout,
		MemorySize:  req.MemorySize,
		KMSKeyArn:   &req.KMSKeyArn,
	}
	if req.Environment != nil {
		in.Config.Environment = &req.Environment.Variables
	}
	if req.EphemeralStorage != nil {
		in.Config.EphemeralStorageSize = &req.EphemeralStorage.Size
	}
	if req.TracingConfig != nil && req.TracingConfig.Mode != "" {
		in.Config.TracingMode = &req.TracingConfig.Mode
	}
	if req.Layers != nil {
		in.Config.Layers = &req.Layers
	}
	if req.DeadLetterConfig != nil {
		in.Config.DeadLetterTargetArn = &req.DeadLetterConfig.TargetArn
	}
	if req.SnapStart != nil && req.SnapStart.ApplyOn != "" {
		in.Config.SnapStartApplyOn = &req.SnapStart.ApplyOn
	}
	if req.VpcConfig != nil {
		in.Config.SubnetIds, in.Config.SecurityGroupIds = &req.VpcConfig.SubnetIds, &req.VpcConfig.SecurityGroupIds
	}
	if req.LoggingConfig != nil {
		in.Config.Logging = loggingInput(req.LoggingConfig)
	}
	if req.Code != nil {
		in.ZipFile = req.Code.ZipFile
		switch {
		case req.Code.ImageUri != "":
			in.OtherCodeSource = "ImageUri"
		case req.Code.S3Bucket != "" || req.Code.S3Key != "":
			in.OtherCodeSource = "S3Bucket/S3Key"
		}
	}
	return in
}

func loggingInput(l *api.LoggingConfig) *registry.Logging {
	return &registry.Logging{
		LogFormat:           l.LogFormat,
		ApplicationLogLevel: l.ApplicationLogLevel,
		SystemLogLevel:      l.SystemLogLevel,
		LogGroup:            l.LogGroup,
	}
}

func updateConfigInput(req *api.UpdateFunctionConfigurationRequest) registry.UpdateConfigInput {
	c := registry.ConfigInput{
		Role:        req.Role,
		Runtime:     req.Runtime,
		Handler:     req.Handler,
		Description: req.Description,
		Timeout:     req.Timeout,
		MemorySize:  req.MemorySize,
		KMSKeyArn:   req.KMSKeyArn,
	}
	if req.Environment != nil {
		env := req.Environment.Variables
		if env == nil {
			env = map[string]string{}
		}
		c.Environment = &env
	}
	if req.EphemeralStorage != nil {
		c.EphemeralStorageSize = &req.EphemeralStorage.Size
	}
	if req.TracingConfig != nil && req.TracingConfig.Mode != "" {
		c.TracingMode = &req.TracingConfig.Mode
	}
	if req.Layers != nil {
		c.Layers = &req.Layers
	}
	if req.DeadLetterConfig != nil {
		c.DeadLetterTargetArn = &req.DeadLetterConfig.TargetArn
	}
	if req.SnapStart != nil && req.SnapStart.ApplyOn != "" {
		c.SnapStartApplyOn = &req.SnapStart.ApplyOn
	}
	if req.VpcConfig != nil {
		c.SubnetIds, c.SecurityGroupIds = &req.VpcConfig.SubnetIds, &req.VpcConfig.SecurityGroupIds
	}
	if req.LoggingConfig != nil {
		c.Logging = loggingInput(req.LoggingConfig)
	}
	return registry.UpdateConfigInput{Config: c, RevisionId: req.RevisionId}
}

func updateCodeInput(req *api.UpdateFunctionCodeRequest) registry.UpdateCodeInput {
	in := registry.UpdateCodeInput{
		ZipFile:       req.ZipFile,
		Architectures: req.Architectures,
		Publish:       req.Publish,
		DryRun:        req.DryRun,
		RevisionId:    req.RevisionId,
	}
	switch {
	case req.ImageUri != "":
		in.OtherCodeSource = "ImageUri"
	case req.S3Bucket != "" || req.S3Key != "":
		in.OtherCodeSource = "S3Bucket/S3Key"
	}
	return in
}

func aliasInput(version, description *string, routing *api.AliasRoutingConfiguration, revision string) registry.AliasInput {
	in := registry.AliasInput{FunctionVersion: version, Description: description, RevisionId: revision}
	if routing != nil {
		w := routing.AdditionalVersionWeights
		if w == nil {
			w = map[string]float64{}
		}
		in.Weights = &w
	}
	return in
}
