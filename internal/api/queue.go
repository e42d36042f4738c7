package api

// QueueMessage is one message of an Ignis queue, SQS-shaped: an element of
// the Messages array that POST /_ignis/queues/{name}/receive answers.
type QueueMessage struct {
	MessageId string `json:"MessageId"`
	Body      string `json:"Body"`
	// MessageAttributes are string attributes (e.g. the RequestID,
	// ErrorCode and ErrorMessage of a dead letter).
	MessageAttributes map[string]string `json:"MessageAttributes,omitempty"`
	// SentTimestamp is when the message was stored (unix milliseconds).
	SentTimestamp int64 `json:"SentTimestamp"`
}
