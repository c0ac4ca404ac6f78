package memaws

import (
	"net/http"
	"time"
)

// Call is one request as it reaches the Server, before it takes effect.
type Call struct {
	Service   string // "sqs", "sns" or "s3"
	Operation string // the API name: "SendMessageBatch", "Publish", "PutObject", ...
	Resource  string // queue URL, topic ARN or "bucket/key"; "" when the call names none
	Entries   int    // entries of a batch call, 0 otherwise
	Attempt   int    // 1 for the first time this client sent this request, more for the SDK's retries
	// Body is the request body as sent (read-only): a seeded Injector can
	// decide by content, so that the same message meets the same fault
	// whatever order goroutines ran in.
	Body []byte
}

// Fault is what goes wrong with one Call. The zero Fault is a call that
// succeeds normally.
type Fault struct {
	// Delay holds the call this long before it takes effect (the request's
	// context still ends it).
	Delay time.Duration
	// Hang holds the call until its context ends; nothing takes effect.
	Hang bool
	// Err refuses the whole request before anything takes effect
	// (throttling, a 500).
	Err *APIError
	// FailEntries fails single entries of a batch call by index; the other
	// entries take effect and the request succeeds with these in Failed.
	FailEntries map[int]EntryError
	// LoseResponse lets the call take effect, then drops its response: the
	// client sees a connection reset and cannot tell whether it worked.
	LoseResponse bool
	// Duplicate, on ReceiveMessage from a standard queue, delivers each
	// received message twice: a copy with the same MessageId stays visible
	// and is received again (at-least-once delivery).
	Duplicate bool
}

// merge combines two faults for one call: both delays add, any hang,
// duplicate or lost response holds, the first error and entry failures win.
func (f Fault) merge(g Fault) Fault {
	f.Delay += g.Delay
	f.Hang = f.Hang || g.Hang
	if f.Err == nil {
		f.Err = g.Err
	}
	if len(g.FailEntries) > 0 {
		m := make(map[int]EntryError, len(f.FailEntries)+len(g.FailEntries))
		for i, e := range g.FailEntries {
			m[i] = e
		}
		for i, e := range f.FailEntries {
			m[i] = e
		}
		f.FailEntries = m
	}
	f.LoseResponse = f.LoseResponse || g.LoseResponse
	f.Duplicate = f.Duplicate || g.Duplicate
	return f
}

// EntryError is the failure of one entry of a batch, as SQS and SNS report
// it in the batch result.
type EntryError struct {
	Code        string
	Message     string
	SenderFault bool
}

// Injector decides the fault of each call. It is called with the Server's
// lock not held, from the goroutine that made the call; it must be safe for
// concurrent use.
type Injector interface {
	Inject(Call) Fault
}

// InjectorFunc is an Injector from a function.
type InjectorFunc func(Call) Fault

// Inject calls f.
func (f InjectorFunc) Inject(c Call) Fault { return f(c) }

// APIError is an error response as AWS sends it: an HTTP status, an error
// code and a message. The Server writes it in each service's own format, so
// the SDK decodes it as it would AWS's.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func (e *APIError) senderFault() bool { return e.Status < 500 }

// Throttled is the error AWS answers a request over a rate limit with.
func Throttled(service string) *APIError {
	switch service {
	case "sns":
		return &APIError{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded"}
	case "s3":
		return &APIError{Status: http.StatusServiceUnavailable, Code: "SlowDown", Message: "Please reduce your request rate."}
	}
	return &APIError{Status: http.StatusBadRequest, Code: "ThrottlingException", Message: "Rate exceeded"}
}

// InternalError is a 500 from the service.
func InternalError() *APIError {
	return &APIError{Status: http.StatusInternalServerError, Code: "InternalError", Message: "We encountered an internal error. Please try again."}
}

// ServiceUnavailable is a 503 from the service.
func ServiceUnavailable() *APIError {
	return &APIError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: "The request has failed due to a temporary failure of the server."}
}
