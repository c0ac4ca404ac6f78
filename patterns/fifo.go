package patterns

import (
	"context"
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// FIFO queues and topics.
//
// What courier does with a FIFO destination (a queue or topic whose name
// ends in .fifo):
//
//   - Sending: every message needs a GroupID (1-128 characters, letters,
//     digits, punctuation), checked before any request. A DeduplicationID
//     is optional when the queue or topic has content-based deduplication;
//     otherwise SQS refuses the entry and the error says so. Batches keep
//     each group's order: a group's messages are sent in the order of the
//     Send calls (concurrent ones share batches), with at most one request
//     of the group in flight, and after a message of a group fails, the
//     group's messages waiting behind it, of that Send or another, are not
//     sent (ErrGroupStopped) so that the group's order cannot break. A failed entry is resent only when no
//     later entry of its group was accepted in the same request; otherwise
//     it is reported, with the rest of its group: SendError.Failed lists,
//     in order, what to resend.
//   - Receiving: the Consumer splits each receive into runs per group. A
//     run is handled by one worker, one message at a time, in order; runs of
//     different groups go in parallel up to Workers. When a handler fails,
//     the rest of that group's run is left alone: SQS returns the failed
//     message and the ones behind it, in order, after the visibility
//     timeout, and holds back the group meanwhile. The heartbeat extends
//     the visibility of every received message not yet finished, including
//     those waiting behind a slow one in their run.
//
// High throughput: SQS raises a FIFO queue's limits when deduplication is
// scoped to the message group and the throughput limit is per group.
// FIFOQueueAttributes returns the attributes for CreateQueue.

// FIFOOptions shapes a FIFO queue.
type FIFOOptions struct {
	// ContentBasedDeduplication deduplicates by a SHA-256 of the body when
	// a message has no DeduplicationID.
	ContentBasedDeduplication bool
	// HighThroughput sets DeduplicationScope=messageGroup and
	// FifoThroughputLimit=perMessageGroupId.
	HighThroughput bool
	// VisibilityTimeoutSeconds, when > 0, sets the queue's visibility timeout.
	VisibilityTimeoutSeconds int
}

// FIFOQueueAttributes returns CreateQueue attributes for a FIFO queue.
func FIFOQueueAttributes(o FIFOOptions) map[string]string {
	attrs := map[string]string{"FifoQueue": "true"}
	if o.ContentBasedDeduplication {
		attrs["ContentBasedDeduplication"] = "true"
	}
	if o.HighThroughput {
		attrs["DeduplicationScope"] = "messageGroup"
		attrs["FifoThroughputLimit"] = "perMessageGroupId"
	}
	if o.VisibilityTimeoutSeconds > 0 {
		attrs["VisibilityTimeout"] = strconv.Itoa(o.VisibilityTimeoutSeconds)
	}
	return attrs
}

// repeatsGroup reports whether two of msgs share a message group.
func repeatsGroup(msgs []*Message) bool {
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if seen[m.GroupID] {
			return true
		}
		seen[m.GroupID] = true
	}
	return false
}

// noResendRetryer is the SDK's retryer for a FIFO batch request that
// carries two or more messages of one group, except that it does not send
// the request again when its response was lost (a RequestSendError: the
// connection broke, or the response did not come in time). SQS may have
// stored some entries of the first attempt and failed an earlier one of
// the same group; a resend would store that one behind them, and the group
// would be out of order. Found by internal/sim. The entries of such a
// request are reported not sent (their outcome unknown) instead. A request
// refused with a response (throttling, a 500) took no effect and is
// retried as usual.
type noResendRetryer struct{ aws.Retryer }

func (r noResendRetryer) IsErrorRetryable(err error) bool {
	var lost *smithyhttp.RequestSendError
	if errors.As(err, &lost) {
		return false
	}
	return r.Retryer.IsErrorRetryable(err)
}

// GetAttemptToken keeps the wrapped retryer's per-attempt accounting.
func (r noResendRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.Retryer.GetInitialToken(), nil
}

// fifoBatchRetry returns the retryer option for a FIFO batch request: the
// caller's own when no group repeats, noResendRetryer otherwise.
func fifoBatchRetry(fifo bool, msgs []*Message, current aws.Retryer) (aws.Retryer, bool) {
	if !fifo || !repeatsGroup(msgs) || current == nil {
		return nil, false
	}
	return noResendRetryer{current}, true
}
