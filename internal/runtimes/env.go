package runtimes

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strconv"
	"time"
)

// EnvInput is what Env needs to build a runtime's environment.
type EnvInput struct {
	FunctionName string
	Version      string // "$LATEST" or "N"; default $LATEST
	MemoryMB     int
	Handler      string
	Runtime      string // e.g. python3.11, nodejs20.x, provided.al2023
	Region       string // default us-east-1
	// LogGroup defaults to /aws/lambda/<FunctionName>; LogStream to
	// YYYY/MM/DD/[<Version>]<32 hex> (random, from Now).
	LogGroup  string
	LogStream string
	// InitType: on-demand (default), provisioned-concurrency, snap-start.
	InitType string
	// LogFormat (Text|JSON) and LogLevel set AWS_LAMBDA_LOG_FORMAT / _LEVEL
	// when given.
	LogFormat string
	LogLevel  string
	// RuntimeAPI is host:port of the Runtime API (default 127.0.0.1:9001).
	RuntimeAPI string
	// TaskRoot and RuntimeDir default to /var/task and /var/runtime; native
	// runs point them at host directories.
	TaskRoot   string
	RuntimeDir string
	// Credentials, when set, become AWS_ACCESS_KEY_ID & co.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// UserVars are the function's Environment.Variables. Reserved keys in
	// it are ignored; unreserved defaults (PATH, LANG…) may be overridden.
	UserVars map[string]string
	// Now stamps the default log stream name; zero means time.Now.
	Now time.Time
}

// reserved are the keys only the platform sets (spec §5.6).
var reserved = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY_ID": true,
	"AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_LAMBDA_RUNTIME_API": true,
	"LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true, "TZ": true,
}

// IsReserved reports whether key is a reserved Lambda environment variable
// that a function may not set.
func IsReserved(key string) bool { return reserved[key] }

// Env returns the runtime's complete environment as KEY=VALUE, sorted by
// key: unreserved defaults, overridden by the user's variables, overridden
// by the reserved keys. AWS_EXECUTION_ENV is unset for provided runtimes.
func Env(in EnvInput) []string {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	version := def(in.Version, "$LATEST")
	region := def(in.Region, "us-east-1")
	taskRoot := def(in.TaskRoot, DefaultTaskRoot)
	runtimeDir := def(in.RuntimeDir, DefaultRuntimeDir)
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}

	m := map[string]string{
		"LANG":                     "en_US.UTF-8",
		"PATH":                     "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LD_LIBRARY_PATH":          "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
		"AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
		"AWS_XRAY_DAEMON_ADDRESS":  "169.254.79.129:2000",
		"_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
		"_AWS_XRAY_DAEMON_PORT":    "2000",
	}
	if nm := nodeRuntime.FindStringSubmatch(in.Runtime); nm != nil {
		m["NODE_PATH"] = "/opt/nodejs/node" + nm[1] + "/node_modules:/opt/nodejs/node_modules:" + runtimeDir + "/node_modules:" + runtimeDir + ":" + taskRoot
	}
	if in.LogFormat != "" {
		m["AWS_LAMBDA_LOG_FORMAT"] = in.LogFormat
	}
	if in.LogLevel != "" {
		m["AWS_LAMBDA_LOG_LEVEL"] = in.LogLevel
	}
	for k, v := range in.UserVars {
		if !reserved[k] {
			m[k] = v
		}
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("_HANDLER", in.Handler)
	set("AWS_REGION", region)
	set("AWS_DEFAULT_REGION", region)
	if !IsProvided(in.Runtime) && in.Runtime != "" {
		set("AWS_EXECUTION_ENV", "AWS_Lambda_"+in.Runtime)
	}
	set("AWS_LAMBDA_FUNCTION_NAME", in.FunctionName)
	if in.MemoryMB > 0 {
		set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(in.MemoryMB))
	}
	set("AWS_LAMBDA_FUNCTION_VERSION", version)
	set("AWS_LAMBDA_INITIALIZATION_TYPE", def(in.InitType, "on-demand"))
	if in.InitType != "snap-start" {
		// SnapStart environments lack the log variables (spec §5.6).
		set("AWS_LAMBDA_LOG_GROUP_NAME", def(in.LogGroup, "/aws/lambda/"+in.FunctionName))
		set("AWS_LAMBDA_LOG_STREAM_NAME", def(in.LogStream, LogStreamName(now, version)))
	}
	set("AWS_ACCESS_KEY_ID", in.AccessKeyID)
	set("AWS_SECRET_ACCESS_KEY", in.SecretAccessKey)
	set("AWS_SESSION_TOKEN", in.SessionToken)
	set("AWS_LAMBDA_RUNTIME_API", def(in.RuntimeAPI, "127.0.0.1:9001"))
	set("LAMBDA_TASK_ROOT", taskRoot)
	set("LAMBDA_RUNTIME_DIR", runtimeDir)
	set("TZ", ":UTC")

	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// LogStreamName returns a Lambda-style log stream name:
// YYYY/MM/DD/[<version>]<32 random hex digits>.
func LogStreamName(t time.Time, version string) string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	return t.UTC().Format("2006/01/02") + "/[" + version + "]" + hex.EncodeToString(r[:])
}
