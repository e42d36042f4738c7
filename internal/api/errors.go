package api

// AWS error type names written to the X-Amzn-ErrorType header (spec §3.2).
const (
	ErrInvalidParameterValue = "InvalidParameterValueException"
	ErrInvalidRequestContent = "InvalidRequestContentException"
	ErrResourceNotFound      = "ResourceNotFoundException"
	ErrResourceConflict      = "ResourceConflictException"
	ErrPreconditionFailed    = "PreconditionFailedException"
	ErrRequestTooLarge       = "RequestTooLargeException"
	ErrUnsupportedMediaType  = "UnsupportedMediaTypeException"
	ErrTooManyRequests       = "TooManyRequestsException"
	ErrService               = "ServiceException"
	ErrResourceNotReady      = "ResourceNotReadyException"
	ErrInvalidSignature      = "InvalidSignatureException"
	ErrUnrecognizedClient    = "UnrecognizedClientException"
	ErrMissingAuthToken      = "MissingAuthenticationTokenException"
	ErrUnknownOperation      = "UnknownOperationException"
	ErrCodeStorageExceeded   = "CodeStorageExceededException"
	ErrSnapStartNotReady     = "SnapStartNotReadyException"
	ErrSnapStart             = "SnapStartException"
)

// ErrorBody is the JSON body of every error response. Both message keys are
// emitted because the SDK decodes typed errors with the model's exact casing,
// which differs per exception (spec §3.1 point 4).
type ErrorBody struct {
	Type       string `json:"Type"`
	Message    string `json:"Message"`
	MessageLow string `json:"message"`
	Reason     string `json:"Reason,omitempty"`
}
