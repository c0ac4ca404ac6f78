package patterns

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Metrics counts and times what courier does: messages sent, received,
// handled, failed and deleted, messages in flight, API requests,
// request-response calls and scatter-gather completions.
// patterns/otelmetric implements it with OpenTelemetry's metric API
// (instruments named by the messaging semantic conventions); patterns
// itself depends on no metrics library. Set it in ProducerOptions.Metrics,
// PublisherOptions.Metrics, ConsumerOptions.Metrics (a Responder's and an
// Aggregator's too), RequesterOptions.Metrics and the Lambda adapter's
// Options.Metrics; count API requests with MetricsMiddleware. Nil: nothing
// is measured, at no cost (no call, no allocation, not even a clock read).
//
// Destinations are queue URLs and topic ARNs, as given to courier (or, in
// Lambda, the queue URL derived from the event source ARN). Methods are
// called from many goroutines at once, and must not block.
type Metrics interface {
	// Sent records one Send (to a queue URL) or Publish (to a topic ARN)
	// that took d: sent messages were accepted, failed were not, and err
	// (nil when failed is 0) says why.
	Sent(ctx context.Context, dest string, sent, failed int, d time.Duration, err error)
	// Received records one ReceiveMessage on queue that took d and
	// brought n messages; err: it failed.
	Received(ctx context.Context, queue string, n int, d time.Duration, err error)
	// Delivered records n messages that AWS Lambda delivered from source
	// (a queue URL or topic ARN) to the Lambda adapter: pushed to it, not
	// received by courier.
	Delivered(ctx context.Context, source string, n int)
	// Processed records the handling of one message from source (a queue
	// URL, or the topic ARN of an SNS event), claim-check resolution and
	// handler included, that took d; err: it failed (a handler error or
	// panic, or a message that could not be decoded), and the message
	// will be delivered again.
	Processed(ctx context.Context, source string, d time.Duration, err error)
	// Deleted records deletes of handled messages from queue
	// (acknowledgements): deleted were confirmed, failed were not, and err
	// (nil when failed is 0) says why. In Lambda the event source mapping
	// deletes what the adapter does not report failed; those count as
	// deleted when the invocation returns.
	Deleted(ctx context.Context, queue string, deleted, failed int, err error)
	// InFlight adds delta to the messages from queue that were received
	// and are not finished yet (handled, failed, released or left).
	InFlight(ctx context.Context, queue string, delta int)
	// APIRequest records one attempt of an API request (retries count,
	// as AWS bills each): service ("SQS", "SNS", "S3", ...), operation
	// ("SendMessageBatch"), the billed requests (one per started 64 KiB
	// of payload) and the attempt's error. See MetricsMiddleware.
	APIRequest(ctx context.Context, service, operation string, billed int64, err error)
	// Requested records one Requester.Request to queue that took d; err:
	// it failed (ErrTimeout: no reply in time; a *RemoteError: the
	// responder answered with an error).
	Requested(ctx context.Context, queue string, d time.Duration, err error)
	// LateReply records a reply on replyQueue that nobody waited for (its
	// request gave up, or it is a duplicate); it is deleted.
	LateReply(ctx context.Context, replyQueue string)
	// Completed records an aggregate of scatter-gather completed on
	// responseQueue by reason, d after it was opened. ScatterGather.Gather
	// also reports, with GatherTimeout or GatherCancelled, a wait that
	// ended before its aggregate completed (the aggregate may still
	// complete later, and is then recorded again).
	Completed(ctx context.Context, responseQueue string, reason CompletionReason, d time.Duration)
}

// Reasons Metrics.Completed gets from ScatterGather.Gather when its
// context ended before the aggregate completed.
const (
	GatherTimeout   CompletionReason = "timeout"
	GatherCancelled CompletionReason = "cancelled"
)

// MetricsMiddleware returns what installs m on an SDK client's middleware
// stack (append it to the client's APIOptions), to record each API
// request attempt with Metrics.APIRequest. As RequestCounter, it sits in
// the finalize step after the retry middleware, so that it sees each
// attempt. A nil m installs nothing.
//
//	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
//		o.APIOptions = append(o.APIOptions, patterns.MetricsMiddleware(m))
//	})
func MetricsMiddleware(m Metrics) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		if m == nil {
			return nil
		}
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("courier.Metrics",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				billed := billedRequests(in.Request)
				out, md, err := next.HandleFinalize(ctx, in)
				m.APIRequest(ctx, awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), billed, err)
				return out, md, err
			}), middleware.After)
	}
}

// billedRequests is what AWS bills for a request: one per started 64 KiB
// of payload, at least one.
func billedRequests(req any) int64 {
	size := int64(0)
	if r, ok := req.(*smithyhttp.Request); ok {
		size = r.ContentLength
		if size <= 0 {
			if n, ok, _ := r.StreamLength(); ok {
				size = n
			}
		}
	}
	return max(1, (size+billingChunk-1)/billingChunk)
}

// metricsStart returns the time an operation measured by m starts: now,
// or, with no Metrics, the zero time and no clock read.
func metricsStart(m Metrics) time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// sendCounts splits the n messages of a Send or Publish into sent and not
// sent by its error: a *SendError names those not sent; any other error
// sent none.
func sendCounts(n int, err error) (sent, failed int) {
	if err == nil {
		return n, 0
	}
	var se *SendError
	if errors.As(err, &se) {
		failed = min(len(se.Failed), n)
		return n - failed, failed
	}
	return 0, n
}

// recordSend reports a Send or Publish of n messages to dest that began
// at start. m must not be nil.
func recordSend(ctx context.Context, m Metrics, dest string, n int, start time.Time, err error) {
	sent, failed := sendCounts(n, err)
	m.Sent(ctx, dest, sent, failed, time.Since(start), err)
}

// meteredSend wraps a one-message send (the Requester's and Responder's
// outbox, which batches the messages of many callers) so that each call
// is recorded as a Send of its own; with no Metrics it is send itself.
func meteredSend(m Metrics, send func(ctx context.Context, dest string, msg *Message) error) func(ctx context.Context, dest string, msg *Message) error {
	if m == nil {
		return send
	}
	return func(ctx context.Context, dest string, msg *Message) error {
		start := time.Now()
		err := send(ctx, dest, msg)
		recordSend(ctx, m, dest, 1, start, err)
		return err
	}
}

// recordDeletes reports a DeleteMessageBatch of n receipt handles, as
// ConsumerStats counts it: the entries SQS confirmed deleted, and those it
// refused (the first one's code is the error) or, when the request
// failed, all of them. m must not be nil.
func recordDeletes(ctx context.Context, m Metrics, queue string, n int, out *sqs.DeleteMessageBatchOutput, err error) {
	if err != nil {
		m.Deleted(ctx, queue, 0, n, err)
		return
	}
	var refused error
	if len(out.Failed) > 0 {
		f := out.Failed[0]
		refused = &smithy.GenericAPIError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message)}
	}
	m.Deleted(ctx, queue, len(out.Successful), len(out.Failed), refused)
}
