package patterns

import (
	"errors"
	"fmt"
	"net"

	"github.com/aws/smithy-go"

	"github.com/courier-aws/courier/patterns/filter"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrInvalidMessage: a message SQS or SNS would refuse (empty body,
	// disallowed characters, bad attribute, bad delay).
	ErrInvalidMessage = errors.New("courier: invalid message")
	// ErrMessageTooLarge: body plus attributes exceed the destination's limit.
	ErrMessageTooLarge = errors.New("courier: message too large")
	// ErrTooManyAttributes: more than the ten attributes SQS and SNS allow,
	// counting courier's own.
	ErrTooManyAttributes = errors.New("courier: too many message attributes")
	// ErrMalformedEnvelope: a body that is an SNS notification but cannot be read.
	ErrMalformedEnvelope = errors.New("courier: malformed SNS envelope")
	// ErrInvalidFilterPolicy: a filter policy SNS would refuse (the same
	// value as filter.ErrInvalidPolicy).
	ErrInvalidFilterPolicy = filter.ErrInvalidPolicy
	// ErrMalformedMessage: a received message whose courier attributes cannot be read.
	ErrMalformedMessage = errors.New("courier: malformed message")
	// ErrInvalidQueueURL: a queue URL that is not one.
	ErrInvalidQueueURL = errors.New("courier: invalid queue URL")
	// ErrInvalidDestination: a recipient-list destination that is neither
	// a queue URL nor an SNS topic ARN.
	ErrInvalidDestination = errors.New("courier: invalid destination")
	// ErrNoRecipients: a recipient list computed no destination for a message.
	ErrNoRecipients = errors.New("courier: no recipients")
	// ErrInvalidGroupID: a missing or malformed FIFO message group id.
	ErrInvalidGroupID = errors.New("courier: invalid message group id")
	// ErrInvalidConfig: a configuration that cannot work.
	ErrInvalidConfig = errors.New("courier: invalid configuration")
	// ErrNotFound: the queue or topic does not exist.
	ErrNotFound = errors.New("courier: queue or topic not found")
	// ErrThrottled: the service throttled the request.
	ErrThrottled = errors.New("courier: throttled")
	// ErrTimeout: the context's deadline passed before the operation completed.
	ErrTimeout = errors.New("courier: timeout")
	// ErrUnknownReturnAddress: a reply addressed to a queue outside the allowlist.
	ErrUnknownReturnAddress = errors.New("courier: return address not allowed")
)

// Kind is what an AWS error means to courier.
type Kind int

const (
	KindUnknown   Kind = iota
	KindRetryable      // transient: try again with the same ids
	KindThrottled      // retryable, and slow down
	KindNotFound       // the queue or topic does not exist
	KindInvalid        // the request is wrong; retrying will not help
	KindAuth           // credentials or permissions
)

// errorKinds classifies AWS error codes in one place (as gocloud's
// errorCodeMap does). Codes come from the SQS, SNS, S3 and DynamoDB API
// references (the services courier calls); SQS speaks JSON and names some
// codes with the awsQuery compatible form too.
var errorKinds = map[string]Kind{
	"ThrottlingException":                     KindThrottled,
	"Throttling":                              KindThrottled,
	"RequestThrottled":                        KindThrottled,
	"KmsThrottled":                            KindThrottled,
	"ProvisionedThroughputExceededException":  KindThrottled, // DynamoDB
	"RequestLimitExceeded":                    KindThrottled, // DynamoDB
	"SlowDown":                                KindThrottled, // S3
	"TransactionConflictException":            KindRetryable, // DynamoDB
	"ServiceUnavailable":                      KindRetryable,
	"InternalError":                           KindRetryable,
	"InternalFailure":                         KindRetryable,
	"RequestTimeout":                          KindRetryable,
	"QueueDoesNotExist":                       KindNotFound,
	"AWS.SimpleQueueService.NonExistentQueue": KindNotFound,
	"NotFound":                                KindNotFound,
	"NotFoundException":                       KindNotFound,
	"ResourceNotFoundException":               KindNotFound,
	"NoSuchKey":                               KindNotFound, // S3
	"NoSuchBucket":                            KindNotFound, // S3
	"InvalidParameterValue":                   KindInvalid,
	"InvalidParameter":                        KindInvalid,
	"InvalidParameterException":               KindInvalid,
	"InvalidAttributeName":                    KindInvalid,
	"InvalidAttributeValue":                   KindInvalid,
	"InvalidMessageContents":                  KindInvalid,
	"InvalidAddress":                          KindInvalid,
	"InvalidSecurity":                         KindInvalid,
	"MissingParameter":                        KindInvalid,
	"UnsupportedOperation":                    KindInvalid,
	"BatchRequestTooLong":                     KindInvalid,
	"BatchEntryIdsNotDistinct":                KindInvalid,
	"TooManyEntriesInBatchRequest":            KindInvalid,
	"ReceiptHandleIsInvalid":                  KindInvalid,
	"MessageNotInflight":                      KindInvalid,
	"AccessDenied":                            KindAuth,
	"AccessDeniedException":                   KindAuth,
	"AuthorizationError":                      KindAuth,
	"InvalidClientTokenId":                    KindAuth,
	"UnrecognizedClientException":             KindAuth,
	"KMSAccessDenied":                         KindAuth,
}

// Classify tells what err means: retryable, throttled, not found, invalid.
func Classify(err error) Kind {
	if err == nil {
		return KindUnknown
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if k := ClassifyCode(ae.ErrorCode()); k != KindUnknown {
			return k
		}
	}
	var re interface{ RetryableError() bool }
	if errors.As(err, &re) && re.RetryableError() {
		return KindRetryable
	}
	var he interface{ HTTPStatusCode() int }
	if errors.As(err, &he) && he.HTTPStatusCode() >= 500 {
		return KindRetryable
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return KindRetryable
	}
	return KindUnknown
}

// ClassifyCode classifies an AWS error code, as found in a batch result entry.
func ClassifyCode(code string) Kind {
	if k, ok := errorKinds[code]; ok {
		return k
	}
	return KindUnknown
}

// sentinelFor maps a kind to the sentinel callers can test with errors.Is.
func sentinelFor(k Kind) error {
	switch k {
	case KindNotFound:
		return ErrNotFound
	case KindThrottled:
		return ErrThrottled
	}
	return nil
}

// OpError is an AWS error with the operation and resource it came from.
// errors.Is works for courier's sentinels (ErrNotFound, ErrThrottled) and
// errors.As for the SDK's typed errors.
type OpError struct {
	Op       string // e.g. "SendMessageBatch"
	Resource string // queue URL or topic ARN
	Err      error
}

func (e *OpError) Error() string { return fmt.Sprintf("courier: %s %s: %v", e.Op, e.Resource, e.Err) }

func (e *OpError) Unwrap() []error {
	if s := sentinelFor(Classify(e.Err)); s != nil {
		return []error{e.Err, s}
	}
	return []error{e.Err}
}

func opError(op, resource string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Resource: resource, Err: err}
}
