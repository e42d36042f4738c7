package frontend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ignis-run/ignis/internal/api"
	"github.com/ignis-run/ignis/internal/clock"
	"github.com/ignis-run/ignis/internal/registry"
)

// Limits on request bodies (spec §3.2, §4).
const (
	// MaxControlBodyBytes is the largest control-plane request body: a
	// 50 MB zip, base64-encoded, inside JSON.
	MaxControlBodyBytes = 69905067
	// MaxInvokeBodyBytes is the largest synchronous Invoke payload.
	MaxInvokeBodyBytes = 6291456
	// DefaultCodeURLTTL is how long a Code.Location URL stays valid.
	DefaultCodeURLTTL = 10 * time.Minute
)

// Credentials is the key pair requests must be signed with.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// Config configures a Frontend.
type Config struct {
	// Registry is the config service. Required.
	Registry *registry.Registry
	// Credentials every request must be signed with (SigV4). Required.
	Credentials Credentials
	// Invoker runs invocations; nil answers Invoke with 501 ServiceException.
	Invoker Invoker
	// Logs serves CloudWatch Logs JSON requests (POST / with
	// X-Amz-Target: Logs_20140328.*) after SigV4 verification with service
	// "logs"; nil answers them with 501.
	Logs http.Handler
	// FunctionURLPort is the port written into FunctionUrl: that of the
	// listener serving function URLs. "" means the port each control-plane
	// request came in on.
	FunctionURLPort string
	// CodeURLKey signs code download URLs; nil derives one from the secret key.
	CodeURLKey []byte
	// CodeURLTTL is the lifetime of a code download URL; 0 means DefaultCodeURLTTL.
	CodeURLTTL time.Duration
	// MaxClockSkew is the accepted difference between X-Amz-Date and now;
	// 0 means 15 minutes.
	MaxClockSkew time.Duration
	Clock        clock.Clock
	Logger       *slog.Logger
}

// Frontend is the HTTP handler of the AWS-compatible API. It is safe for
// concurrent use.
type Frontend struct {
	cfg     Config
	reg     *registry.Registry
	arns    registry.ARNs
	mux     *http.ServeMux
	log     *slog.Logger
	verify  *verifier
	codeKey []byte
}

// New builds the handler.
func New(cfg Config) (*Frontend, error) {
	if cfg.Registry == nil {
		return nil, errors.New("frontend: Registry is required")
	}
	if cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "" {
		return nil, errors.New("frontend: Credentials are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CodeURLTTL == 0 {
		cfg.CodeURLTTL = DefaultCodeURLTTL
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = 15 * time.Minute
	}
	key := cfg.CodeURLKey
	if key == nil {
		h := sha256.Sum256([]byte("ignis code url\x00" + cfg.Credentials.SecretAccessKey))
		key = h[:]
	}
	f := &Frontend{
		cfg:     cfg,
		reg:     cfg.Registry,
		arns:    cfg.Registry.ARNs(),
		mux:     http.NewServeMux(),
		log:     cfg.Logger.With("component", "frontend"),
		verify:  &verifier{creds: cfg.Credentials, clock: cfg.Clock, skew: cfg.MaxClockSkew},
		codeKey: key,
	}
	f.routes()
	return f, nil
}

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the x-amzn-RequestId of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// ServeHTTP implements http.Handler: request id, body limit, SigV4, route.
func (f *Frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))

	if t, ok := functionURLTarget(r); ok {
		f.serveFunctionURL(w, r, id, t) // authenticated by its AuthType, not always SigV4
		return
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, codePathPrefix) {
		f.mux.ServeHTTP(w, r) // authenticated by its URL token, not SigV4
		return
	}
	body, err := readBody(r, MaxControlBodyBytes)
	if err != nil {
		f.writeError(w, r, err)
		return
	}
	service := "lambda"
	if isLogsRequest(r) {
		service = "logs"
	}
	if err := f.verify.check(r, body, service); err != nil {
		f.writeError(w, r, err)
		return
	}
	r.Body = &bufferedBody{Reader: bytes.NewReader(body), b: body}
	r.ContentLength = int64(len(body))
	f.mux.ServeHTTP(w, r)
}

// bufferedBody is a request body ServeHTTP has read whole (for SigV4):
// handlers take the bytes (body) instead of copying them again, which for
// an invoke payload cost two and a half times its size in allocations.
type bufferedBody struct {
	*bytes.Reader
	b []byte
}

func (*bufferedBody) Close() error { return nil }

func isLogsRequest(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/" && strings.HasPrefix(r.Header.Get("X-Amz-Target"), "Logs_20140328.")
}

// readBody reads the whole body, refusing more than limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	tooLarge := func() error {
		return newAWSError(http.StatusRequestEntityTooLarge, api.ErrRequestTooLarge,
			"Request must be smaller than %d bytes for the %s operation", limit, operationName(r))
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength >= 0 {
		// One allocation of the declared size, instead of io.ReadAll's
		// doublings (a 6 MB payload took 14 of them). net/http has
		// already refused a body shorter or longer than declared.
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, invalidContent("reading request body: %v", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, invalidContent("reading request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge()
	}
	return b, nil
}

// operationName names the operation for size-limit messages.
func operationName(r *http.Request) string {
	switch {
	case strings.HasSuffix(r.URL.Path, "/invocations"):
		return "InvokeFunction"
	case strings.HasSuffix(r.URL.Path, "/code"):
		return "UpdateFunctionCode"
	case r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == "/2015-03-31/functions":
		return "CreateFunction"
	}
	return "requested"
}

// handler adapts an error-returning handler.
func (f *Frontend) handler(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			f.writeError(w, r, err)
		}
	}
}
